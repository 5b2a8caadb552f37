"""Small test videos, damaged or truncated as a bad copy leaves them (for the tests of hrface.video and hrface
detect): their frames are numbered by their grey level, so a test can tell which frame it was given."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np


def level(index: int) -> int:
    """The grey level of frame ``index`` of :func:`numbered_clip` (10, 14, 18, …)."""
    return 10 + 4 * index


def numbered_clip(path: Path, frames: int = 60, size: tuple[int, int] = (160, 120), fourcc: str = "mp4v") -> Path:
    """A ``frames``-frame 10 fps clip whose frame i is grey level :func:`level` (i), with its number written on it."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, size)
    assert writer.isOpened()
    for i in range(frames):
        frame = np.full((size[1], size[0], 3), level(i), np.uint8)
        cv2.putText(frame, str(i), (size[0] // 8, size[1] * 2 // 3), cv2.FONT_HERSHEY_SIMPLEX, 2, (255,) * 3, 3)
        writer.write(frame)
    writer.release()
    return path


def damaged(path: Path, out: Path, start: float = 0.45, end: float = 0.55) -> Path:
    """A copy of ``path`` whose bytes from ``start`` to ``end`` (fractions of its size) are overwritten."""
    data = bytearray(path.read_bytes())
    data[int(len(data) * start) : int(len(data) * end)] = b"\xab" * (int(len(data) * end) - int(len(data) * start))
    out.write_bytes(bytes(data))
    return out


def truncated(path: Path, out: Path, keep: float = 1 / 3) -> Path:
    """The first ``keep`` of ``path``, as an interrupted copy leaves it; an MP4 is made "faststart" first (its
    index moved before the frames, as for streaming), so that what is left still opens."""
    data = path.read_bytes()
    if path.suffix == ".mp4":
        data = faststart(data)
    out.write_bytes(data[: int(len(data) * keep)])
    return out


def _boxes(data: bytes | bytearray, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """``(type, offset, size)`` of the ISO-BMFF boxes in ``data[start:end]``."""
    out, i = [], start
    while i + 8 <= end:
        size, kind = struct.unpack(">I4s", data[i : i + 8])
        size = end - i if size == 0 else size
        out.append((kind, i, size))
        i += size
    return out


def faststart(data: bytes) -> bytes:
    """An MP4 (as OpenCV writes it: ftyp, free, mdat, moov) with its ``moov`` box moved before ``mdat`` and the
    chunk offsets (``stco``) moved along."""
    top = _boxes(data, 0, len(data))
    _, at, size = next(box for box in top if box[0] == b"moov")
    moov = bytearray(data[at : at + size])

    def shift(start: int, end: int) -> None:
        for kind, i, n in _boxes(moov, start, end):
            if kind in (b"trak", b"mdia", b"minf", b"stbl"):
                shift(i + 8, i + n)
            elif kind == b"stco":
                (count,) = struct.unpack(">I", moov[i + 12 : i + 16])
                for k in range(i + 16, i + 16 + 4 * count, 4):
                    moov[k : k + 4] = struct.pack(">I", struct.unpack(">I", moov[k : k + 4])[0] + size)

    shift(8, len(moov))
    out = b""
    for kind, i, n in top:
        if kind == b"mdat":
            out += bytes(moov)
        if kind != b"moov":
            out += data[i : i + n]
    return out
