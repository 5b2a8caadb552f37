"""Finding image files in folders, and atomic file writes (readers never see a half-written file).

The data goes to a temporary file in the destination's directory (so that the final rename stays on
one file system), is flushed and fsynced, and is then moved over the destination with
:func:`os.replace`, which is atomic on POSIX and Windows.  Parent directories are created.  If
anything fails the temporary file is removed and the destination is left as it was.  Errors are the
plain :class:`OSError` of the failing call; callers turn them into one-line user errors.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["IMAGE_EXTENSIONS", "atomic_write_bytes", "atomic_write_text", "iter_image_files"]

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".gif"}
)
"""Lower-case suffixes (with the dot) that :func:`iter_image_files` picks up inside folders."""


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


def iter_image_files(inputs: Iterable[str | os.PathLike[str]] | str | os.PathLike[str]) -> Iterator[Path]:
    """Expand files and folders into image file paths, inputs in the given order (no de-duplication).

    * A path that is not a directory is yielded as given, whatever its extension (the user named it)
      and even when it does not exist: reading it then raises a one-line
      :class:`~hrface.errors.ImageLoadError` that the caller records for that input.
    * A directory is walked recursively, depth first, entries sorted by name (paths come in the
      sorted order of their components), yielding files whose suffix is in :data:`IMAGE_EXTENSIONS`
      (case-insensitive).  Hidden entries (``.name``) are skipped; directory symlinks are followed
      once (loops cut).  An unreadable directory is yielded itself, so its error is recorded.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            yield from _walk(p, set())
        else:
            yield p


def _walk(folder: Path, seen: set[str]) -> Iterator[Path]:
    real = os.path.realpath(folder)
    if real in seen:
        return
    seen.add(real)
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        yield folder
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            is_dir = entry.is_dir()
            is_file = not is_dir and entry.is_file()
        except OSError:
            continue
        if is_dir:
            yield from _walk(Path(entry.path), seen)
        elif is_file and os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS:
            yield Path(entry.path)
