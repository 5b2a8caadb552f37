"""Reading video files and cameras frame by frame (annotated videos are written by :mod:`.writer`).

Frames are uint8 BGR ``H×W×3`` arrays (OpenCV order; the container's rotation metadata is applied by
OpenCV).  Frame indices are 0-based indices into the source's frames (with ``every=K`` only the frames
0, K, 2K, … are decoded and yielded); times are seconds from the first frame: the container's
presentation time stamp for a file (``index / fps`` when the backend does not report one), the
monotonic clock for a camera.

**Damaged files.**  A read that fails before the container's frame count is reached is taken for damage, not
for the end: reading goes on past it, up to :attr:`VideoSource.max_failed_reads` failed reads in a row (never
more than the frames the container still lists) and :attr:`VideoSource.max_failed_seconds` of them.  The
first frame that decodes after a damaged stretch gets its index from its time stamp (the frames lost are
counted, and with ``every=K`` the analysed frames go on every K from there).  What could not be read is in
:attr:`VideoSource.skipped` and :attr:`VideoSource.missing_at_end`, and said in one line by
:attr:`VideoSource.warning` (also logged to the ``hrface`` logger when the video has been read to its end).
"""

from __future__ import annotations

import logging
import math
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from hrface.errors import ImageLoadError, ImageTooLargeError, InputError, os_reason
from hrface.io.pixels import max_pixels_limit

from .writer import VideoWriter

__all__ = [
    "VIDEO_EXTENSIONS",
    "VideoLoadError",
    "VideoSource",
    "VideoTooLargeError",
    "VideoWriter",
    "is_video",
    "read_frames",
]

log = logging.getLogger("hrface")

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"})
"""Lower-case suffixes (with the dot) that :func:`is_video` takes as videos without looking inside."""

Source = str | os.PathLike[str] | int
"""A video file path, or the index of a camera (``0`` = the default webcam)."""


class VideoLoadError(ImageLoadError):
    """A video file or camera could not be opened or decoded (one-line message, like every hrface error)."""


