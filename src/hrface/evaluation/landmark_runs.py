"""Running a landmark model over annotated faces, from ground-truth-derived or detector boxes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..data.landmarks.detector_boxes import (
    WIDER_BOX_FROM_POINTS,
    BoxFromPoints,
    detect_and_match,
    detect_and_match_faces,
    detections_of,
)
from ..data.landmarks.samples import LandmarkSample
from ..io.image import read_image, write_image
from ..landmarks.layouts import get_layout
from ..runtime.detector import Detector
from ..runtime.landmarker import Landmarker


def predict_landmarks(
    landmarker: Landmarker | Any,
    samples: Sequence[LandmarkSample],
    boxes: Sequence[np.ndarray | None],
    keypoints: Sequence[np.ndarray | None] | None = None,
    peaks: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks (N, K, 2) in image pixels for each sample from its box, and their scores (N, K); NaN rows
    where the box is None (a missed face, counted as a failure by
    :func:`~hrface.evaluation.landmarks.normalised_errors`).
    ``landmarker``: a :class:`Landmarker` or a peer with its ``num_landmarks`` and ``predict``.
    ``keypoints``: the detector's (5, 2) keypoints per sample, passed on to ``predict`` (for ``align``).
    ``peaks``: return the raw heatmap peaks (:meth:`Landmarker.predict_peaks`) instead of the point scores.

    All faces of one image go through the model together; each image is read once.
    """
    out = np.full((len(samples), landmarker.num_landmarks, 2), np.nan)
    scores = np.full((len(samples), landmarker.num_landmarks), np.nan)
    predict = landmarker.predict_peaks if peaks else landmarker.predict
    by_image: dict[str, list[int]] = {}
    for index, (sample, box) in enumerate(zip(samples, boxes, strict=True)):
        if box is not None:
            by_image.setdefault(str(sample.image), []).append(index)
    for image_path, indices in by_image.items():
        image = read_image(image_path)
        face_boxes = np.stack([boxes[i] for i in indices])
        if keypoints is None:
            points, values = predict(image, face_boxes)
        else:
            points, values = predict(image, face_boxes, np.stack([keypoints[i] for i in indices]))
        out[indices] = points
        scores[indices] = values
    return out, scores


def ground_truth_boxes(samples: Sequence[LandmarkSample], mapping: BoxFromPoints | None = None) -> list[np.ndarray]:
    """Boxes from the annotation: each sample's own box, else ``mapping(points)``. Without a mapping the
    points map to a box in the detector's convention with :data:`WIDER_BOX_FROM_POINTS` (the box the
    landmark models are trained on; a tight landmark box would crop too close and too low)."""
    fallback = mapping or WIDER_BOX_FROM_POINTS
    return [s.box if s.box is not None else fallback(s.points) for s in samples]


def detector_boxes(samples: Sequence[LandmarkSample], detector: Detector) -> list[np.ndarray | None]:
    """The matched detection's box for each sample, None where the detector missed the face."""
    return detect_and_match(samples, detections_of(detector))


def detector_faces(
    samples: Sequence[LandmarkSample], detector: Detector
) -> tuple[list[np.ndarray | None], list[np.ndarray | None]]:
    """The matched detection's box (4,) and keypoints (5, 2) for each sample, None where it was missed."""
    found = detect_and_match_faces(samples, detections_of(detector))
    boxes = [None if face is None else face[0] for face in found]
    keypoints = [None if face is None else face[1] for face in found]
    return boxes, keypoints


