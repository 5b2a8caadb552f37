"""The result type of the pipeline: one detected face."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Face:
    """One face, in pixel coordinates of the original image (0-based; pixel (i, j) has its centre at x=j, y=i).

    Attributes:
        box: (4,) float ``x1, y1, x2, y2``.
        score: detector confidence in [0, 1].
        keypoints: (5, 2) float ``(x, y)``: eye on the image's left, eye on the image's right, nose tip,
            mouth corner on the image's left, mouth corner on the image's right (the RetinaFace order).
        landmarks: (K, 2) float ``(x, y)`` dense landmarks of the landmark model's layout, or None.
        landmark_scores: (K,) heatmap peak values (a rough per-point confidence), or None.
    """

    box: np.ndarray
    score: float
    keypoints: np.ndarray
    landmarks: np.ndarray | None = None
    landmark_scores: np.ndarray | None = None

    def to_dict(self, decimals: int = 2) -> dict[str, Any]:
        """JSON-ready dict: ``box``, ``score``, ``keypoints``, ``landmarks`` (null without a landmark model)."""
        return {
            "box": _rounded(self.box, decimals),
            "score": round(float(self.score), 5),
            "keypoints": _rounded(self.keypoints, decimals),
            "landmarks": None if self.landmarks is None else _rounded(self.landmarks, decimals),
        }


def _rounded(values: np.ndarray, decimals: int) -> list[Any]:
    return np.round(np.asarray(values, dtype=np.float64), decimals).tolist()
