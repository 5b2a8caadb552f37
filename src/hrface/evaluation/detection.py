"""Face detector evaluation on annotated photos: box AP and recall, and the error of the 5 keypoints.

This needs no WIDER FACE images: the ground truth is any set of photos with annotated faces (e.g. the
held-out 300W photos, with boxes and keypoints derived from their landmarks).

Conventions: boxes are ``x1, y1, x2, y2`` in continuous pixel coordinates (area ``(x2 − x1)(y2 − y1)``,
no ``+1``); keypoints are (5, 2) ``x, y`` pixels in the RetinaFace order: eye on the image's left,
eye on the image's right, nose tip, mouth corner on the image's left, on the image's right.

Definitions (see :func:`evaluate_detections`):

* **Matching** (VOC rule).  In each photo, detections best score first (stable on ties): a detection
  takes the face it overlaps most (IoU; lowest index on ties); it is a true positive when that IoU is
  at least ``iou_threshold`` and the face has not been taken by a better detection, else a false
  positive.  Photos are independent, so this equals one greedy pass over all detections by score.
* **AP**: VOC all-point AP (:func:`hrface.evaluation.widerface.voc_ap`) of the precision/recall at each
  rank of all detections sorted by score.
* **Recall** at ``score_threshold``: faces found by detections scoring at least that, over all faces;
  **precision** likewise over those detections.
* **Keypoint errors**, over the faces found at ``score_threshold`` that have keypoints: the Euclidean
  error of each of the 5 points divided by the face's inter-ocular distance (the distance between the
  two ground-truth eye keypoints, i.e. the eye centres; ``keypoint_norms`` replaces it, e.g. with the
  outer-eye-corner distance of the 300W literature, about 1.3 times larger).  **NME** is the mean over faces of the mean
  of their 5 errors; ``point_errors`` is the mean per point; **keypoint recall** is the fraction of
  all (face, point) pairs whose error is at most ``keypoint_tolerance`` (0.1 = a tenth of the
  inter-ocular distance).
* **By size**: the annotated faces are put in buckets by their size, √(width × height) of the box in the
  photo's pixels (:data:`SIZE_EDGES`: [0, 24), [24, 48), [48, 96), [96, ∞) px); per bucket, the faces,
  the recall at ``score_threshold`` and the keypoint NME of its found faces.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..ops import box_sizes
from .widerface import first_matches, match_to_faces, voc_ap

__all__ = ["DetectionMetrics", "SizeBucket", "detection_table", "evaluate_detections", "size_table"]

SIZE_EDGES = (24.0, 48.0, 96.0)
"""Bucket edges of the face sizes (pixels, √(w·h) of the annotated box): < 24, 24–48, 48–96, ≥ 96."""

KEYPOINT_NAMES = ("left eye", "right eye", "nose", "left mouth", "right mouth")
"""Names of the 5 keypoints (left/right as seen in the image)."""


class PhotoDetections(Protocol):
    """Detections of one photo (e.g. :class:`hrface.runtime.detector.Detections`)."""

    boxes: np.ndarray  # (M, 4) xyxy
    scores: np.ndarray  # (M,)
    keypoints: np.ndarray  # (M, 5, 2)


class PhotoFaces(Protocol):
    """Annotated faces of one photo (e.g. ``hrface.data.detection.convert.DetectionSample``)."""

    boxes: np.ndarray  # (N, 4) xyxy
    keypoints: np.ndarray  # (N, 5, 2)
    has_keypoints: Any  # bool for all faces, or (N,) bool


@dataclass(frozen=True)
class SizeBucket:
    """The faces of one size range [low, high) px: how many, how many found, recall, keypoint NME (NaN
    where undefined) and the number of found faces with keypoints behind the NME."""

    low: float
    high: float
    faces: int
    found: int
    recall: float
    keypoint_nme: float
    keypoint_faces: int

    @property
    def label(self) -> str:
        """``<24``, ``24-48``, ``>=96`` …"""
        if self.low <= 0:
            return f"<{self.high:g}"
        return f">={self.low:g}" if math.isinf(self.high) else f"{self.low:g}-{self.high:g}"

    def to_dict(self) -> dict[str, Any]:
        out = {"size": self.label, **self.__dict__}
        return {k: (_finite_or_none(v) if isinstance(v, float) else v) for k, v in out.items()}


@dataclass(frozen=True)
class DetectionMetrics:
    """Results of :func:`evaluate_detections`; fractions in [0, 1], NaN where undefined (no faces, no
    detections, no keypoint faces found)."""

    ap: float
    recall: float
    precision: float
    keypoint_nme: float
    keypoint_recall: float
    point_errors: np.ndarray  # (5,) mean error per keypoint, fraction of the inter-ocular distance
    faces: int  # annotated faces
    photos: int
    detections: int  # all detections, any score
    found: int  # faces found at the score threshold
    keypoint_faces: int  # found faces with keypoints (the keypoint metrics' population)
    iou_threshold: float
    score_threshold: float
    keypoint_tolerance: float
    by_size: tuple[SizeBucket, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN becomes null)."""
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            if key == "by_size":
                out[key] = [bucket.to_dict() for bucket in value]
            elif key == "point_errors":
                out[key] = dict(zip(KEYPOINT_NAMES, map(_finite_or_none, value.tolist()), strict=True))
            else:
                out[key] = _finite_or_none(value) if isinstance(value, float) else value
        return out


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None  # JSON has no NaN or infinity


