"""Detector boxes for annotated faces: the link between training crops and inference crops.

At inference the landmark crop comes from the detector's box. Training on crops from the same kind
of box keeps accuracy on detector boxes (not only on ground-truth boxes). :func:`attach_detector_boxes`
runs the detector on every photo, matches detections to annotated faces, and stores the matched
detector box in each sample. A face the detector misses gets a box predicted from its landmarks by
:class:`BoxFromPoints`, a mapping fitted on the matched faces (median offsets and scale of the
detector box relative to the tight landmark box).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...io.image import read_image
from ...landmarks.layouts import get_layout
from .samples import LandmarkSample, box_from_points, indices_by_image

# A detection matches an annotated face when its 5 keypoints lie, on average, within this fraction
# of the face's inter-ocular distance from the 5 keypoints derived from the annotation.
MATCH_KEYPOINT_TOLERANCE = 0.35


@dataclass(frozen=True)
class BoxFromPoints:
    """Detector-like box from landmarks: centre shift and size relative to the tight landmark box.

    ``box = (cx + dx·w, cy + dy·h, sx·w, sy·h)`` as centre/size, where ``(cx, cy, w, h)`` is the tight
    box of the points.
    """

    dx: float = 0.0
    dy: float = 0.0
    sx: float = 1.0
    sy: float = 1.0

    def __call__(self, points: np.ndarray) -> np.ndarray:
        x1, y1, x2, y2 = box_from_points(points)
        w, h = x2 - x1, y2 - y1
        cx, cy = (x1 + x2) / 2 + self.dx * w, (y1 + y2) / 2 + self.dy * h
        return np.array([cx - self.sx * w / 2, cy - self.sy * h / 2, cx + self.sx * w / 2, cy + self.sy * h / 2])

    @classmethod
    def fit(cls, points: Iterable[np.ndarray], boxes: Iterable[np.ndarray]) -> BoxFromPoints:
        """Median mapping from tight landmark boxes to the given (detector) boxes."""
        rel = []
        for pts, box in zip(points, boxes, strict=True):
            x1, y1, x2, y2 = box_from_points(pts)
            w, h = max(x2 - x1, 1e-6), max(y2 - y1, 1e-6)
            rel.append(
                [
                    ((box[0] + box[2]) - (x1 + x2)) / 2 / w,
                    ((box[1] + box[3]) - (y1 + y2)) / 2 / h,
                    (box[2] - box[0]) / w,
                    (box[3] - box[1]) / h,
                ]
            )
        if not rel:
            return cls()
        dx, dy, sx, sy = np.median(np.asarray(rel), axis=0)
        return cls(float(dx), float(dy), float(sx), float(sy))

    @classmethod
    def fit_matched(cls, samples: Sequence[LandmarkSample], boxes: Sequence[np.ndarray | None]) -> BoxFromPoints:
        """:meth:`fit` on the samples that have a (detector) box; None entries are left out."""
        pairs = [(s.points, b) for s, b in zip(samples, boxes, strict=True) if b is not None]
        return cls.fit([p for p, _ in pairs], [b for _, b in pairs])


DetectFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""Maps a BGR image to ``(boxes (M, 4), keypoints (M, 5, 2))`` of its detections."""


# Tight 68-point landmark box → RetinaFace / WIDER FACE box. Measured by matching the published
# RetinaFace MobileNet-0.25 detections to the annotated faces of 300W AFW + HELEN train (1,122 matched
# faces of 1,207) and taking the median of BoxFromPoints.fit: the centre moves up by 0.163 × the
# landmark box height (the box covers the forehead, the landmarks start at the brows) and the size is
# 0.979 w × 1.326 h. The measured horizontal shift, −0.0035 w (half a pixel on a 150 px face), is set
# to 0: a mirrored face must get the mirrored box.
WIDER_BOX_FROM_POINTS = BoxFromPoints(dx=0.0, dy=-0.163, sx=0.979, sy=1.326)


