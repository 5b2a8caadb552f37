"""What the stage APIs take besides one image: batches of images, face boxes and keypoints.

Images go through :func:`hrface.io.image.to_bgr` everywhere (``FaceAnalyzer``, ``Detector``,
``Landmarker``), so every stage accepts exactly what ``FaceAnalyzer.__call__`` accepts.  Anything else
raises a one-line :class:`~hrface.errors.ImageLoadError` or :class:`~hrface.errors.InputError` that
names what was received and what is accepted.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ImageLoadError, InputError
from ..io.image import to_bgr


def image_batch(images: Sequence[Any], rgb: bool = False) -> list[np.ndarray]:
    """Every image of a batch as uint8 BGR (H, W, 3), all converted before any work starts; an image that
    cannot be converted raises an error naming its index, so a bad image never costs the others' work."""
    if _is_one_image(images):
        raise InputError(
            f"expected a sequence of images (a list, or an (N, H, W, C) array), got {_describe(images)}; "
            "for one image call analyze() / detect()"
        )
    try:
        items = list(images)
    except TypeError:
        raise InputError(f"expected a sequence of images, got {_describe(images)}") from None
    converted = []
    for index, image in enumerate(items):
        try:
            converted.append(to_bgr(image, rgb=rgb, copy=False))
        except ImageLoadError as exc:
            raise type(exc)(f"images[{index}]: {exc}") from None
    return converted


def _is_one_image(value: Any) -> bool:
    if isinstance(value, str | os.PathLike | bytes):
        return True
    if isinstance(value, np.ndarray):
        return value.ndim != 4
    return type(value).__module__.startswith("PIL.")


def face_boxes(boxes: Any, keypoints: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Validated face boxes (N, 4) float64 ``x1, y1, x2, y2`` in pixels (one box may be given as (4,)) and
    optional keypoints (N, 5, 2) float64.  Boxes must be finite with ``x2 >= x1`` and ``y2 >= y1``."""
    array = _numeric(boxes, "boxes", "(N, 4) x1, y1, x2, y2")
    if array.ndim == 1 and array.shape[0] in (0, 4):
        array = array.reshape(-1, 4)
    if array.ndim != 2 or array.shape[1] != 4:
        raise InputError(f"boxes must have shape (N, 4) x1, y1, x2, y2 in pixels; got shape {array.shape}")
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        raise InputError(f"boxes[{int(np.argmax(bad))}] is not finite ({_row(array, bad)}); pass finite pixels")
    inverted = (array[:, 2] < array[:, 0]) | (array[:, 3] < array[:, 1])
    if inverted.any():
        raise InputError(
            f"boxes[{int(np.argmax(inverted))}] is inverted ({_row(array, inverted)}); boxes are x1, y1, x2, y2 "
            "with x2 >= x1 and y2 >= y1"
        )
    if keypoints is None:
        return array, None
    points = _numeric(keypoints, "keypoints", "(N, 5, 2)")
    if points.shape != (len(array), 5, 2):
        raise InputError(f"keypoints must have shape (N, 5, 2) for N = {len(array)} boxes; got shape {points.shape}")
    if not np.isfinite(points).all():
        raise InputError("keypoints contain NaN or infinite values; pass finite pixels or keypoints=None")
    return array, points


def _numeric(value: Any, name: str, shape: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a numeric array of shape {shape}; got {_describe(value)}") from None
    return array


def _row(array: np.ndarray, mask: np.ndarray) -> str:
    return ", ".join(f"{v:g}" for v in array[int(np.argmax(mask))])


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array {value.dtype}{list(value.shape)}"
    return f"{type(value).__module__}.{type(value).__qualname__}".removeprefix("builtins.")
