"""The record every landmark dataset reader produces, and the face box each sample's crop comes from.

Crop convention (the same as inference, see :mod:`hrface.landmarks.crop`): a sample's crop is the
square of side ``max(box width, box height) × 1.25`` centred on ``box``. Readers fill ``box`` from
their format's own face box (HRNet CSV centre/scale, WFLW rectangles, …) or leave it ``None``; the
``prepare`` step replaces it with the *detector's* box so that training crops match inference crops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class LandmarkSample:
    """One annotated face.

    Attributes:
        image: path of the image file.
        points: (K, 2) float64 landmark coordinates in image pixels (0-based; pixel centres at integers).
        box: (4,) float64 face box ``x1, y1, x2, y2`` in pixels that defines the crop, or None
            (then :func:`box_from_points` is used).
        photo: identifier of the photo; all faces of one photo share it (splits never separate them).
        subset: name of the subset the face belongs to (e.g. 'afw', 'helen', 'ibug'), for per-subset tables.
        visible: (K,) bool visibility flags where the format has them (COFW), else None.
    """

    image: Path
    points: np.ndarray
    box: np.ndarray | None = None
    photo: str = ""
    subset: str = ""
    visible: np.ndarray | None = None

    def with_box(self, box: np.ndarray | None) -> LandmarkSample:
        """A copy with another face box."""
        return replace(self, box=None if box is None else np.asarray(box, dtype=np.float64).reshape(4))

    def crop_box(self) -> np.ndarray:
        """The box that defines this sample's crop: ``box`` or, without one, :func:`box_from_points`."""
        return self.box if self.box is not None else box_from_points(self.points)


def box_from_points(points: np.ndarray) -> np.ndarray:
    """Tight box ``x1, y1, x2, y2`` around the (finite) landmark coordinates (K, 2)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    pts = pts[np.isfinite(pts).all(axis=1)]
    return np.concatenate([pts.min(axis=0), pts.max(axis=0)])


def box_from_center_scale(center: np.ndarray, scale: float) -> np.ndarray:
    """Square box of side ``scale × 200`` px centred on ``center`` (the HRNet CSV convention; the crop
    then has side ``scale × 200 × 1.25``, exactly the reference's crop)."""
    cx, cy = np.asarray(center, dtype=np.float64).reshape(2)
    half = float(scale) * 100.0
    return np.array([cx - half, cy - half, cx + half, cy + half])


def indices_by_image(samples: Sequence[LandmarkSample]) -> dict[str, list[int]]:
    """Sample indices grouped by image path, in first-seen order, so each image is read once."""
    groups: dict[str, list[int]] = {}
    for index, sample in enumerate(samples):
        groups.setdefault(str(sample.image), []).append(index)
    return groups
