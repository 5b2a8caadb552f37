"""Prior boxes (anchors) of RetinaFace, and its input convention (:data:`BGR_MEAN`, the mean of RetinaFace's
configuration, :data:`hrface.models.config.DETECTOR_MEAN`)."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from ..models.config import DETECTOR_MEAN

BGR_MEAN = DETECTOR_MEAN  # subtracted from BGR pixels by RetinaFace

DEFAULT_MIN_SIZES: tuple[tuple[int, ...], ...] = ((16, 32), (64, 128), (256, 512))
DEFAULT_STEPS: tuple[int, ...] = (8, 16, 32)


def feature_map_sizes(height: int, width: int, steps: tuple[int, ...] = DEFAULT_STEPS) -> list[tuple[int, int]]:
    """(rows, cols) of each pyramid level for an input of ``height``×``width`` pixels: ceil(size / step)."""
    return [(math.ceil(height / s), math.ceil(width / s)) for s in steps]


@lru_cache(maxsize=32)
def _prior_boxes_cached(
    height: int, width: int, min_sizes: tuple[tuple[int, ...], ...], steps: tuple[int, ...]
) -> np.ndarray:
    levels = []
    for (rows, cols), sizes, step in zip(feature_map_sizes(height, width, steps), min_sizes, steps, strict=True):
        cy, cx = np.meshgrid(
            (np.arange(rows, dtype=np.float64) + 0.5) * step / height,
            (np.arange(cols, dtype=np.float64) + 0.5) * step / width,
            indexing="ij",
        )
        a = len(sizes)
        centres = np.broadcast_to(np.stack([cx, cy], axis=-1)[:, :, None, :], (rows, cols, a, 2))
        anchor_sizes = np.broadcast_to(np.array([[s / width, s / height] for s in sizes]), (rows, cols, a, 2))
        levels.append(np.concatenate([centres, anchor_sizes], axis=-1).reshape(-1, 4))
    return np.concatenate(levels).astype(np.float32)


def prior_boxes(
    height: int,
    width: int,
    min_sizes: tuple[tuple[int, ...], ...] = DEFAULT_MIN_SIZES,
    steps: tuple[int, ...] = DEFAULT_STEPS,
) -> np.ndarray:
    """Prior boxes for an input of ``height``×``width`` pixels.

    Returns (P, 4) float32 ``(cx, cy, w, h)`` normalised by the input width/height, ordered level
    (stride 8, 16, 32) → row → column → min size, the order of the network's outputs. The centre of
    cell (i, j) at stride s is ((j + 0.5)·s, (i + 0.5)·s) pixels. Results are cached per input size;
    the returned array is shared, so do not modify it in place (training code takes
    ``torch.from_numpy(...)`` of it, which shares the memory too).
    """
    return _prior_boxes_cached(int(height), int(width), tuple(map(tuple, min_sizes)), tuple(steps))
