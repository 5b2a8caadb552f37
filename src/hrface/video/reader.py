"""Reading video files and cameras frame by frame, and writing annotated videos atomically.

Frames are uint8 BGR ``H×W×3`` arrays (OpenCV order; the container's rotation metadata is applied by
OpenCV).  Frame indices are 0-based indices into the source's frames (with ``every=K`` only the frames
0, K, 2K, … are decoded and yielded); times are seconds from the first frame: the container's
presentation time stamp for a file (``index / fps`` when the backend does not report one), the
monotonic clock for a camera.
"""

from __future__ import annotations

import math
import os
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from hrface.errors import ImageLoadError, InputError, OutputError, os_reason

__all__ = ["VIDEO_EXTENSIONS", "VideoLoadError", "VideoSource", "VideoWriter", "is_video", "read_frames"]

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"})
"""Lower-case suffixes (with the dot) that :func:`is_video` takes as videos without looking inside."""

Source = str | os.PathLike[str] | int
"""A video file path, or the index of a camera (``0`` = the default webcam)."""


class VideoLoadError(ImageLoadError):
    """A video file or camera could not be opened or decoded (one-line message, like every hrface error)."""


def _sniff_container(head: bytes) -> bool:
    """Whether the first bytes of a file are those of a common video container (MP4/MOV/3GP, Matroska/WebM,
    AVI, MPEG program/transport stream, FLV, ASF/WMV)."""
    return (
        head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip")  # ISO-BMFF: MP4, MOV, M4V, 3GP
        or head.startswith(b"\x1a\x45\xdf\xa3")  # EBML: Matroska, WebM
        or (head.startswith(b"RIFF") and head[8:12] == b"AVI ")
        or head.startswith(b"\x00\x00\x01\xba")  # MPEG program stream
        or (len(head) > 188 and head[0] == 0x47 and head[188] == 0x47)  # MPEG transport stream
        or head.startswith(b"FLV\x01")
        or head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11")  # ASF (WMV)
    )


