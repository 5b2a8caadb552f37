"""Running a landmark model over annotated faces, from ground-truth-derived or detector boxes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..data.landmarks.detector_boxes import WIDER_BOX_FROM_POINTS, BoxFromPoints, detect_and_match, detections_of
from ..data.landmarks.samples import LandmarkSample
from ..io.image import read_image
from ..runtime.detector import Detector
from ..runtime.landmarker import Landmarker


def predict_landmarks(
    landmarker: Landmarker, samples: Sequence[LandmarkSample], boxes: Sequence[np.ndarray | None]
) -> np.ndarray:
    """Landmarks (N, K, 2) in image pixels for each sample from its box; NaN rows where the box is None
    (a missed face, counted as a failure by :func:`~hrface.evaluation.landmarks.normalised_errors`).

    All faces of one image go through the model together; each image is read once.
    """
    out = np.full((len(samples), landmarker.num_landmarks, 2), np.nan)
    by_image: dict[str, list[int]] = {}
    for index, (sample, box) in enumerate(zip(samples, boxes, strict=True)):
        if box is not None:
            by_image.setdefault(str(sample.image), []).append(index)
    for image_path, indices in by_image.items():
        image = read_image(image_path)
        points, _ = landmarker.predict(image, np.stack([boxes[i] for i in indices]))
        out[indices] = points
    return out


def ground_truth_boxes(samples: Sequence[LandmarkSample], mapping: BoxFromPoints | None = None) -> list[np.ndarray]:
    """Boxes from the annotation: each sample's own box, else ``mapping(points)``. Without a mapping the
    points map to a box in the detector's convention with :data:`WIDER_BOX_FROM_POINTS` (the box the
    landmark models are trained on; a tight landmark box would crop too close and too low)."""
    fallback = mapping or WIDER_BOX_FROM_POINTS
    return [s.box if s.box is not None else fallback(s.points) for s in samples]


def detector_boxes(samples: Sequence[LandmarkSample], detector: Detector) -> list[np.ndarray | None]:
    """The matched detection's box for each sample, None where the detector missed the face."""
    return detect_and_match(samples, detections_of(detector))