def evaluate_detections(
    detections: Sequence[PhotoDetections],
    ground_truth: Sequence[PhotoFaces],
    *,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.5,
    keypoint_tolerance: float = 0.1,
    keypoint_norms: Sequence[np.ndarray] | None = None,
) -> DetectionMetrics:
    """Box AP / recall / precision and keypoint NME / recall of ``detections`` against ``ground_truth``,
    both one entry per photo in the same order.  Definitions in the module docstring.

    ``keypoint_norms``: per photo, the (N,) distances (pixels) that normalise each face's keypoint errors;
    None: the distance between its two eye keypoints."""
    if len(detections) != len(ground_truth):
        raise ValueError(f"{len(detections)} detection sets for {len(ground_truth)} photos")
    if keypoint_norms is not None and len(keypoint_norms) != len(ground_truth):
        raise ValueError(f"{len(keypoint_norms)} keypoint norm arrays for {len(ground_truth)} photos")
    scores, hits, found_faces, face_errors, sizes = [], [], [], [], []
    for index, (det, gt) in enumerate(zip(detections, ground_truth, strict=True)):
        det_scores = np.asarray(det.scores, np.float64).reshape(-1)
        order = np.argsort(-det_scores, kind="stable")
        gt_boxes = np.asarray(gt.boxes, np.float64).reshape(-1, 4)
        face_of = match_to_faces(np.asarray(det.boxes).reshape(-1, 4)[order], gt_boxes, iou_threshold, offset=0.0)
        tp = first_matches(face_of)
        scores.append(det_scores[order])
        hits.append(tp)
        keep = tp & (det_scores[order] >= score_threshold)
        found = np.zeros(len(gt_boxes), bool)
        found[face_of[keep]] = True
        errors = np.full((len(gt_boxes), 5), np.nan)
        errors[face_of[keep]] = _keypoint_errors(
            np.asarray(det.keypoints).reshape(-1, 5, 2)[order][keep],
            gt,
            face_of[keep],
            None if keypoint_norms is None else np.asarray(keypoint_norms[index], np.float64).reshape(len(gt_boxes)),
        )
        found_faces.append(found)
        face_errors.append(errors)
        sizes.append(box_sizes(gt_boxes))
    score = np.concatenate(scores) if scores else np.zeros(0)
    tp = np.concatenate(hits) if hits else np.zeros(0, bool)
    found = np.concatenate(found_faces) if found_faces else np.zeros(0, bool)
    face_err = np.concatenate(face_errors) if face_errors else np.zeros((0, 5))
    size = np.concatenate(sizes) if sizes else np.zeros(0)
    faces = len(found)
    err = face_err[np.isfinite(face_err).all(axis=1)]

    ranked = tp[np.argsort(-score, kind="stable")]
    cum_tp = np.cumsum(ranked)
    precision_at = cum_tp / np.arange(1, len(ranked) + 1)
    ap = voc_ap(cum_tp / faces, precision_at) if faces else math.nan
    above = score >= score_threshold
    n_found = int(np.count_nonzero(tp & above))
    return DetectionMetrics(
        ap=ap,
        recall=n_found / faces if faces else math.nan,
        precision=n_found / int(above.sum()) if above.any() else math.nan,
        keypoint_nme=float(err.mean()) if len(err) else math.nan,
        keypoint_recall=float(np.mean(err <= keypoint_tolerance)) if len(err) else math.nan,
        point_errors=err.mean(axis=0) if len(err) else np.full(5, math.nan),
        faces=faces,
        photos=len(ground_truth),
        detections=len(score),
        found=n_found,
        keypoint_faces=len(err),
        iou_threshold=iou_threshold,
        score_threshold=score_threshold,
        keypoint_tolerance=keypoint_tolerance,
        by_size=_size_buckets(size, found, face_err),
    )


def _size_buckets(size: np.ndarray, found: np.ndarray, face_err: np.ndarray) -> tuple[SizeBucket, ...]:
    """Per :data:`SIZE_EDGES` bucket: faces, found, recall and the NME of its found faces with keypoints."""
    edges = (0.0, *SIZE_EDGES, math.inf)
    out = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (size >= low) & (size < high)
        err = face_err[inside & np.isfinite(face_err).all(axis=1)]
        n, hit = int(inside.sum()), int((found & inside).sum())
        nme = float(err.mean()) if len(err) else math.nan
        out.append(SizeBucket(low, high, n, hit, hit / n if n else math.nan, nme, len(err)))
    return tuple(out)