def detections_of(detector: Any) -> DetectFn:
    """A :data:`DetectFn` from a :class:`~hrface.runtime.detector.Detector` (anything whose
    ``detect(image)`` returns an object with ``boxes`` and ``keypoints``)."""

    def detect(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        found = detector.detect(image)
        return found.boxes, found.keypoints

    return detect


def match_faces(gt_points: list[np.ndarray], det_keypoints: np.ndarray) -> list[int | None]:
    """Match annotated faces to detections by their 5 keypoints.

    Args:
        gt_points: per annotated face, its (K, 2) landmarks (a layout of :mod:`hrface.landmarks.layouts`).
        det_keypoints: (M, 5, 2) keypoints of the detections, best score first.

    Returns:
        for each annotated face, the index of its detection or None. Greedy on the normalised keypoint
        distance (closest pairs first), one detection per face, within :data:`MATCH_KEYPOINT_TOLERANCE`.
    """
    if not gt_points or len(det_keypoints) == 0:
        return [None] * len(gt_points)
    layout = get_layout(len(gt_points[0]))
    gt = np.stack([layout.five_points(p) for p in gt_points])  # (N, 5, 2)
    iod = np.stack([layout.interocular(p) for p in gt_points])  # (N,)
    dist = np.linalg.norm(gt[:, None] - det_keypoints[None], axis=-1).mean(-1) / np.maximum(iod, 1e-6)[:, None]
    matches: list[int | None] = [None] * len(gt_points)
    used: set[int] = set()
    for flat in np.argsort(dist, axis=None):
        i, j = divmod(int(flat), dist.shape[1])
        if dist[i, j] > MATCH_KEYPOINT_TOLERANCE:
            break
        if matches[i] is None and j not in used:
            matches[i] = j
            used.add(j)
    return matches


@dataclass
class DetectorBoxReport:
    """How many annotated faces got a detector box, and the fallback mapping used for the rest."""

    faces: int
    matched: int
    fallback: BoxFromPoints

    @property
    def missed(self) -> int:
        return self.faces - self.matched


def detect_and_match(samples: Sequence[LandmarkSample], detect: DetectFn) -> list[np.ndarray | None]:
    """Detector box (4,) for each sample, or None where the detector missed the face.

    ``detect`` maps a BGR image to ``(boxes (M, 4), keypoints (M, 5, 2))``. Photos are read once each.
    """
    return [None if found is None else found[0] for found in detect_and_match_faces(samples, detect)]


def detect_and_match_faces(
    samples: Sequence[LandmarkSample], detect: DetectFn
) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """The matched detection of each sample, ``(box (4,), keypoints (5, 2))`` float64, or None where the
    detector missed the face (see :func:`detect_and_match`)."""
    found: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(samples)
    for image_path, indices in indices_by_image(samples).items():
        det_boxes, det_points = detect(read_image(image_path))
        matches = match_faces([samples[i].points for i in indices], det_points)
        for i, j in zip(indices, matches, strict=True):
            if j is not None:
                found[i] = (np.asarray(det_boxes[j], dtype=np.float64), np.asarray(det_points[j], dtype=np.float64))
    return found


def attach_detector_boxes(
    samples: Sequence[LandmarkSample],
    detect: DetectFn,
    fallback: BoxFromPoints | None = None,
) -> tuple[list[LandmarkSample], DetectorBoxReport]:
    """Samples whose ``box`` is the matched detector box; missed faces get ``fallback(points)``
    (fitted on the matched faces when not given)."""
    found = detect_and_match(samples, detect)
    if fallback is None:
        fallback = BoxFromPoints.fit_matched(samples, found)
    out = [s.with_box(b if b is not None else fallback(s.points)) for s, b in zip(samples, found, strict=True)]
    matched = sum(b is not None for b in found)
    return out, DetectorBoxReport(faces=len(samples), matched=matched, fallback=fallback)
