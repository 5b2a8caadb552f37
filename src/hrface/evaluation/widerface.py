"""WIDER FACE validation AP (easy / medium / hard) by the protocol of the official evaluation tool.

The protocol of the official MATLAB ``wider_eval`` (and of its Python port), reimplemented vectorised:

1. **Ground truth.**  ``wider_face_val.mat`` lists the events, each event's images and each image's
   face boxes ``x y w h`` (pixels).  ``wider_{easy,medium,hard}_val.mat`` give, per image, the
   1-based indices of the faces that *count* at that level (``gt_list``); the image's other faces are
   *ignored*: finding them is neither rewarded nor punished.
2. **Predictions.**  One text file per image, ``PRED_DIR/EVENT/IMAGE.txt``: the image name, the number
   of boxes, then one ``x y w h score`` line per box.  Each image's boxes are taken best score first.
   An image without a file has no detections (and is listed in :attr:`WiderFaceResult.missing`).
3. **Score normalisation.**  ``(s − min) / (max − min)`` over all predictions of the data set.
4. **Matching**, per image, predictions best first: a prediction takes the face with which its IoU is
   highest (the first such face on ties).  If that IoU is at least 0.5 and the face is ignored, the
   prediction is dropped; if the face counts and is not yet found, it is found now; if it was found
   before, nothing is found (the prediction remains a proposal, in effect a false positive).
   Unmatched predictions are proposals that find nothing.  IoU follows the official code's
   inclusive-pixel convention: ``x2 = x + w``, ``y2 = y + h`` and areas ``(x2 − x1 + 1)(y2 − y1 + 1)``,
   so a box is ``w + 1`` pixels wide.  Images with no faces or no predictions add no proposals.
5. **Curves.**  For the 1,000 thresholds ``1 − k/1000`` (k = 1…1000, the last one 0), summed over all
   images: proposals = kept predictions with normalised score ≥ threshold, found = faces they found;
   precision = found / proposals, recall = found / faces that count at the level.
6. **AP**: VOC all-point (:func:`voc_ap`) over those 1,000 points.

Two corner cases where the official code divides 0 by 0 are defined here: when all predictions have
the same score, every normalised score is 1 (officially NaN, which makes AP 0); the precision at a
threshold without proposals is NaN and the precision envelope skips it (MATLAB's ``max`` ignores NaN).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.detection.labels import xywh_to_xyxy
from ..data.detection.samples import DetectionSample
from ..data.detection.widerface import read_wider_mat
from ..data.landmarks.parsing import DatasetError, snippet, where
from ..errors import one_line
from ..extras import require
from ..ops.boxes import box_iou_numpy

__all__ = [
    "LEVELS",
    "WiderFaceGroundTruth",
    "WiderFaceResult",
    "evaluate_widerface",
    "evaluate_widerface_folder",
    "first_matches",
    "format_prediction_file",
    "load_widerface_ground_truth",
    "match_to_faces",
    "read_prediction_file",
    "read_widerface_predictions",
    "voc_ap",
]

LEVELS = ("easy", "medium", "hard")
THRESHOLD_COUNT = 1000
IOU_THRESHOLD = 0.5


@dataclass(frozen=True)
class WiderFaceGroundTruth:
    """The faces of the WIDER FACE validation images, in the order of ``wider_face_val.mat``.

    Attributes:
        images: per image, a :class:`~hrface.data.detection.samples.DetectionSample` with photo id
            ``'EVENT/IMAGE'`` (file name without ``.jpg``), subset ``EVENT`` and the annotated boxes
            (N, 4) ``x1, y1, x2, y2`` pixels with ``x2 = x + w``, ``y2 = y + h``.
        keep: per level (``'easy'``, ``'medium'``, ``'hard'``), per image, (N,) bool: the face counts.
    """

    images: tuple[DetectionSample, ...]
    keep: dict[str, tuple[np.ndarray, ...]]

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_ids(self) -> list[str]:
        """``'EVENT/IMAGE'`` per image."""
        return [sample.photo for sample in self.images]

    def faces(self, level: str) -> int:
        """Number of faces that count at ``level``."""
        return int(sum(int(k.sum()) for k in self.keep[level]))

    def select_events(self, events: Sequence[str]) -> WiderFaceGroundTruth:
        """The images of the given events only (in the original order), e.g. for a quick partial run."""
        wanted, known = set(events), {sample.subset for sample in self.images}
        if wanted - known:
            raise DatasetError(f"no event {min(wanted - known)!r} in the WIDER FACE ground truth")
        idx = [i for i, sample in enumerate(self.images) if sample.subset in wanted]
        return WiderFaceGroundTruth(
            tuple(self.images[i] for i in idx), {lv: tuple(masks[i] for i in idx) for lv, masks in self.keep.items()}
        )


@dataclass
class WiderFaceResult:
    """AP and precision–recall curves per level.

    ``precision[level]`` and ``recall[level]`` are (1000,) arrays, one point per normalised-score
    threshold of ``thresholds`` (descending, from 0.999 to 0); precision is NaN where no prediction
    reaches the threshold.  ``missing`` lists the ``'EVENT/IMAGE'`` ids without a prediction file.
    """

    ap: dict[str, float]
    precision: dict[str, np.ndarray]
    recall: dict[str, np.ndarray]
    thresholds: np.ndarray
    faces: dict[str, int]
    images: int
    predictions: int
    missing: list[str] = field(default_factory=list)

    def pr_curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{level: (recall, precision)}``, as :func:`hrface.evaluation.plots.plot_pr_curves` takes them."""
        return {level: (self.recall[level], self.precision[level]) for level in self.ap}

    def table(self) -> str:
        """Plain-text table: AP in percent and counted faces per level, then the totals."""
        rows = [f"{'level':<8}{'AP':>9}{'faces':>9}"]
        rows += [f"{lv:<8}{100 * ap:>8.2f}%{self.faces[lv]:>9}" for lv, ap in self.ap.items()]
        rows.append(f"{self.images} images, {self.predictions} predictions, {len(self.missing)} missing files")
        return "\n".join(rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN precision becomes null)."""

        def listed(a: np.ndarray) -> list[float | None]:
            return [None if math.isnan(v) else v for v in a.tolist()]

        return {
            "ap": self.ap,
            "faces": self.faces,
            "images": self.images,
            "predictions": self.predictions,
            "missing": self.missing,
            "thresholds": self.thresholds.tolist(),
            "precision": {k: listed(v) for k, v in self.precision.items()},
            "recall": {k: listed(v) for k, v in self.recall.items()},
        }


def load_widerface_ground_truth(gt_dir: str | os.PathLike[str]) -> WiderFaceGroundTruth:
    """Read the official evaluation files of ``gt_dir`` (``eval_tools/ground_truth``): the boxes from
    ``wider_face_val.mat``, the counted faces from ``wider_{easy,medium,hard}_val.mat``.

    Raises :class:`DatasetError` (one line) for a missing or malformed file.
    """
    root = Path(gt_dir)
    paths = {name: root / f"wider_{name}_val.mat" for name in ("face", *LEVELS)}
    absent = [p.name for p in paths.values() if not p.is_file()]
    if absent:
        raise DatasetError(
            f"{root}: no {', '.join(absent)}; the ground-truth folder must hold wider_face_val.mat and "
            "wider_easy_val.mat, wider_medium_val.mat, wider_hard_val.mat (the official eval_tools/ground_truth)"
        )
    images = tuple(read_wider_mat(paths["face"]))
    keep = {lv: _level_masks(paths[lv], images) for lv in LEVELS}
    return WiderFaceGroundTruth(images, keep)


def _level_masks(path: Path, images: Sequence[DetectionSample]) -> tuple[np.ndarray, ...]:
    """Per image, (N,) bool of the faces listed (1-based) in the level file's ``gt_list``."""
    scipy_io = require("scipy.io", "eval", "reading MATLAB ground truth (.mat)")

    try:
        events = scipy_io.loadmat(path)["gt_list"].ravel()
        lists = [np.asarray(cell).ravel() for event in events for cell in np.asarray(event).ravel()]
    except KeyError:
        raise DatasetError(f"{path}: no gt_list in this .mat file (not a WIDER FACE level file?)") from None
    except (OSError, ValueError, scipy_io.matlab.MatReadError) as e:
        raise DatasetError(f"{path}: cannot read MATLAB file ({one_line(e, 120)})") from None
    if len(lists) != len(images):
        raise DatasetError(f"{path}: lists {len(lists)} images, wider_face_val.mat {len(images)}")
    masks = []
    for sample, index in zip(images, lists, strict=True):
        index = index.astype(np.int64)
        if index.size and (index.min() < 1 or index.max() > sample.num_faces):
            raise DatasetError(f"{path}: {sample.photo}: face index out of range 1..{sample.num_faces}")
        mask = np.zeros(sample.num_faces, dtype=bool)
        mask[index - 1] = True
        masks.append(mask)
    return tuple(masks)


