"""``hrface`` command line: sub-command dispatch and user-error reporting."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence

from .._version import __version__
from ..errors import ConfigError, HrfaceError, one_line
from ..io.records import detach_stdout
from . import (
    bench,
    data_tools,
    detect,
    eval_detector,
    export,
    models,
    serve,
    train_detector,
    train_landmarks,
    widerface,
)


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
    serve.add_parser(commands)
    train_landmarks.add_parsers(commands)
    train_detector.add_parsers(commands)
    data_tools.add_parsers(commands)
    widerface.add_parsers(commands)
    eval_detector.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hrface`` console script; returns the process exit code.

    Exit status: 0 done; 1 some inputs failed (the command says which); 2 a usage, model or output error,
    printed as one line ``hrface: error: …`` without a traceback (user errors, and the operating system's
    errors: a read-only place, a full disk, a closed pipe); 130 interrupted.  Progress notes of the
    library (the ``hrface`` logger: a first-use ONNX export, warnings) go to stderr as ``hrface: …``.
    """
    args = build_parser().parse_args(argv)
    with _log_to_stderr(quiet=getattr(args, "quiet", False)):
        try:
            check_threads(args)
            return int(args.run(args) or 0)
        except HrfaceError as exc:
            return _error(str(exc))
        except BrokenPipeError:
            detach_stdout()
            return _error("standard output was closed by its reader (broken pipe)")
        except OSError as exc:
            return _error(one_line(exc, 300))
        except MemoryError:
            return _error("out of memory; use smaller images (--max-size) or fewer at a time")
        except KeyboardInterrupt as exc:
            print(f"hrface: interrupted{'; ' + str(exc) if str(exc) else ''}", file=sys.stderr)
            return 130


def check_threads(args: argparse.Namespace) -> None:
    """``--threads N``, in every command that takes it, is a count of threads: 0 or less is refused (it is not a
    way to ask for the default, which is to leave the option out)."""
    threads = getattr(args, "threads", None)
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {threads}; or leave it out for the default")


def _error(message: str) -> int:
    print(f"hrface: error: {message}", file=sys.stderr)
    return 2


class _Format(logging.Formatter):
    """``hrface: message`` for notes, ``hrface: warning: message`` for warnings, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        return f"hrface: {level}{one_line(record.getMessage(), 1000)}"


@contextlib.contextmanager
def _log_to_stderr(quiet: bool) -> Iterator[None]:
    """Show the ``hrface`` logger's notes (not with ``--quiet``) and warnings on stderr for one command."""
    logger = logging.getLogger("hrface")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Format())
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


if __name__ == "__main__":
    sys.exit(main())
