"""``hrface`` command line: sub-command dispatch and user-error reporting."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import HrfaceError
from . import bench, data_tools, detect, eval_detector, export, models, train_detector, train_landmarks, widerface


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hrface", description="Face detection (RetinaFace) and dense facial landmarks (HRNetV2)."
    )
    parser.add_argument("--version", action="version", version=f"hrface {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    detect.add_parser(commands)
    export.add_parser(commands)
    bench.add_parser(commands)
    models.add_parser(commands)
    train_landmarks.add_parsers(commands)
    train_detector.add_parsers(commands)
    data_tools.add_parsers(commands)
    widerface.add_parsers(commands)
    eval_detector.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hrface`` console script; returns the process exit code.

    User errors (bad files, wrong checkpoints, missing weights) print one line ``hrface: error: …``
    and exit with status 2, without a traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except HrfaceError as exc:
        print(f"hrface: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hrface: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