def peer_box_sets(
    peer: Any, samples: Sequence[LandmarkSample], hrface_boxes: Sequence[np.ndarray | None] | None = None
) -> dict[str, list[np.ndarray | None]]:
    """The boxes a peer landmark model (:mod:`hrface.benchmark.landmark_peers`) is evaluated from.

    - ``detector``: the peer's own detections, matched to the faces by their 5 keypoints (the peer's
      pipeline end to end; a face it misses is a failure, as for hrface);
    - ``gt``: boxes from the annotation in the peer's own box convention (the median mapping from the
      landmarks' tight box to the peer's matched boxes, as hrface's ``gt`` boxes are in its detector's);
    - ``hrface detector`` (with ``hrface_boxes``): hrface's detector boxes mapped to the peer's box
      convention by the median relation over the faces both detectors found.
    """
    own = detect_and_match(samples, peer.detect)
    to_peer = BoxFromPoints.fit_matched(samples, own)
    sets: dict[str, list[np.ndarray | None]] = {"detector": own, "gt": [to_peer(s.points) for s in samples]}
    if hrface_boxes is not None:
        both = [(h, o) for h, o in zip(hrface_boxes, own, strict=True) if h is not None and o is not None]
        convert = BoxFromPoints.fit([_corners(h) for h, _ in both], [o for _, o in both])
        sets["hrface detector"] = [None if h is None else convert(_corners(h)) for h in hrface_boxes]
    return sets


def _corners(box: np.ndarray) -> np.ndarray:
    """(2, 2) top-left and bottom-right corners: 'points' whose tight box is ``box`` (for :class:`BoxFromPoints`)."""
    return np.asarray(box, dtype=np.float64).reshape(2, 2)


def rotated_samples(samples: Sequence[LandmarkSample], degrees: float, out_dir: Path) -> list[LandmarkSample]:
    """Copies of ``samples`` whose photos are rotated in-plane by ``degrees`` (counter-clockwise as seen,
    about the photo's centre, on a canvas large enough to keep every pixel; black outside), with the
    points rotated alike.  The rotated photos are written as PNG under ``out_dir`` (the inputs are only
    read); each photo is rotated once.  Boxes are dropped (they no longer fit the face)."""
    out_dir = Path(out_dir)
    done: dict[str, tuple[Path, np.ndarray]] = {}
    rotated = []
    for sample in samples:
        key = str(sample.image)
        if key not in done:
            image = read_image(sample.image)
            h, w = image.shape[:2]
            matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), degrees, 1.0)
            cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
            size = (int(np.ceil(w * cos + h * sin)), int(np.ceil(w * sin + h * cos)))
            matrix[:, 2] += ((size[0] - 1) / 2 - (w - 1) / 2, (size[1] - 1) / 2 - (h - 1) / 2)
            path = out_dir / f"{len(done):05d}.png"
            write_image(path, cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR))
            done[key] = (path, matrix)
        path, matrix = done[key]
        points = np.asarray(sample.points, np.float64) @ matrix[:, :2].T + matrix[:, 2]
        rotated.append(replace(sample, image=path, points=points, box=None))
    return rotated


def mirrored_samples(samples: Sequence[LandmarkSample], out_dir: Path) -> list[LandmarkSample]:
    """Copies of ``samples`` whose photos are mirrored left to right, with the points mirrored alike
    (``x' = width - 1 - x``, then reordered by the layout's flip permutation, so that each index keeps its
    meaning).  For the handedness of errors: a mirror-symmetric pipeline shows the same signed x error with
    the opposite sign on the mirrored faces, while an offset the labels carry keeps its sign in the labels'
    frame.  The mirrored photos are written as PNG under ``out_dir``; boxes are mirrored too."""
    out_dir = Path(out_dir)
    done: dict[str, tuple[Path, int]] = {}
    mirrored = []
    for sample in samples:
        key = str(sample.image)
        if key not in done:
            image = read_image(sample.image)
            path = out_dir / f"{len(done):05d}.png"
            write_image(path, np.ascontiguousarray(image[:, ::-1]))
            done[key] = (path, image.shape[1])
        path, width = done[key]
        points = np.asarray(sample.points, np.float64).copy()
        points[:, 0] = width - 1 - points[:, 0]
        points = points[get_layout(len(points)).flip_permutation()]
        box = None
        if sample.box is not None:
            x1, y1, x2, y2 = np.asarray(sample.box, np.float64)
            box = np.array([width - 1 - x2, y1, width - 1 - x1, y2])
        mirrored.append(replace(sample, image=path, points=points, box=box))
    return mirrored
