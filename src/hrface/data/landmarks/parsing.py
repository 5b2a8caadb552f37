"""The error landmark readers raise for bad annotation files, and the checked-parsing helpers behind it.

Every :class:`DatasetError` message is one line that starts with the file (and line, where there is
one) in the ``path:line: what`` form of compilers, so that a user can open the file at the spot.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...errors import HrfaceError, one_line


class DatasetError(HrfaceError):
    """An annotation file or data set folder is malformed, incomplete or inconsistent."""


def where(path: str | os.PathLike[str], line: int | None = None) -> str:
    """``path`` or ``path:line`` (1-based line) for the start of an error message."""
    return f"{path}:{line}" if line is not None else str(path)


def snippet(text: str, limit: int = 40) -> str:
    """``text`` quoted and shortened to one line for an error message."""
    return repr(one_line(text, limit))


def parse_floats(tokens: Sequence[str], path: str | os.PathLike[str], line: int | None, what: str) -> np.ndarray:
    """The tokens as finite float64 numbers; :class:`DatasetError` naming ``what`` and the place otherwise."""
    try:
        values = [float(t) for t in tokens]
    except ValueError:
        bad = next(t for t in tokens if not is_number(t))
        raise DatasetError(f"{where(path, line)}: {what}: {snippet(bad)} is not a number") from None
    if not all(math.isfinite(v) for v in values):
        raise DatasetError(f"{where(path, line)}: {what}: values must be finite, got {snippet(' '.join(tokens))}")
    return np.array(values, dtype=np.float64)


def is_number(token: str) -> bool:
    """Whether ``token`` parses as a float."""
    try:
        float(token)
    except ValueError:
        return False
    return True


def read_lines(path: str | os.PathLike[str]) -> list[str]:
    """The file's lines as text (UTF-8, BOM and CR/LF tolerated); a one-line DatasetError if unreadable."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise DatasetError(f"{where(path)}: cannot read annotation file ({e.strerror or e})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return text.splitlines()


def check_box(box: np.ndarray, path: str | os.PathLike[str], line: int | None, what: str = "face box") -> np.ndarray:
    """``box`` (x1, y1, x2, y2) if it has a positive width and height; DatasetError otherwise."""
    if not (box[2] > box[0] and box[3] > box[1]):
        coords = " ".join(f"{v:g}" for v in box)
        raise DatasetError(f"{where(path, line)}: {what} {coords} (x1 y1 x2 y2) has no area")
    return box
