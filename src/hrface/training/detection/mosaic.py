"""Mosaic and zoom-out training items: the layout of each item and its canvas as network input.

The canvas itself (photos scaled so that their faces take a chosen size) is built by
:func:`hrface.data.detection.canvas.build_canvas`, shared with the small-face test.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...data.detection.canvas import CanvasOptions, Faces, build_canvas
from .augment import distort_colors, mirror, normalised_faces, to_network_input


def choose_grid(rng: np.random.Generator, mosaic_prob: float, zoom_out_prob: float, grids: Sequence[int]) -> int | None:
    """The layout of one training item: None for the reference augmentation, 1 for a zoom-out, ``g`` for a
    ``g × g`` mosaic (``g`` drawn from ``grids``). Draws nothing when both probabilities are 0, so the
    reference items of a config without mosaics stay what they were."""
    if mosaic_prob <= 0 and zoom_out_prob <= 0:
        return None
    u = rng.random()
    if u < mosaic_prob:
        return int(grids[int(rng.integers(len(grids)))])
    return 1 if u < mosaic_prob + zoom_out_prob else None


def augment_canvas(
    photos: Sequence[tuple[np.ndarray, Faces]],
    rng: np.random.Generator,
    image_size: int,
    grid: int,
    options: CanvasOptions,
    background: np.ndarray | None = None,
) -> tuple[np.ndarray, Faces]:
    """A training item from a square canvas of side ``image_size`` (:func:`build_canvas`: each photo with
    colour jitter; on ``background``, a face-free image, when given), mirrored with probability 0.5:
    ``(input (3, S, S) float32 BGR − mean, faces normalised by S)``, as :func:`~.augment.augment` returns."""
    canvas, faces = build_canvas(photos, (image_size, image_size), grid, rng, options, distort_colors, background)
    if rng.integers(2):
        canvas, faces = mirror(canvas, faces)
    return to_network_input(canvas, image_size), normalised_faces(faces, image_size)