def is_video(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a video: by suffix (:data:`VIDEO_EXTENSIONS`, case-insensitive), else by content
    for a regular file with another suffix (the container's signature in its first bytes; nothing is decoded).

    Image suffixes (``.jpg``, ``.gif``, …) are never videos; a missing file or a folder is not one either.
    """
    from hrface.io.files import IMAGE_EXTENSIONS

    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return True
    if suffix in IMAGE_EXTENSIONS:
        return False
    try:
        if not stat.S_ISREG(p.stat().st_mode):  # a FIFO or device would block or never end
            return False
        with open(p, "rb") as f:
            head = f.read(189)
    except OSError:
        return False
    return _sniff_container(head)


def _check_file(p: Path, where: str) -> None:
    """Refuse, with a one-line :class:`VideoLoadError`, a path that is not a non-empty regular file."""
    try:
        st = p.stat()
    except FileNotFoundError:
        raise VideoLoadError(f"{where}: file not found; check the path") from None
    except OSError as e:
        raise VideoLoadError(f"{where}: cannot open file ({os_reason(e)}); check the path") from None
    if stat.S_ISDIR(st.st_mode):
        raise VideoLoadError(f"{where}: is a directory, not a video file; pass the video files in it")
    if not stat.S_ISREG(st.st_mode):
        raise VideoLoadError(f"{where}: not a regular file; pass a video file")
    if st.st_size == 0:
        raise VideoLoadError(f"{where}: file is empty (0 bytes); re-copy or re-export the video")
    if not os.access(p, os.R_OK):
        raise VideoLoadError(f"{where}: permission denied; check the file's permissions")


class VideoSource:
    """An open video file or camera; iterate it for ``(index, time_s, frame_bgr)``.

    >>> with VideoSource("clip.mp4", every=2) as video:
    ...     video.fps, video.frame_count, video.width, video.height
    ...     for index, time_s, frame in video:   # index 0, 2, 4, … of the file's frames
    ...         ...

    Args:
        source: a video file path, or a camera index (int, ``0`` = the default camera).
        every: decode and yield every ``every``-th frame (the others are skipped without decoding).
        max_frames: stop after yielding this many frames (None: until the video ends; a camera never ends).

    Attributes:
        name: the path as given, or ``"camera:N"``.
        fps: frames per second reported by the container or camera, or None when unknown.
        frame_count: frames in the file as the container reports it (may be approximate), or None
            (cameras, streams without an index).
        width, height: frame size in pixels.

    Raises :class:`VideoLoadError` (one line) when the file or camera cannot be opened or gives no frame.
    """

    def __init__(self, source: Source, *, every: int = 1, max_frames: int | None = None) -> None:
        if isinstance(source, bool) or not isinstance(source, (int, str, os.PathLike)):
            raise InputError(f"unsupported video source {type(source).__name__}; pass a file path or a camera index")
        if int(every) < 1:
            raise InputError(f"every must be a whole number >= 1, got {every}")
        if max_frames is not None and int(max_frames) < 0:
            raise InputError(f"max_frames must be >= 0 or None, got {max_frames}")
        self.every = int(every)
        self.max_frames = None if max_frames is None else int(max_frames)
        self.is_camera = isinstance(source, int)
        self.name = f"camera:{source}" if self.is_camera else str(source)
        if self.is_camera:
            cap = cv2.VideoCapture(int(source))
            if not cap.isOpened():
                raise VideoLoadError(
                    f"{self.name}: cannot open the camera; check that it is connected and not in use by another program"
                )
        else:
            _check_file(Path(source), self.name)
            cap = cv2.VideoCapture(os.fspath(source))
            if not cap.isOpened():
                raise VideoLoadError(
                    f"{self.name}: not a readable video (unknown or corrupt format, or no decoder for it); "
                    "pass an MP4, AVI, MOV, MKV or WebM file"
                )
        self._cap = cap
        ok, first = cap.read()
        if not ok or first is None or first.ndim != 3:
            cap.release()
            what = "the camera gives no image" if self.is_camera else "the video has no decodable frame"
            raise VideoLoadError(f"{self.name}: {what} (corrupt, truncated or unsupported); check the source")
        self._first: np.ndarray | None = first
        self._first_ms = float(cap.get(cv2.CAP_PROP_POS_MSEC))
        self.height, self.width = first.shape[:2]
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        self.fps: float | None = fps if math.isfinite(fps) and 0 < fps < 1000 else None
        count = float(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count: int | None = (
            int(count) if not self.is_camera and math.isfinite(count) and 0 < count < 2**40 else None
        )
        self._iterated = False

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the file or camera (idempotent)."""
        self._cap.release()

    def __iter__(self) -> Iterator[tuple[int, float, np.ndarray]]:
        """``(index, time_s, frame_bgr)`` for frames 0, every, 2·every, … (once: a source is read only once)."""
        if self._iterated:
            raise InputError(f"{self.name}: a VideoSource can be iterated only once; open it again")
        self._iterated = True
        start = time.monotonic()
        index, yielded, frame = 0, 0, self._first
        self._first = None
        last_time = -math.inf
        while frame is not None and (self.max_frames is None or yielded < self.max_frames):
            t = time.monotonic() - start if self.is_camera else self._file_time(index, last_time)
            last_time = t
            yield index, t, frame
            yielded += 1
            frame = self._next(index)
            index += self.every

    def _next(self, index: int) -> np.ndarray | None:
        """Skip ``every - 1`` frames after ``index`` (grabbed, not decoded) and decode the next one."""
        for _ in range(self.every - 1):
            if not self._cap.grab():
                return None
        ok, frame = self._cap.read()
        return frame if ok and frame is not None else None

    def _file_time(self, index: int, last_time: float) -> float:
        """Seconds of frame ``index`` from the first frame: the backend's time stamp when it is usable
        (finite and increasing), else ``index / fps`` (fps 30 when unknown); always increasing."""
        if index == 0:
            return 0.0
        t = (float(self._cap.get(cv2.CAP_PROP_POS_MSEC)) - self._first_ms) / 1000.0
        if math.isfinite(t) and t > last_time:
            return t
        step = self.every / (self.fps or 30.0)
        return max(index * step / self.every, last_time + step)


def read_frames(
    source: Source, every: int = 1, max_frames: int | None = None
) -> Iterator[tuple[int, float, np.ndarray]]:
    """``(index, time_s, frame_bgr)`` of a video file or camera (see :class:`VideoSource`), closing it at the end.

    The source is opened at once (an unreadable one raises :class:`VideoLoadError` here, not at the first
    ``next``); use :class:`VideoSource` directly for its ``fps`` and ``frame_count``.
    """
    video = VideoSource(source, every=every, max_frames=max_frames)
    return _closing(video)


def _closing(video: VideoSource) -> Iterator[tuple[int, float, np.ndarray]]:
    with video:
        yield from video


class VideoWriter:
    """Write BGR frames to a video file (``.mp4`` with the ``mp4v`` codec by default), atomically.

    Frames go to a hidden temporary file in the destination's folder (``.<name>.<random>.tmp<suffix>``);
    :meth:`close` renames it over ``path``, so ``path`` only ever holds a complete video.  Leaving a
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
        self._tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:12]}.tmp{self.path.suffix}")
        self._writer: cv2.VideoWriter | None = None
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError.cannot_write(self.path, e, "choose a writable folder") from None

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
