"""What every record of an image carries the same way, whichever engine or command wrote it: the key that
identifies its image across runs, and the text of its ``error``."""

from __future__ import annotations

import os

from ..errors import HrfaceError, one_line


def image_key(image: str | os.PathLike[str]) -> str:
    """What identifies an image across runs: its absolute path with links resolved."""
    return os.path.realpath(image)


def error_text(exc: BaseException) -> str:
    """The ``error`` of a record: a user-facing error's own line, else the exception's type and message."""
    return str(exc) if isinstance(exc, HrfaceError) else f"{type(exc).__name__}: {one_line(exc, 1000)}"
