"""Atomic file writes: readers never see a half-written output file.

The data goes to a temporary file in the destination's directory (so that the final rename stays on
one file system), is flushed and fsynced, and is then moved over the destination with
:func:`os.replace`, which is atomic on POSIX and Windows.  Parent directories are created.  If
anything fails the temporary file is removed and the destination is left as it was.  Errors are the
plain :class:`OSError` of the failing call; callers turn them into one-line user errors.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_text"]


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (creating parent directories).

    The new file gets the permissions an ordinary ``open(path, "wb")`` would give (0o666 less the
    umask); the temporary file is named ``.<name>.<random>.tmp`` next to the destination.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically, encoded with ``encoding`` (no newline translation)."""
    atomic_write_bytes(path, text.encode(encoding))