class VideoTooLargeError(VideoLoadError, ImageTooLargeError):
    """A video's frames have more pixels than the cap (``max_pixels=`` or ``$HRFACE_MAX_PIXELS``)."""


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
    ...     video.warning                         # None, or what could not be read (a damaged file)

    Args:
        source: a video file path, or a camera index (int, ``0`` = the default camera).
        every: decode and yield every ``every``-th frame (the others are skipped without decoding).
        max_frames: stop after yielding this many frames (None: until the video ends; a camera never ends).
        max_pixels: the cap on a frame's pixels (None: ``$HRFACE_MAX_PIXELS`` or the default, as for images).

    Attributes:
        name: the path as given, or ``"camera:N"``.
        fps: frames per second reported by the container or camera, or None when unknown.
        frame_count: frames in the file as the container reports it (may be approximate), or None
            (cameras, streams without an index).
        width, height: frame size in pixels.
        skipped: ``(first, last)`` index ranges of the frames that could not be decoded and were read past.
        missing_at_end: frames the container lists after the last one that could be read (a truncated file).
        max_failed_reads, max_failed_seconds: how far reading goes on past damage (see the module doc).

    Raises :class:`VideoLoadError` (one line) when the file or camera cannot be opened or gives no frame, and
    :class:`VideoTooLargeError` when a frame is above the pixel cap (at once for the first frame).
    """

    max_failed_reads = 1000
    max_failed_seconds = 20.0

    def __init__(
        self, source: Source, *, every: int = 1, max_frames: int | None = None, max_pixels: int | None = None
    ) -> None:
        if isinstance(source, bool) or not isinstance(source, (int, str, os.PathLike)):
            raise InputError(f"unsupported video source {type(source).__name__}; pass a file path or a camera index")
        if int(every) < 1:
            raise InputError(f"every must be a whole number >= 1, got {every}")
        if max_frames is not None and int(max_frames) < 0:
            raise InputError(f"max_frames must be >= 0 or None, got {max_frames}")
        self.every = int(every)
        self.max_frames = None if max_frames is None else int(max_frames)
        self.max_pixels = max_pixels_limit(max_pixels)
        self.is_camera = isinstance(source, int)
        self.name = f"camera:{source}" if self.is_camera else str(source)
        if self.is_camera:
            cap = _open_quietly(int(source))  # OpenCV warns on stderr for every backend it tries
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
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        self.fps: float | None = fps if math.isfinite(fps) and 0 < fps < 1000 else None
        count = float(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count: int | None = (
            int(count) if not self.is_camera and math.isfinite(count) and 0 < count < 2**40 else None
        )
        self.skipped: list[tuple[int, int]] = []
        self.missing_at_end = 0
        self._end = -1  # the last frame the capture gave, once it gives no more
        self.width = self.height = 0
        self._last_ms = -math.inf  # time stamp of the last frame decoded
        self._first_ms = 0.0  # time stamp of frame 0
        first = self._advance(0, 0)
        if first is None:
            cap.release()
            what = "the camera gives no image" if self.is_camera else "the video has no decodable frame"
            raise VideoLoadError(f"{self.name}: {what} (corrupt, truncated or unsupported); check the source")
        self._first_index, self._first = first
        self.height, self.width = self._first.shape[:2]
        # the time of frame 0: the first frame's time stamp less the frames skipped before it
        self._first_ms = self._last_ms - (1000.0 * self._first_index / self.fps if self.fps else 0.0)
        self._iterated = False

    @property
    def lost_frames(self) -> int:
        """How many of the source's frames could not be read (:attr:`skipped` and :attr:`missing_at_end`)."""
        return sum(last - first + 1 for first, last in self.skipped) + self.missing_at_end

    @property
    def warning(self) -> str | None:
        """One line that says which frames could not be read, or None when every frame read so far could."""
        if not self.lost_frames:
            return None
        parts = []
        if self.skipped:
            ranges = [f"{a}" if a == b else f"{a}-{b}" for a, b in self.skipped[:5]]
            more = f" and {len(self.skipped) - 5} more stretches" if len(self.skipped) > 5 else ""
            count = self.lost_frames - self.missing_at_end
            parts.append(f"frames {', '.join(ranges)}{more} could not be decoded ({count} frames, read past)")
        if self.missing_at_end:
            parts.append(
                f"the video ends after frame {self._end}, {self.missing_at_end} frames short of the "
                f"{self.frame_count} its container lists (truncated or damaged)"
            )
        return (
            f"{self.name}: {' and '.join(parts)}; the other frames were analysed (re-copy or repair the file to "
            "analyse them all)"
        )

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
        item: tuple[int, np.ndarray] | None = (self._first_index, self._first)
        self._first = None
        yielded, last_time = 0, -math.inf
        while item is not None and (self.max_frames is None or yielded < self.max_frames):
            index, frame = item
            t = time.monotonic() - start if self.is_camera else self._file_time(index, last_time)
            last_time = t
            yield index, t, frame
            yielded += 1
            item = self._advance(index + 1, index + self.every)
        if self.warning:  # frames lost on the way
            log.warning(self.warning)

    def _advance(self, position: int, target: int) -> tuple[int, np.ndarray] | None:
        """``(index, frame)`` of the first frame at or after ``target`` that decodes, reading on from frame
        ``position`` (the next one the capture gives; those before ``target`` are grabbed, not converted), or
        None at the end.  Reads past damaged stretches as the module doc says."""
        failures, since = 0, 0.0
        while True:
            if self._cap.grab():
                if failures:
                    position = self._resync(position, failures)
                    failures = 0
                self._last_ms = float(self._cap.get(cv2.CAP_PROP_POS_MSEC))
                if position >= target:
                    ok, frame = self._cap.retrieve()
                    if ok and frame is not None and frame.ndim == 3:
                        self._check_size(frame, position)
                        return position, frame
                    self._skip(position, position)  # a packet that decodes to no image
                position += 1
                continue
            remaining = 0 if self.is_camera or self.frame_count is None else self.frame_count - position
            if failures == 0:
                since = time.monotonic()
            failures += 1
            tired = failures > min(self.max_failed_reads, remaining)
            if remaining <= 0 or tired or time.monotonic() - since > self.max_failed_seconds:
                self._end_at(position)
                return None

    def _resync(self, position: int, failures: int) -> int:
        """The index of the frame just grabbed after ``failures`` failed reads from frame ``position``: from
        its time stamp when usable, else one frame per failed read; the frames between are recorded as skipped."""
        ms = float(self._cap.get(cv2.CAP_PROP_POS_MSEC))
        if self.fps and math.isfinite(ms) and ms > self._last_ms:
            index = max(position, round((ms - self._first_ms) * self.fps / 1000.0))
        else:
            index = position + failures
        if index > position:
            self._skip(position, index - 1)
        return index

    def _skip(self, first: int, last: int) -> None:
        """Record frames ``first``–``last`` as not decoded (joined to the stretch before when they follow it)."""
        if self.skipped and self.skipped[-1][1] + 1 >= first:
            self.skipped[-1] = (self.skipped[-1][0], max(last, self.skipped[-1][1]))
        else:
            self.skipped.append((first, last))

    def _end_at(self, position: int) -> None:
        """The capture gives no more frames from ``position`` on: record the frames the container still lists
        (when the time stamps agree that they are missing: a container's count may be an estimate)."""
        self._end = position - 1
        if self.frame_count is None or position >= self.frame_count:
            return
        missing = self.frame_count - position
        if self.fps and math.isfinite(self._last_ms) and position > 0:
            by_time = self.frame_count - 1 - round((self._last_ms - self._first_ms) * self.fps / 1000.0)
            missing = min(missing, by_time)
        self.missing_at_end = max(0, missing)

    def _check_size(self, frame: np.ndarray, index: int) -> None:
        """Refuse a frame above the pixel cap, naming the video (and the frame, after the first)."""
        height, width = frame.shape[:2]
        if width * height > self.max_pixels:
            which = f"frame {index} is" if self.width else "frames are"
            raise VideoTooLargeError(
                f"{self.name}: {which} {width}x{height} = {width * height} pixels, above the limit of "
                f"{self.max_pixels} pixels; downscale the video, or raise the limit with HRFACE_MAX_PIXELS"
            )

    def _file_time(self, index: int, last_time: float) -> float:
        """Seconds of frame ``index`` from the first frame: the backend's time stamp when it is usable
        (finite and increasing), else ``index / fps`` (fps 30 when unknown); always increasing."""
        if index == 0:
            return 0.0
        t = (self._last_ms - self._first_ms) / 1000.0
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


def _open_quietly(index: int) -> cv2.VideoCapture:
    """``cv2.VideoCapture(index)`` with OpenCV's own log lines (``[ WARN ] … can't open camera by index``) held
    back: a camera that cannot be opened is reported once, by hrface's error."""
    logging = cv2.utils.logging
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_ERROR)
    try:
        return cv2.VideoCapture(index)
    finally:
        logging.setLogLevel(level)
