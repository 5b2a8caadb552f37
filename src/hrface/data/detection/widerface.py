"""The official WIDER FACE annotation files: ``wider_face_*_bbx_gt.txt`` and ``wider_face_*.mat``.

``*_bbx_gt.txt`` lists, per image, its path (``EVENT/NAME.jpg``), the number of faces, and one line
per face ``x1 y1 w h blur expression illumination invalid occlusion pose`` (or only ``x1 y1 w h``).
An image without faces has a count of 0 followed by one line of zeros, which is skipped.

``*.mat`` (MATLAB) holds, per event, ``event_list`` (the event folder), ``file_list`` (image names
without ``.jpg``), ``face_bbx_list`` ((n, 4) ``x1 y1 w h``) and attribute lists such as
``invalid_label_list``.

Boxes become ``x1 y1 x2 y2`` with ``x2 = x1 + w``, ``y2 = y1 + h``. Rows are kept as the files have
them, including the 31 zero- or negative-size rows of the train set (4 of them the single all-zero
row of a face-less image), so the counts match the official statistics (train: 12,880 images,
159,424 faces); the training dataset drops faces without area. Images are ``image_root / path``
(default: the annotation file's folder); keypoints are all missing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import one_line
from ...extras import require
from ..landmarks.parsing import DatasetError, is_number, parse_floats, read_lines, snippet, where
from .labels import xywh_to_xyxy
from .samples import DetectionSample, require_image, sample_at

__all__ = ["read_wider_bbx_gt", "read_wider_mat"]

_INVALID_COLUMN = 7  # in the 10-value face lines of *_bbx_gt.txt
_FACE_COLUMNS = (4, 10)


def read_wider_bbx_gt(
    path: str | os.PathLike[str],
    image_root: str | os.PathLike[str] | None = None,
    *,
    check_images: bool = False,
    drop_invalid: bool = False,
) -> list[DetectionSample]:
    """The images of a ``wider_face_*_bbx_gt.txt`` file in file order.

    ``drop_invalid`` leaves out faces whose ``invalid`` attribute is 1 (lines with only ``x y w h``
    have no attributes and are kept). Raises :class:`DatasetError` (one line naming the file and
    line) for a count that is not a whole number, fewer face lines than the count, a face line that is
    not 4 or 10 numbers, or, with ``check_images``, a missing image file.
    """
    root = Path(image_root) if image_root is not None else Path(path).parent
    lines = [(no, text.strip()) for no, text in enumerate(read_lines(path), start=1) if text.strip()]
    samples: list[DetectionSample] = []
    i = 0
    while i < len(lines):
        path_no, relative = lines[i]
        if _is_face_line(relative):
            raise DatasetError(f"{where(path, path_no)}: expected an image path, got {snippet(relative)}")
        count = _face_count(lines, i + 1, path, relative)
        rows = lines[i + 2 : i + 2 + count]
        faces = [_face_values(text, path, no, k, count, relative) for k, (no, text) in enumerate(rows)]
        table = np.stack(faces) if faces else np.zeros((0, 10))
        if len(rows) < count:
            last = rows[-1][0] if rows else lines[i + 1][0]
            raise DatasetError(f"{where(path, last)}: file ends after {len(rows)} of {count} faces of {relative}")
        i += 2 + count
        if count == 0 and i < len(lines) and _is_face_line(lines[i][1]) and not any(map(float, lines[i][1].split())):
            i += 1  # the line of zeros that stands for "no face"
        if drop_invalid:
            table = table[table[:, _INVALID_COLUMN] != 1]
        sample = sample_at(root, relative, xywh_to_xyxy(table[:, :4]))
        if check_images:
            require_image(sample, path, path_no)
        samples.append(sample)
    if not samples:
        raise DatasetError(f"{where(path)}: no images listed (not a WIDER FACE bbx_gt file?)")
    return samples


def _is_face_line(text: str) -> bool:
    return all(is_number(token) for token in text.split())


def _face_count(lines: list[tuple[int, str]], at: int, path: str | os.PathLike[str], relative: str) -> int:
    """The face count on ``lines[at]`` (the line after the image path)."""
    if at >= len(lines):
        raise DatasetError(f"{where(path, lines[at - 1][0])}: file ends after the image path {relative}")
    line_no, text = lines[at]
    try:
        count = int(text)
    except ValueError:
        count = -1
    if count < 0:
        raise DatasetError(f"{where(path, line_no)}: expected the number of faces of {relative}, got {snippet(text)}")
    return count


def _face_values(
    text: str, path: str | os.PathLike[str], line_no: int, k: int, count: int, relative: str
) -> np.ndarray:
    """Face line ``k`` (of ``count``) of image ``relative`` as 10 values (``x y w h`` lines get zero attributes)."""
    tokens = text.split()
    if len(tokens) not in _FACE_COLUMNS:
        if not _is_face_line(text):
            raise DatasetError(
                f"{where(path, line_no)}: expected face {k + 1} of {count} of {relative}, got {snippet(text)}"
            )
        raise DatasetError(
            f"{where(path, line_no)}: expected 10 numbers (x1 y1 w h blur expression illumination invalid "
            f"occlusion pose) or 4 (x1 y1 w h), got {len(tokens)}"
        )
    row = np.zeros(10)
    row[: len(tokens)] = parse_floats(tokens, path, line_no, "face")
    return row


def read_wider_mat(
    path: str | os.PathLike[str],
    image_root: str | os.PathLike[str] | None = None,
    *,
    check_images: bool = False,
    drop_invalid: bool = False,
) -> list[DetectionSample]:
    """The images of a ``wider_face_*.mat`` file, event by event in file order (images ``EVENT/NAME.jpg``).

    ``drop_invalid`` leaves out faces flagged in ``invalid_label_list``. Raises :class:`DatasetError`
    (one line) for an unreadable file, missing variables, or lists whose lengths disagree.
    """
    scipy_io = require("scipy.io", "eval", "reading MATLAB ground truth (.mat)")

    root = Path(image_root) if image_root is not None else Path(path).parent
    try:
        mat = scipy_io.loadmat(path)
    except (OSError, ValueError, scipy_io.matlab.MatReadError) as e:
        raise DatasetError(f"{where(path)}: cannot read MATLAB file ({one_line(e, 120)})") from None
    needed = ["event_list", "file_list", "face_bbx_list"] + (["invalid_label_list"] if drop_invalid else [])
    missing = [key for key in needed if key not in mat]
    if missing:
        raise DatasetError(f"{where(path)}: no {', '.join(missing)} in this .mat file (not a WIDER FACE split file?)")
    events, files, boxes = (mat[key].ravel() for key in needed[:3])
    invalid = mat["invalid_label_list"].ravel() if drop_invalid else None
    if not len(events) == len(files) == len(boxes) or (invalid is not None and len(invalid) != len(events)):
        raise DatasetError(f"{where(path)}: the event, file and box lists have different lengths")
    samples: list[DetectionSample] = []
    for e, event in enumerate(events):
        name = _mat_text(event, path)
        names, event_boxes = files[e].ravel(), boxes[e].ravel()
        flags = invalid[e].ravel() if invalid is not None else [None] * len(names)
        if not len(names) == len(event_boxes) == len(flags):
            raise DatasetError(f"{where(path)}: event {name} has {len(names)} files but {len(event_boxes)} box lists")
        for stem, xywh, flag in zip(names, event_boxes, flags, strict=True):
            relative = f"{name}/{_mat_text(stem, path)}.jpg"
            table = np.asarray(xywh, dtype=np.float64)
            if table.size % 4:
                raise DatasetError(f"{where(path)}: boxes of {relative} have shape {table.shape}, expected (n, 4)")
            table = table.reshape(-1, 4)
            if flag is not None:
                table = table[np.asarray(flag).reshape(-1) != 1]
            sample = sample_at(root, relative, xywh_to_xyxy(table))
            if check_images:
                require_image(sample, path)
            samples.append(sample)
    return samples


def _mat_text(value: Any, path: str | os.PathLike[str]) -> str:
    """The string inside a (nested) MATLAB cell / char array."""
    a = np.asarray(value)
    while a.dtype == object and a.size == 1:
        a = np.asarray(a.ravel()[0])
    if a.dtype.kind != "U" or a.size != 1:
        raise DatasetError(f"{where(path)}: expected a text entry, got an array of {a.dtype} with shape {a.shape}")
    return str(a.ravel()[0])
