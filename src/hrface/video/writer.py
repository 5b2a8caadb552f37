"""Writing annotated videos atomically, and clearing the temporary files that a killed writer left behind.

A video is written to a hidden temporary file beside its destination and renamed over it when complete.  The
temporary file's name says who wrote it: ``.<name>.hrface-<host>-<pid>-<random>.tmp<suffix>`` (``host``: 8
hex digits of a hash of the host name).  A process that is killed (``kill -9``, a power cut) cannot remove
it, so the next :class:`VideoWriter` in that folder does: a temporary file of ours whose process is gone on
this host is removed (once per folder and process); one of a live process, of another host or of another
program is left alone.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import socket
import uuid
from pathlib import Path

import cv2
import numpy as np

from hrface.errors import InputError, OutputError

__all__ = ["VideoWriter", "remove_stale_temporary_files", "temporary_path"]

log = logging.getLogger("hrface")

_HOST = hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]
_TEMPORARY = re.compile(r"\..+\.hrface-([0-9a-f]{8})-(\d+)-[0-9a-f]{12}\.tmp(\.[A-Za-z0-9]+)?")
_cleared: set[str] = set()  # folders already cleared by this process


def temporary_path(path: Path) -> Path:
    """The hidden temporary file a video bound for ``path`` is written to (see the module doc)."""
    return path.with_name(f".{path.name}.hrface-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp{path.suffix}")


def _process_gone(pid: int) -> bool:
    """Whether no process ``pid`` runs on this host (POSIX; elsewhere every process counts as running)."""
    if os.name != "posix" or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)  # signal 0: nothing is sent, only whether the process exists
    except ProcessLookupError:
        return True
    except OSError:  # it exists (another user's), or cannot be told: keep its files
        return False
    return False


def remove_stale_temporary_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary video files of :class:`VideoWriter` in ``folder`` whose writer process is gone (killed
    before it could clean up); the paths removed.  Files of live processes, other hosts or other programs stay."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMPORARY.fullmatch(entry.name)
        if match is None or match[1] != _HOST or not _process_gone(int(match[2])):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:  # gone already, or not ours to remove: leave it
            continue
    if removed:
        log.info(f"removed {len(removed)} temporary video file(s) a killed run left in {folder}")
    return removed


class VideoWriter:
    """Write BGR frames to a video file (``.mp4`` with the ``mp4v`` codec by default), atomically.

    Frames go to a hidden temporary file in the destination's folder (:func:`temporary_path`); :meth:`close`
    renames it over ``path``, so ``path`` only ever holds a complete video.  The first writer in a folder removes
    the temporary files that killed writers left there (:func:`remove_stale_temporary_files`).  Leaving a
    ``with`` block by an exception (or calling :meth:`abort`) removes the temporary file and leaves ``path``
    as it was.  The frame size is taken from the first frame unless ``size`` is given; every frame must have
    that size.  Parent folders are created.

    Args:
        path: destination file; its suffix picks the container (``.mp4``, ``.avi``, ``.mkv``, …).
        fps: frames per second of the output (use the source's, divided by ``every`` to keep its duration).
        size: ``(width, height)`` in pixels, or None for the first frame's.
        fourcc: four-character codec code for :class:`cv2.VideoWriter`.

    Raises :class:`~hrface.errors.OutputError` (one line) when the file cannot be created or written.
    """

    def __init__(
        self, path: str | os.PathLike[str], fps: float, size: tuple[int, int] | None = None, *, fourcc: str = "mp4v"
    ) -> None:
        if not (math.isfinite(fps) and fps > 0):
            raise InputError(f"{path}: the video's fps must be a positive number, got {fps}")
        self.path = Path(path)
        self.fps = float(fps)
        self.fourcc = fourcc
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.frames = 0
        self._tmp = temporary_path(self.path)
        self._writer: cv2.VideoWriter | None = None
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError.cannot_write(self.path, e, "choose a writable folder") from None
        folder = os.path.realpath(self.path.parent)
        if folder not in _cleared:
            _cleared.add(folder)
            remove_stale_temporary_files(folder)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, frame_bgr: np.ndarray) -> None:
        """Append one uint8 BGR ``H×W×3`` frame of the video's size."""
        if self._closed:
            raise OutputError(f"{self.path}: the video is already closed; open a new VideoWriter")
        frame = np.asarray(frame_bgr)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise InputError(f"{self.path}: video frames must be uint8 BGR (H, W, 3), got {frame.dtype} {frame.shape}")
        if self.size is None:
            self.size = (frame.shape[1], frame.shape[0])
        if (frame.shape[1], frame.shape[0]) != self.size:
            w, h = self.size
            raise InputError(f"{self.path}: frame is {frame.shape[1]}x{frame.shape[0]}, the video is {w}x{h}")
        if self._writer is None:
            writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, self.size)
            if not writer.isOpened():
                self._tmp.unlink(missing_ok=True)
                raise OutputError(
                    f"{self.path}: cannot write a {self.fourcc} video here (unwritable folder, or no encoder for "
                    f"{self.path.suffix or 'this suffix'}); choose a writable .mp4 path"
                )
            self._writer = writer
        self._writer.write(np.ascontiguousarray(frame))
        self.frames += 1

    def close(self) -> None:
        """Finish the video and move it to ``path`` (idempotent).  A video without frames is not written."""
        if self._closed:
            return
        self._closed = True
        if self._writer is None:
            return
        self._writer.release()
        try:
            with open(self._tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(self._tmp, self.path)
        except OSError as e:
            self._tmp.unlink(missing_ok=True)
            raise OutputError.cannot_write(self.path, e, "check the folder and the free space") from None

    def abort(self) -> None:
        """Stop writing and remove the temporary file; ``path`` is left as it was."""
        self._closed = True
        if self._writer is not None:
            self._writer.release()
        self._tmp.unlink(missing_ok=True)
