"""False faces: detections that match no known face, where the annotation leaves faces out.

300W annotates one or a few faces per photo, so precision counts every unannotated face as false.  A
detection is counted as a *false face* only when it matches neither an annotated face nor any face that a
reference detector finds (e.g. the published WIDER FACE checkpoint at score ≥ 0.3): what is left is mostly
ears, ornaments and texture.  Counted at several score thresholds, so a user can choose one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..ops import box_iou_numpy

FALSE_FACE_SCORES = (0.5, 0.6, 0.7, 0.8, 0.9)
REFERENCE_MIN_SCORE = 0.3  # a reference detection this confident counts as a face
MATCH_IOU = 0.3  # loose on purpose: box conventions differ between annotation and detectors


def false_faces(
    boxes: np.ndarray,
    scores: np.ndarray,
    known: Sequence[np.ndarray],
    thresholds: Sequence[float] = FALSE_FACE_SCORES,
    iou: float = MATCH_IOU,
) -> list[int]:
    """Number of detections with score ≥ each of ``thresholds`` whose IoU with every known face is below ``iou``.

    Args:
        boxes: (N, 4) detections, xyxy pixels; scores: (N,) their scores.
        known: arrays of (M_i, 4) xyxy boxes of faces known to be there (annotation, reference detector).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
    faces = np.concatenate([np.asarray(k, dtype=np.float64).reshape(-1, 4) for k in known] or [np.zeros((0, 4))])
    free = unmatched(boxes, faces, iou)
    return [int((free & (scores >= t)).sum()) for t in thresholds]


def unmatched(boxes: np.ndarray, known: np.ndarray, iou: float = MATCH_IOU) -> np.ndarray:
    """(N,) bool: the boxes (N, 4) whose IoU with every known face box (M, 4) is below ``iou`` (all xyxy pixels)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    known = np.asarray(known, dtype=np.float64).reshape(-1, 4)
    if not len(boxes) or not len(known):
        return np.ones(len(boxes), bool)
    return box_iou_numpy(boxes, known).max(axis=1) < iou


def false_face_table(counts: dict[str, list[int]], thresholds: Sequence[float] = FALSE_FACE_SCORES) -> str:
    """Markdown table: one row per detector, the false faces at each score threshold."""
    lines = ["| detector | " + " | ".join(f"@{t:g}" for t in thresholds) + " |"]
    lines.append("|---|" + "---:|" * len(thresholds))
    lines += [f"| {name} | " + " | ".join(str(c) for c in row) + " |" for name, row in counts.items()]
    return "\n".join(lines)


def face_free_table(
    counts: dict[str, list[int]], images: dict[str, list[int]], total: int, thresholds: Sequence[float]
) -> str:
    """Markdown table of detections on face-free images (every one false): per detector and score threshold,
    the false faces in all and the images with at least one, out of ``total`` images."""
    lines = ["| detector | " + " | ".join(f"@{t:g}" for t in thresholds) + " |"]
    lines.append("|---|" + "---:|" * len(thresholds))
    for name, row in counts.items():
        cells = [f"{c} ({i}/{total})" for c, i in zip(row, images[name], strict=True)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