def read_prediction_file(path: str | os.PathLike[str]) -> np.ndarray:
    """The boxes of one prediction file as (M, 5) float64 ``x, y, w, h, score`` in file order.

    Layout: line 1 the image name (not checked), line 2 the number of boxes M, then M lines of at
    least five numbers (extra columns are ignored).  Blank lines are skipped.  Raises
    :class:`DatasetError` (``path:line: what``) for an unreadable file, a count that is not a whole
    number or disagrees with the box lines, or a line that is not five finite numbers.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as e:
        raise DatasetError(f"{path}: cannot read prediction file ({e.strerror or e})") from None
    if len(lines) < 2:
        raise DatasetError(f"{path}: expected the image name and the number of boxes on the first two lines")
    try:
        count = int(lines[1].strip())
    except ValueError:
        raise DatasetError(f"{where(path, 2)}: expected the number of boxes, got {snippet(lines[1])}") from None
    body = [(n, text.split()) for n, text in enumerate(lines[2:], start=3) if text.strip()]
    if len(body) != count:
        raise DatasetError(f"{where(path, 2)}: says {count} boxes but {len(body)} box lines follow")
    rows = np.zeros((count, 5))
    for k, (n, tokens) in enumerate(body):
        try:
            rows[k] = np.asarray(tokens[:5], dtype=np.float64) if len(tokens) >= 5 else np.nan
        except ValueError:
            rows[k] = np.nan
        if not np.isfinite(rows[k]).all():
            raise DatasetError(
                f"{where(path, n)}: expected five finite numbers 'x y w h score', got {snippet(' '.join(tokens))}"
            )
    return rows


def format_prediction_file(image_name: str, boxes_xyxy: Any, scores: Any) -> str:
    """The text of one prediction file in the official layout, as the reference RetinaFace's
    ``test_widerface.py`` writes it: the image name (no suffix), the box count, then one line per box
    ``x y w h score`` with ``x = int(x1)``, ``y = int(y1)``, ``w = int(x2) − int(x1)``,
    ``h = int(y2) − int(y1)`` (whole pixels, truncated toward zero) and the score's shortest repr.

    ``boxes_xyxy``: (M, 4) ``x1, y1, x2, y2`` pixels; ``scores``: (M,).
    """
    boxes = np.trunc(np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)).astype(np.int64)
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(values) != len(boxes):
        raise ValueError(f"{len(boxes)} boxes but {len(values)} scores")
    lines = [image_name, str(len(boxes))]
    rows = zip(boxes.tolist(), values.tolist(), strict=True)
    lines += [f"{x1} {y1} {x2 - x1} {y2 - y1} {score!r}" for (x1, y1, x2, y2), score in rows]
    return "\n".join(lines) + "\n"


def read_widerface_predictions(pred_dir: str | os.PathLike[str], gt: WiderFaceGroundTruth) -> list[np.ndarray | None]:
    """Per image of ``gt``, its (M, 5) predictions from ``PRED_DIR/EVENT/IMAGE.txt``, None without a file.

    Files of images not in ``gt`` are not read.  Raises :class:`DatasetError` when ``pred_dir`` is not
    a folder or holds none of the expected files (a wrong folder level, most likely).
    """
    root = Path(pred_dir)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder of predictions (PRED_DIR/EVENT/IMAGE.txt)")
    paths = [root / f"{image}.txt" for image in gt.image_ids]
    out = [read_prediction_file(p) if p.is_file() else None for p in paths]
    if paths and all(p is None for p in out):
        raise DatasetError(f"{root}: none of the {len(paths)} prediction files is there (e.g. {paths[0]})")
    return out


def match_to_faces(
    pred_xyxy: np.ndarray, face_xyxy: np.ndarray, iou_threshold: float = IOU_THRESHOLD, *, offset: float = 1.0
) -> np.ndarray:
    """For each prediction box (M, 4), the index of the face box (N, 4) it overlaps most, or −1 when that
    IoU is below ``iou_threshold`` or there are no faces.  Boxes are ``x1, y1, x2, y2`` pixels; ``offset``
    1 is the official inclusive-pixel area ``(x2 − x1 + 1)(y2 − y1 + 1)``, 0 continuous coordinates.
    Ties go to the lowest face index."""
    if not len(pred_xyxy) or not len(face_xyxy):
        return np.full(len(pred_xyxy), -1, dtype=np.int64)
    iou = box_iou_numpy(pred_xyxy, face_xyxy, offset=offset)
    best = iou.argmax(axis=1)
    return np.where(iou[np.arange(len(best)), best] >= iou_threshold, best, -1)


def first_matches(face_of: np.ndarray, eligible: np.ndarray | None = None) -> np.ndarray:
    """(M,) bool: the predictions that are the first, in the given order, to match their face.

    ``face_of`` (M,) holds each prediction's face index (−1: none), as from :func:`match_to_faces`;
    only ``eligible`` predictions (default: all matched ones) take part.  With predictions sorted best
    first this is the greedy rule: a face is found by its best-scoring match, later matches find nothing.
    """
    taking = face_of >= 0 if eligible is None else (face_of >= 0) & eligible
    candidates = np.flatnonzero(taking)
    _, first = np.unique(face_of[candidates], return_index=True)
    found = np.zeros(len(face_of), dtype=bool)
    found[candidates[first]] = True
    return found


def voc_ap(recall: Any, precision: Any) -> float:
    """VOC all-point average precision: the area under the precision envelope over recall.

    ``recall`` and ``precision`` (fractions) are the points of a PR curve in order of non-decreasing
    recall.  The curve is extended with (0, 0) in front and (1, 0) at the end, each precision is
    replaced by the largest precision at or after it (NaN entries are skipped), and AP is the sum of
    recall steps × envelope precision after the step.  NaN when a recall is NaN (no faces).
    """
    r = np.concatenate([[0.0], np.asarray(recall, np.float64).reshape(-1), [1.0]])
    p = np.concatenate([[0.0], np.asarray(precision, np.float64).reshape(-1), [0.0]])
    if np.isnan(r).any():
        return math.nan
    envelope = np.fmax.accumulate(p[::-1])[::-1]
    steps = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[steps + 1] - r[steps]) * envelope[steps + 1]))


def evaluate_widerface(
    gt: WiderFaceGroundTruth,
    predictions: Sequence[np.ndarray | None],
    *,
    iou_threshold: float = IOU_THRESHOLD,
    thresholds: int = THRESHOLD_COUNT,
) -> WiderFaceResult:
    """Easy / medium / hard AP of ``predictions`` (per image of ``gt``: (M, 5) ``x y w h score`` or
    None for a missing file), by the protocol of the module docstring."""
    if len(predictions) != len(gt):
        raise ValueError(f"{len(predictions)} prediction arrays for {len(gt)} images")
    missing = [image for image, p in zip(gt.image_ids, predictions, strict=True) if p is None]
    preds = [np.zeros((0, 5)) if p is None else np.asarray(p, np.float64).reshape(-1, 5) for p in predictions]
    boxes = [sample.boxes for sample in gt.images]
    n_faces = np.array([len(b) for b in boxes], dtype=np.int64)
    first_face = np.concatenate([[0], np.cumsum(n_faces)[:-1]]) if len(gt) else np.zeros(0, np.int64)

    # Per prediction, over the whole data set: its raw score and the face (global index) it matched.
    scores, matched = [], []
    for p, faces, offset in zip(preds, boxes, first_face, strict=True):
        if not len(p) or not len(faces):
            continue  # the official tool skips such images: their predictions are not proposals
        p = p[np.argsort(-p[:, 4], kind="stable")]
        face = match_to_faces(xywh_to_xyxy(p[:, :4]), faces, iou_threshold, offset=1.0)
        scores.append(p[:, 4])
        matched.append(np.where(face >= 0, face + offset, -1))
    all_scores = np.concatenate([p[:, 4] for p in preds]) if preds else np.zeros(0)
    score = _normalised(np.concatenate(scores) if scores else np.zeros(0), all_scores)
    face_of = np.concatenate(matched) if matched else np.zeros(0, np.int64)

    levels = 1.0 - np.arange(1, thresholds + 1) / thresholds
    order = np.argsort(-score, kind="stable")
    # the predictions with score >= each threshold are the first n_above of ``order``
    n_above = len(score) - np.searchsorted(np.sort(score), levels, side="left")
    result = WiderFaceResult({}, {}, {}, levels, {}, len(gt), int(sum(len(p) for p in preds)), missing)
    for level in LEVELS:
        counts = np.concatenate(gt.keep[level]) if len(gt) else np.zeros(0, bool)
        proposal, found = _proposals_and_finds(face_of, counts)
        proposals = np.concatenate([[0], np.cumsum(proposal[order])])[n_above].astype(np.float64)
        finds = np.concatenate([[0], np.cumsum(found[order])])[n_above].astype(np.float64)
        total = int(counts.sum())
        precision = np.divide(finds, proposals, out=np.full(thresholds, np.nan), where=proposals > 0)
        recall = finds / total if total else np.full(thresholds, np.nan)
        result.ap[level] = voc_ap(recall, precision)
        result.precision[level], result.recall[level], result.faces[level] = precision, recall, total
    return result


def _normalised(scores: np.ndarray, all_scores: np.ndarray) -> np.ndarray:
    """Min-max normalisation with the min and max of ``all_scores``; all 1 when those are equal."""
    if not all_scores.size:
        return scores
    lo, hi = float(all_scores.min()), float(all_scores.max())
    return (scores - lo) / (hi - lo) if hi > lo else np.ones_like(scores)


def _proposals_and_finds(face_of: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per prediction (in matching order): is it a proposal (not dropped on an ignored face), and is it
    the first prediction to find its counted face."""
    hit = face_of >= 0
    on_counted = hit & counts[np.where(hit, face_of, 0)] if counts.size else np.zeros_like(hit)
    return ~hit | on_counted, first_matches(face_of, on_counted)


def evaluate_widerface_folder(
    pred_dir: str | os.PathLike[str], gt: WiderFaceGroundTruth | str | os.PathLike[str], **options: Any
) -> WiderFaceResult:
    """:func:`evaluate_widerface` on the prediction files of ``pred_dir``; ``gt`` is a loaded ground
    truth or its folder."""
    truth = gt if isinstance(gt, WiderFaceGroundTruth) else load_widerface_ground_truth(gt)
    return evaluate_widerface(truth, read_widerface_predictions(pred_dir, truth), **options)
