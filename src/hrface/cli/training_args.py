"""The command-line options every ``hrface train-*`` command shares, and how they override a config."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any


def add_train_parser(
    commands: argparse._SubParsersAction, name: str, help: str, example: str, run: Callable[..., int]
) -> argparse.ArgumentParser:
    """A ``train-*`` sub-command: CONFIG plus ``--resume --max-steps --device --output-dir --quiet --set``."""
    p = commands.add_parser(name, help=help)
    p.add_argument("config", type=Path, help=f"training config (see {example})")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR/last.pt exactly")
    p.add_argument("--max-steps", type=int, help="stop after this many optimizer steps (resumable)")
    p.add_argument("--device", help="override the config's device (cpu, cuda, auto)")
    p.add_argument("--output-dir", type=Path, help="override the config's output_dir")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value (dotted key, YAML value; repeatable), e.g. --set loss=awing",
    )
    p.set_defaults(run=run)
    return p


def apply_overrides(config: Any, args: argparse.Namespace) -> None:
    """Set the config's ``device`` and ``output_dir`` from ``--device`` / ``--output-dir`` when given."""
    if args.device:
        config.device = args.device
    if args.output_dir:
        config.output_dir = str(args.output_dir)
