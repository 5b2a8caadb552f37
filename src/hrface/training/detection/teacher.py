"""Teacher targets: the faces a trained detector finds in the training photos that the annotation leaves out.

300W annotates one or a few faces per photo; every other face in its photos is trained as background.
A teacher (e.g. the published WIDER FACE MobileNet-0.25 checkpoint) runs once over the training photos,
at its default input size. Each of its detections that scores at least ``threshold`` and whose IoU with
every annotated face box is below ``match_iou`` becomes an extra face of that photo, with a box and no
keypoints (``has_keypoints`` False, label −1 in the training targets): the keypoint targets stay the
annotation's own (for 300W: eye centres, nose tip, mouth corners). A detection that overlaps an
annotated face by ``match_iou`` or more is taken to be that face and adds nothing.

The teacher's detections (score ≥ :data:`CACHE_MIN_SCORE`) are cached in a JSON file::

    {"teacher": NAME_OR_PATH, "min_score": 0.3, "photos": {IMAGE_PATH: [[x1, y1, x2, y2, score], ...]}}

(pixels of the photo, xyxy). The cache is used when it was written for the same teacher and holds every
photo; ``threshold`` and ``match_iou`` apply when the targets are built, so changing them re-runs nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...data.detection.samples import DetectionSample
from ...io.files import atomic_write_text
from ...io.image import read_image
from ...ops import box_iou_numpy

CACHE_MIN_SCORE = 0.3  # detections kept in the cache (the threshold can then be raised without a re-run)
DEFAULT_THRESHOLD = 0.7
DEFAULT_MATCH_IOU = 0.3

TeacherFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""Maps a BGR photo to its detections ``(boxes (K, 4) xyxy pixels, scores (K,))``."""


@dataclass(frozen=True)
class TeacherReport:
    """What the teacher added: photos, annotated faces, extra faces, photos that got at least one."""

    photos: int
    annotated: int
    added: int
    photos_with_added: int

    def describe(self) -> str:
        return (
            f"teacher targets: {self.added} faces added to {self.photos_with_added} of {self.photos} images "
            f"({self.annotated} annotated faces; added faces have no keypoints)"
        )


def run_teacher(samples: Sequence[DetectionSample], detect: TeacherFn) -> dict[str, np.ndarray]:
    """The teacher's detections of each photo: image path → (K, 5) ``x1 y1 x2 y2 score`` float64,
    detections scoring at least :data:`CACHE_MIN_SCORE`; each photo is read once."""
    found: dict[str, np.ndarray] = {}
    for sample in samples:
        if sample.image in found:
            continue
        boxes, scores = detect(read_image(sample.image))
        rows = np.concatenate(
            [np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(scores, np.float64)[:, None]], 1
        )
        found[sample.image] = rows[rows[:, 4] >= CACHE_MIN_SCORE]
    return found


def add_teacher_faces(
    sample: DetectionSample,
    detections: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    match_iou: float = DEFAULT_MATCH_IOU,
) -> DetectionSample:
    """``sample`` with the teacher's unannotated faces added after its own (module doc).

    Args:
        detections: (K, 5) ``x1 y1 x2 y2 score`` in the sample's pixels.
        threshold: minimum teacher score of an added face.
        match_iou: a detection whose IoU with an annotated box reaches this is that face (not added).
    """
    rows = np.asarray(detections, np.float64).reshape(-1, 5)
    rows = rows[rows[:, 4] >= threshold]
    if len(rows) and sample.num_faces:
        rows = rows[box_iou_numpy(rows[:, :4], sample.boxes).max(axis=1) < match_iou]
    if not len(rows):
        return sample
    m = len(rows)
    return DetectionSample(
        image=sample.image,
        boxes=np.concatenate([sample.boxes, rows[:, :4].astype(np.float32)]),
        keypoints=np.concatenate([sample.keypoints, np.full((m, 5, 2), np.nan, np.float32)]),
        has_keypoints=np.concatenate([sample.has_keypoints, np.zeros(m, bool)]),
        photo=sample.photo,
        subset=sample.subset,
    )


def with_teacher_targets(
    samples: Sequence[DetectionSample],
    teacher: str,
    threshold: float = DEFAULT_THRESHOLD,
    match_iou: float = DEFAULT_MATCH_IOU,
    cache: str | None = None,
    detect: TeacherFn | None = None,
) -> tuple[list[DetectionSample], TeacherReport]:
    """The samples with their teacher faces (:func:`add_teacher_faces`), the teacher run once per data set.

    ``teacher`` is a detector name or checkpoint path (also the cache's key); ``detect`` replaces the
    :class:`~hrface.runtime.detector.Detector` built from it (tests). The cache, when given, is read if it
    matches and (re)written otherwise.
    """
    found = teacher_detections(samples, teacher, cache, detect)
    out = [add_teacher_faces(s, found[s.image], threshold, match_iou) for s in samples]
    added = [b.num_faces - a.num_faces for a, b in zip(samples, out, strict=True)]
    report = TeacherReport(len(samples), sum(s.num_faces for s in samples), sum(added), sum(n > 0 for n in added))
    return out, report


def teacher_detections(
    samples: Sequence[DetectionSample], teacher: str, cache: str | None = None, detect: TeacherFn | None = None
) -> dict[str, np.ndarray]:
    """The teacher's detections (score ≥ :data:`CACHE_MIN_SCORE`) of each photo, image path → (K, 5)
    ``x1 y1 x2 y2 score``: read from ``cache`` when it matches, else run once and cached (module doc)."""
    found = _read_cache(cache, teacher, samples)
    if found is None:
        if detect is None:
            detect = _detector_fn(teacher)
        found = run_teacher(samples, detect)
        if cache:
            photos = {path: np.round(rows, 3).tolist() for path, rows in found.items()}
            doc = {"teacher": teacher, "min_score": CACHE_MIN_SCORE, "photos": photos}
            atomic_write_text(cache, json.dumps(doc))
    return found


def _read_cache(cache: str | None, teacher: str, samples: Sequence[DetectionSample]) -> dict[str, np.ndarray] | None:
    if not cache or not Path(cache).is_file():
        return None
    try:
        doc = json.loads(Path(cache).read_text())
    except ValueError:
        return None  # an unreadable cache is made again
    photos = doc.get("photos", {}) if isinstance(doc, dict) else {}
    if doc.get("teacher") != teacher or not all(s.image in photos for s in samples):
        return None
    return {s.image: np.asarray(photos[s.image], np.float64).reshape(-1, 5) for s in samples}


def _detector_fn(teacher: str) -> TeacherFn:
    from ...runtime.detector import Detector

    detector = Detector(teacher, threshold=CACHE_MIN_SCORE)

    def detect(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        found = detector.detect(image)
        return found.boxes, found.scores

    return detect
