"""Finding image files in folders, atomic file writes (readers never see a half-written file),
checking up front that an output can be written, and that an input is a regular file (never opening a
folder, a FIFO or a device).

The data goes to a temporary file in the destination's directory (so that the final rename stays on
one file system), is flushed and fsynced, and is then moved over the destination with
:func:`os.replace`, which is atomic on POSIX and Windows.  Parent directories are created.  If
anything fails the temporary file is removed and the destination is left as it was.  Errors are the
plain :class:`OSError` of the failing call; callers turn them into one-line user errors.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from hrface.errors import CheckpointError, os_reason

__all__ = [
    "IMAGE_EXTENSIONS",
    "FolderIssue",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_model_file",
    "check_writable_file",
    "check_writable_folder",
    "iter_image_files",
    "not_a_file",
    "walk_images",
]

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".gif"}
)
"""Lower-case suffixes (with the dot) that :func:`iter_image_files` picks up inside folders."""


@dataclass(frozen=True)
class FolderIssue:
    """An entry of a searched folder that gave no images, with a one-line ``message`` that starts with its path.

    ``error`` is True when images may have been missed (a folder that cannot be listed), False for a
    note: a link back to a folder already searched, or a broken or looping link without an image suffix.
    """

    path: Path
    message: str
    error: bool


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (creating parent directories).

    The new file gets the permissions an ordinary ``open(path, "wb")`` would give (0o666 less the
    umask); the temporary file is named ``.<name>.<random>.tmp`` next to the destination.
    """
    dest = Path(path)
    make_folder(dest.parent)
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


def make_folder(folder: str | os.PathLike[str]) -> None:
    """``mkdir -p``; a file where a folder should be raises ``NotADirectoryError`` naming that file."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        place = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), folder)
        raise NotADirectoryError(errno.ENOTDIR, "a file is in the way, not a folder", str(place)) from None


def check_writable_folder(folder: str | os.PathLike[str]) -> None:
    """Create ``folder`` (and its parents) if needed, and check that a file can be created in it by creating
    and removing a hidden one.  Raises the ``OSError`` that writing there would raise (a file in the way,
    a read-only file system, no permission), so that callers can refuse before the work starts."""
    folder = Path(folder)
    make_folder(folder)
    try:
        fd, name = tempfile.mkstemp(prefix=".hrface-", suffix=".probe", dir=folder)
    except OSError as exc:  # name the folder, not the probe file
        raise type(exc)(exc.errno, exc.strerror, str(folder)) from None
    os.close(fd)
    os.unlink(name)


def check_writable_file(path: str | os.PathLike[str]) -> None:
    """Check that ``path`` can be written as a file: not a folder, in a folder where files can be created
    (made if needed; see :func:`check_writable_folder`).  Raises the ``OSError`` of the problem."""
    if Path(path).is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(path))
    check_writable_folder(Path(path).parent)


def iter_image_files(inputs: Iterable[str | os.PathLike[str]] | str | os.PathLike[str]) -> Iterator[Path]:
    """Expand files and folders into image file paths, inputs in the given order (no de-duplication).

    * A path that is not a directory is yielded as given, whatever its extension (the user named it)
      and even when it does not exist: reading it then raises a one-line
      :class:`~hrface.errors.ImageLoadError` that the caller records for that input.
    * A directory is searched as :func:`walk_images` does.  An unreadable directory is yielded
      itself, so its error is recorded; the notes of :class:`FolderIssue` are dropped (use
      :func:`walk_images` to report them).
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    for item in inputs:
        p = Path(item)
        if not p.is_dir():
            yield p
            continue
        for found in walk_images(p):
            if isinstance(found, Path) or found.error:
                yield found if isinstance(found, Path) else found.path


def walk_images(
    folder: str | os.PathLike[str], extensions: frozenset[str] = IMAGE_EXTENSIONS
) -> Iterator[Path | FolderIssue]:
    """Search ``folder`` recursively for image files, and say what could not be searched.

    Depth first, entries sorted by name (paths come in the sorted order of their components);
    yields the entries whose suffix is in ``extensions`` (:data:`IMAGE_EXTENSIONS` by default; lower case,
    compared case-insensitively) whatever they
    are, so that :func:`~hrface.io.image.read_image` reports a broken link, a link loop or a FIFO
    named like an image instead of it being skipped.  Hidden entries (``.name``) are skipped.
    Directory symlinks are followed once: a link back to a folder already searched, a folder that
    cannot be listed, and a broken or looping link without an image suffix each give a
    :class:`FolderIssue`.
    """
    yield from _walk(Path(folder), set(), extensions)


def _walk(folder: Path, seen: set[str], extensions: frozenset[str]) -> Iterator[Path | FolderIssue]:
    real = os.path.realpath(folder)
    if real in seen:
        yield FolderIssue(folder, f"{folder}: link to a folder already searched ({real}); not followed", False)
        return
    seen.add(real)
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        reason = os_reason(exc)
        yield FolderIssue(folder, f"{folder}: cannot list this folder ({reason}); its images were not searched", True)
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        try:
            is_dir = entry.is_dir()
        except OSError:  # a link loop
            is_dir = False
        if is_dir:
            yield from _walk(path, seen, extensions)
        elif os.path.splitext(entry.name)[1].lower() in extensions:
            yield path
        elif entry.is_symlink() and not os.path.exists(path):
            yield FolderIssue(path, f"{path}: broken or looping symbolic link; skipped", False)


_NOT_FILES = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
    (stat.S_ISSOCK, "a socket"),
)


def not_a_file(path: str | os.PathLike[str]) -> str | None:
    """What ``path`` is when it exists but is not a regular file (links followed): 'a folder', 'a named pipe
    (FIFO)', 'a device', 'a socket'; None for a regular file or a missing path.  Only ``stat``: nothing is
    opened (opening a FIFO to read it waits for a writer, forever)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode):
        return None
    return next((what for test, what in _NOT_FILES if test(mode)), "not a regular file")


def check_model_file(path: str | os.PathLike[str]) -> Path:
    """``path`` when it is a regular file; else a one-line :class:`CheckpointError` at once (a missing file, a
    folder, a FIFO, a device: none of them is read)."""
    path = Path(os.fspath(path)).expanduser()
    what = not_a_file(path)
    if what is not None:
        raise CheckpointError(f"{path}: is {what}, not a model file; pass the model's file or a model name")
    if not path.is_file():
        raise CheckpointError(f"{path}: model file not found; pass an existing file or a model name")
    return path
