"""``hrface models``: the named models, their weights' provenance, licence and measured figures, and whether the
files are present."""

from __future__ import annotations

import argparse

from ..errors import ConfigError
from ..extras import require
from ..models.registry import RETIRED_MODELS_PAGE, list_models, shipped_onnx, weights_home, weights_path


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("models", help="list known model names and where their weights come from")
    parser.set_defaults(run=run)
    pack = commands.add_parser(
        "pack-weights",
        help="write a checkpoint as a compact half-precision .safetensors file with its metadata",
        description="Read any supported checkpoint (safely) and write its state_dict as .safetensors, "
        "floats in float16 unless --float32, keeping the architecture and training crop size as metadata.",
    )
    pack.add_argument("src", help="checkpoint (.pth/.pt/.tar/.safetensors)")
    pack.add_argument("dst", help="output .safetensors file (written atomically)")
    pack.add_argument("--float32", action="store_true", help="keep float32 tensors")
    pack.add_argument(
        "--metadata",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="add or replace a metadata entry, e.g. max_size=480 (repeatable)",
    )
    pack.set_defaults(run=run_pack)


def run_pack(args: argparse.Namespace) -> int:
    extra = {}
    for item in args.metadata:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--metadata {item!r}: expected KEY=VALUE")
        extra[key.strip()] = value.strip()
    require("torch", "torch", "hrface pack-weights")
    from ..models.packaging import pack_weights

    digest = pack_weights(args.src, args.dst, half=not args.float32, metadata=extra)
    print(f"wrote {args.dst} (sha256 {digest})")
    return 0


def run(args: argparse.Namespace) -> int:
    print(f"weights directory: {weights_home()}  (set HRFACE_HOME to change it)\n")
    for info in list_models():
        path = weights_path(info)
        status = "present" if path.is_file() else "missing"
        print(f"{info.name}  [{info.task}, {info.arch.describe()}]")
        print(f"    {info.description}")
        ready = "; a ready ONNX graph, runs without torch" if shipped_onnx(info.name) is not None else ""
        print(f"    file:   {path} ({status}{ready})")
        print(f"    source: {info.source}")
        if info.sha256:
            print(f"    sha256: {info.sha256}")
        print(f"    made:   {info.provenance}")
        print(f"    licence: {info.licence}")
        for figure in info.metrics:
            print(f"    measured: {figure}")
    print(f"\nretired models (not listed; their files are in the git history): {RETIRED_MODELS_PAGE}")
    return 0
