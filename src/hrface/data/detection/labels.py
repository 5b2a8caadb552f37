"""The RetinaFace training label format (``label.txt`` of the reference Pytorch_Retinaface data).

One block per image: a line ``# relative/path.jpg`` and then one line per face::

    x y w h  lx1 ly1 f1  lx2 ly2 f2  lx3 ly3 f3  lx4 ly4 f4  lx5 ly5 f5  score

in image pixels; the box is ``x1 = x, y1 = y, x2 = x + w, y2 = y + h``; keypoints are in the
RetinaFace order (image-left eye, image-right eye, nose, image-left mouth corner, image-right mouth
corner); a face without keypoints has ``-1`` for all 15 keypoint values. The flag ``f`` and the
trailing score are not used by training and are not kept (written as ``0`` and ``1``). The WIDER
validation style, ``x y w h`` only, is read too (faces without keypoints).

Image paths are relative to an image root: by default the label file's folder (for the reference
layout ``train/label.txt`` + ``train/images/``, pass ``image_root='train/images'``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ...io.files import atomic_write_text
from ..landmarks.parsing import DatasetError, parse_floats, read_lines, snippet, where
from .samples import NUM_KEYPOINTS, DetectionSample, require_image, sample_at

__all__ = ["format_retinaface_labels", "read_retinaface_labels", "write_retinaface_labels", "xywh_to_xyxy"]

_BOX_ONLY = 4
_WITH_KEYPOINTS = 4 + 3 * NUM_KEYPOINTS  # without the trailing score
_FULL = _WITH_KEYPOINTS + 1
_MISSING = -1.0


def read_retinaface_labels(
    path: str | os.PathLike[str],
    image_root: str | os.PathLike[str] | None = None,
    *,
    check_images: bool = False,
) -> list[DetectionSample]:
    """The images of a RetinaFace ``label.txt`` in file order, as :class:`DetectionSample` records.

    A keypoint written as ``-1 -1`` is missing (NaN); a face has keypoints when all 5 are given.
    Raises :class:`DatasetError` (one line naming the file and line) for a face line before the first
    ``#`` line, a line that is not 4, 19 or 20 numbers, a file without any ``#`` line, or, with
    ``check_images``, an image file that does not exist.
    """
    root = Path(image_root) if image_root is not None else Path(path).parent
    samples: list[DetectionSample] = []
    header: tuple[int, str] | None = None
    rows: list[np.ndarray] = []

    def finish() -> None:
        if header is None:
            return
        line_no, relative = header
        table = np.stack(rows) if rows else np.zeros((0, _WITH_KEYPOINTS))
        sample = sample_at(root, relative, xywh_to_xyxy(table[:, :4]), _keypoints_of(table))
        if check_images:
            require_image(sample, path, line_no)
        samples.append(sample)

    for line_no, raw in enumerate(read_lines(path), start=1):
        text = raw.strip()
        if not text:
            continue
        if text.startswith("#"):
            finish()
            relative = text[1:].strip()
            if not relative:
                raise DatasetError(f"{where(path, line_no)}: '#' line without an image path")
            header, rows = (line_no, relative), []
            continue
        if header is None:
            raise DatasetError(f"{where(path, line_no)}: face line {snippet(text)} before the first '# image' line")
        tokens = text.split()
        if len(tokens) not in (_BOX_ONLY, _WITH_KEYPOINTS, _FULL):
            raise DatasetError(
                f"{where(path, line_no)}: expected 4 numbers (x y w h) or 20 (x y w h, 5 × 'x y flag', score), "
                f"got {len(tokens)}"
            )
        values = parse_floats(tokens, path, line_no, "face")
        row = np.full(_WITH_KEYPOINTS, _MISSING)
        row[: min(len(values), _WITH_KEYPOINTS)] = values[:_WITH_KEYPOINTS]
        rows.append(row)
    finish()
    if not samples:
        raise DatasetError(f"{where(path)}: no '# image' lines (not a RetinaFace label file?)")
    return samples


def xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    """(M, 4) ``x y w h`` → (M, 4) ``x1 y1 x2 y2`` with ``x2 = x + w``, ``y2 = y + h`` (WIDER FACE convention)."""
    xywh = np.asarray(xywh, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)


def _keypoints_of(table: np.ndarray) -> np.ndarray:
    """(M, 5, 2) keypoints of label rows (M, 19), NaN where a point is written as ``-1 -1``."""
    points = table[:, 4:_WITH_KEYPOINTS].reshape(-1, NUM_KEYPOINTS, 3)[:, :, :2].copy()
    points[(points == _MISSING).all(axis=2)] = np.nan
    return points


def format_retinaface_labels(samples: Iterable[DetectionSample], image_root: str | os.PathLike[str]) -> str:
    """The label file text of ``samples``; image paths are written relative to ``image_root`` (with ``/``).

    Keypoints are written for faces with ``has_keypoints`` (flag 0), ``-1`` otherwise; the score is 1.
    Raises :class:`DatasetError` for an image that is not inside ``image_root``.
    """
    root = Path(os.path.abspath(image_root))
    out: list[str] = []
    for sample in samples:
        try:
            relative = Path(os.path.abspath(sample.image)).relative_to(root).as_posix()
        except ValueError:
            raise DatasetError(
                f"image {sample.image} is not inside the image root {root}; choose an image root that contains it"
            ) from None
        out.append(f"# {relative}\n")
        for box, points, has in zip(sample.boxes, sample.keypoints, sample.has_keypoints, strict=True):
            x1, y1, x2, y2 = (float(v) for v in box)
            fields = [x1, y1, x2 - x1, y2 - y1]
            for x, y in points.tolist():
                fields += [x, y, 0.0] if has else [_MISSING] * 3
            out.append(" ".join(_number(v) for v in fields) + " 1\n")
    return "".join(out)


def write_retinaface_labels(
    path: str | os.PathLike[str],
    samples: Iterable[DetectionSample],
    image_root: str | os.PathLike[str] | None = None,
) -> None:
    """Write ``samples`` as a RetinaFace ``label.txt`` atomically (see :func:`format_retinaface_labels`);
    image paths relative to ``image_root``, by default the label file's folder."""
    root = image_root if image_root is not None else Path(path).parent
    atomic_write_text(path, format_retinaface_labels(samples, root))


def _number(value: float) -> str:
    """``value`` with at most 3 decimals and no trailing zeros (``449``, ``488.906``, ``-1``)."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text