def _keypoint_errors(
    det_points: np.ndarray, gt: PhotoFaces, face_of: np.ndarray, norms: np.ndarray | None = None
) -> np.ndarray:
    """(K, 5) errors / inter-ocular distance of detections (K, 5, 2) matched to faces ``face_of`` (K,);
    ``norms`` (N,) replaces the eye-keypoint distance of each face.  NaN rows for faces without
    keypoints or with a zero or non-finite inter-ocular distance."""
    gt_points = np.asarray(gt.keypoints, np.float64).reshape(-1, 5, 2)[face_of]
    has = np.broadcast_to(np.asarray(gt.has_keypoints, bool), (len(np.asarray(gt.boxes).reshape(-1, 4)),))
    iod = np.linalg.norm(gt_points[:, 0] - gt_points[:, 1], axis=-1) if norms is None else norms[face_of]
    usable = has[face_of] & np.isfinite(iod) & (iod > 0) & np.isfinite(gt_points).all(axis=(1, 2))
    err = np.full((len(face_of), 5), np.nan)
    err[usable] = np.linalg.norm(det_points[usable] - gt_points[usable], axis=-1) / iod[usable, None]
    return err


def detection_table(results: Mapping[str, DetectionMetrics]) -> str:
    """Plain-text table, one row per model: AP, recall and precision at the score threshold, keypoint
    NME and keypoint recall (percent), faces found / faces, photos."""
    width = max([5, *(len(name) for name in results)])
    head = f"{'model':<{width}}  {'AP':>7}  {'recall':>7}  {'prec.':>7}  {'kp NME':>7}  {'kp rec.':>7}  {'found':>11}"
    rows = [head + f"  {'photos':>6}"]
    for name, m in results.items():
        cells = [m.ap, m.recall, m.precision, m.keypoint_nme, m.keypoint_recall]
        text = "  ".join(f"{100 * v:6.2f}%" if math.isfinite(v) else f"{'-':>7}" for v in cells)
        rows.append(f"{name:<{width}}  {text}  {f'{m.found}/{m.faces}':>11}  {m.photos:>6}")
    if results:
        m = next(iter(results.values()))
        rows.append(
            f"AP: VOC all-point at IoU {m.iou_threshold:g}; recall, precision and keypoints at score >= "
            f"{m.score_threshold:g}"
        )
        rows.append(
            f"kp NME: mean 5-point error / inter-ocular distance; kp rec.: points within {m.keypoint_tolerance:g} of it"
        )
    return "\n".join(rows)


def size_table(results: Mapping[str, DetectionMetrics]) -> str:
    """Plain-text table, one row per model: recall per face-size bucket (percent, faces found / faces in the
    header) and the keypoint NME per bucket."""
    if not results:
        return ""
    first = next(iter(results.values()))
    width = max([19, *(len(name) for name in results)])
    labels = [f"{b.label} px ({b.faces})" for b in first.by_size]
    cell = max(12, *(len(label) + 1 for label in labels))
    rows = [f"{'recall by face size':<{width}}  " + "".join(f"{label:>{cell}}" for label in labels)]
    rows += [f"{name:<{width}}  " + "".join(_percent(b.recall, cell) for b in m.by_size) for name, m in results.items()]
    if any(b.keypoint_faces for m in results.values() for b in m.by_size):
        rows.append(f"{'keypoint NME':<{width}}")
        rows += [
            f"{name:<{width}}  " + "".join(_percent(b.keypoint_nme, cell) for b in m.by_size)
            for name, m in results.items()
        ]
    rows.append(
        f"face size: sqrt(width x height) of the annotated box in the photo's pixels; recall at score >= "
        f"{first.score_threshold:g}, IoU {first.iou_threshold:g}"
    )
    return "\n".join(rows)


def _percent(value: float, width: int) -> str:
    return f"{100 * value:.1f}%".rjust(width) if math.isfinite(value) else "-".rjust(width)


def threshold_table(rows: Mapping[str, Mapping[float, DetectionMetrics]]) -> str:
    """Markdown table of recall and precision (percent) by score threshold, one row per model: what a user gives
    up in faces for fewer false detections. ``rows``: model → threshold → its metrics."""
    thresholds = sorted({t for by_t in rows.values() for t in by_t})
    lines = ["| model | " + " | ".join(f"@{t:g} recall / prec." for t in thresholds) + " |"]
    lines.append("|---|" + "---:|" * len(thresholds))
    for name, by_t in rows.items():
        cells = [
            f"{100 * by_t[t].recall:.1f} / {100 * by_t[t].precision:.1f}" if t in by_t else "-" for t in thresholds
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
