"""The result type of the pipeline: one detected face."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..geometry.align import align_face
from ..geometry.pose import Pose
from ..landmarks.layouts import LAYOUTS


@dataclass
class Face:
    """One face, in pixel coordinates of the original image (0-based; pixel (i, j) has its centre at x=j, y=i).

    Attributes:
        box: (4,) float ``x1, y1, x2, y2``.
        score: detector confidence in [0, 1].
        keypoints: (5, 2) float ``(x, y)``: eye on the image's left, eye on the image's right, nose tip,
            mouth corner on the image's left, mouth corner on the image's right (the RetinaFace order).
        landmarks: (K, 2) float ``(x, y)`` dense landmarks of the landmark model's layout, or None.
        landmark_scores: (K,) per-point confidence in [0, 1] (:mod:`hrface.landmarks.confidence`: with the
            shipped model, about the probability that the point lies within 5 % of the inter-ocular distance of
            where an annotator puts it), or None.
        pose: head pose (yaw, pitch, roll in degrees; :mod:`hrface.geometry.pose`), or None.
    """

    box: np.ndarray
    score: float
    keypoints: np.ndarray
    landmarks: np.ndarray | None = None
    landmark_scores: np.ndarray | None = None
    pose: Pose | None = None

    def align(self, image: np.ndarray, size: int = 112, template: str = "arcface") -> tuple[np.ndarray, np.ndarray]:
        """Aligned ``size``×``size`` crop of this face from ``image`` (the (H, W, 3) uint8 array it was found in)
        and the (2, 3) image → crop matrix; see :func:`hrface.geometry.align.align_face`.  Uses the landmarks
        when they are of a known layout (68 points: eye centres, nose tip 30, mouth corners 48 / 54), else the
        keypoints."""
        return align_face(
            image, landmarks=self._known_landmarks(), keypoints=self.keypoints, size=size, template=template
        )

    @property
    def five_points(self) -> np.ndarray:
        """(5, 2) float ``(x, y)`` in the order of ``keypoints``, from the dense landmarks when they are of a
        known layout (68 points: eye centres = means of 36–41 / 42–47, nose tip 30, mouth corners 48 / 54), else
        the detector's keypoints.  With the shipped landmark model these are far more precise than the
        detector's own (README, "The shipped detector")."""
        landmarks = self._known_landmarks()
        if landmarks is None:
            return np.asarray(self.keypoints, dtype=np.float64)
        return LAYOUTS[len(landmarks)].five_points(np.asarray(landmarks, dtype=np.float64))

    def _known_landmarks(self) -> np.ndarray | None:
        return self.landmarks if self.landmarks is not None and len(self.landmarks) in LAYOUTS else None

    def to_dict(self, decimals: int = 2) -> dict[str, Any]:
        """JSON-ready dict: ``box``, ``score``, ``keypoints`` (the detector's), ``five_points`` (:attr:`five_points`:
        from the landmarks when there are, else the keypoints), ``landmarks`` (null without a landmark model),
        ``landmark_scores`` (K per-point scores in [0, 1], rounded to 0.001, or null), ``pose`` (``{"yaw", "pitch",
        "roll"}`` in degrees rounded to 0.01, or null)."""
        return {
            "box": _rounded(self.box, decimals),
            "score": round(float(self.score), 5),
            "keypoints": _rounded(self.keypoints, decimals),
            "five_points": _rounded(self.five_points, decimals),
            "landmarks": None if self.landmarks is None else _rounded(self.landmarks, decimals),
            "landmark_scores": None if self.landmark_scores is None else _rounded(self.landmark_scores, 3),
            "pose": None if self.pose is None else self.pose.to_dict(2),
        }


def _rounded(values: np.ndarray, decimals: int) -> list[Any]:
    return np.round(np.asarray(values, dtype=np.float64), decimals).tolist()
