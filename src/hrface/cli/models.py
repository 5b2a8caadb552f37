"""``hrface models``: the known model names, their weights' provenance and whether the files are present."""

from __future__ import annotations

import argparse

from ..models.registry import list_models, weights_home, weights_path


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("models", help="list known model names and where their weights come from")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    print(f"weights directory: {weights_home()}  (set HRFACE_HOME to change it)\n")
    for info in list_models():
        path = weights_path(info)
        status = "present" if path.is_file() else "missing"
        print(f"{info.name}  [{info.task}, {info.arch.describe()}]")
        print(f"    {info.description}")
        print(f"    file:   {path} ({status})")
        print(f"    source: {info.source}")
        if info.sha256:
            print(f"    sha256: {info.sha256}")
    return 0
