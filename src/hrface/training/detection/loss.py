"""RetinaFace multi-task loss: box and keypoint regression on matched priors, face / background
classification with hard negative mining (the reference Pytorch_Retinaface ``MultiBoxLoss``).

For a batch of N images with P priors (targets from :func:`.matching.match_targets`):

- positives: priors matched to a face (label ±1); ``n_pos`` = their count over the whole batch;
- box loss: smooth-L1 (β = 1) between predicted and encoded offsets, summed over the positives'
  4 values, divided by ``max(n_pos, 1)``;
- keypoint loss: smooth-L1 over the 10 offsets of positives matched to faces *with* keypoints
  (label 1), divided by ``max(number of those, 1)``; faces with label −1 add nothing;
- class loss: cross-entropy (face = class 1) over the positives and the hard negatives, summed and
  divided by ``max(n_pos, 1)``.  Hard negatives of an image are its ``neg_pos_ratio × positives``
  (at most all of its negatives) background priors with the highest background loss
  ``logsumexp(logits) − logits[0]``; an image without positives contributes no negatives;
- total = ``loc_weight × box + class + keypoint`` (reference: ``loc_weight`` 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...ops.box_coder import DEFAULT_VARIANCES
from .matching import IGNORE_BELOW, MATCH_THRESHOLD, match_targets

NEG_POS_RATIO = 7
LOC_WEIGHT = 2.0


@dataclass
class DetectionLoss:
    """The loss of one batch: ``total`` (differentiable scalar) and its unweighted parts
    (``loc``, ``cls``, ``landm`` scalars), with the number of positive and hard-negative priors."""

    total: torch.Tensor
    loc: torch.Tensor
    cls: torch.Tensor
    landm: torch.Tensor
    num_pos: int
    num_neg: int

    def parts(self) -> dict[str, float]:
        """The unweighted parts as Python floats: ``{'loss_loc': …, 'loss_cls': …, 'loss_landm': …}``."""
        return {
            "loss_loc": float(self.loc.detach()),
            "loss_cls": float(self.cls.detach()),
            "loss_landm": float(self.landm.detach()),
        }


def background_loss(logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each prior against the background class: (N, P, 2) logits → (N, P)."""
    logits = logits.float()
    return torch.logsumexp(logits, dim=-1) - logits[..., 0]


def hard_negatives(bg_loss: torch.Tensor, positive: torch.Tensor, ratio: int = NEG_POS_RATIO) -> torch.Tensor:
    """The hard negatives of each image: (N, P) bool.

    Args:
        bg_loss: (N, P) background loss of every prior (:func:`background_loss`), ranking key.
        positive: (N, P) bool positive priors (never negatives).
        ratio: negatives per positive; image i gets ``min(ratio × positives_i, negatives_i)``.
    """
    ranked = bg_loss.detach().masked_fill(positive, -torch.inf)
    order = ranked.argsort(dim=1, descending=True, stable=True)
    rank = order.argsort(dim=1, stable=True)  # rank[i, p]: position of prior p in image i's ranking
    num_pos = positive.sum(dim=1, keepdim=True)
    num_neg = torch.minimum(ratio * num_pos, positive.shape[1] - num_pos)
    return (rank < num_neg) & ~positive


def multibox_loss(
    loc: torch.Tensor,
    logits: torch.Tensor,
    landm: torch.Tensor,
    priors: torch.Tensor,
    targets: Sequence[torch.Tensor],
    threshold: float = MATCH_THRESHOLD,
    ignore_below: float = IGNORE_BELOW,
    neg_pos_ratio: int = NEG_POS_RATIO,
    loc_weight: float = LOC_WEIGHT,
    variances: tuple[float, float] = DEFAULT_VARIANCES,
    landm_weight: float = 1.0,
) -> DetectionLoss:
    """The RetinaFace training loss of a batch (module doc).

    Args:
        loc: (N, P, 4) predicted box offsets.
        logits: (N, P, 2) background / face logits (not softmax).
        landm: (N, P, 10) predicted keypoint offsets.
        priors: (P, 4) normalised ``cx cy w h`` priors of the input size, on the predictions' device.
        targets: N float tensors (M_i, 15) ``x1 y1 x2 y2 kx1 ky1 … kx5 ky5 label``, normalised
            (see :mod:`.matching`).
        threshold / ignore_below / variances: matching and encoding parameters (reference values).
        neg_pos_ratio: hard negatives per positive; loc_weight / landm_weight: weights of the box and
            keypoint losses in ``total`` (reference: 2 and 1).
    """
    with torch.no_grad():
        matched = match_targets(targets, priors, threshold, ignore_below, variances)
    positive = matched.labels != 0
    with_keypoints = matched.labels > 0
    num_pos = int(positive.sum())
    loss_loc = F.smooth_l1_loss(loc.float()[positive], matched.loc[positive], reduction="sum") / max(num_pos, 1)
    loss_landm = F.smooth_l1_loss(landm.float()[with_keypoints], matched.landm[with_keypoints], reduction="sum")
    loss_landm = loss_landm / max(int(with_keypoints.sum()), 1)
    negative = hard_negatives(background_loss(logits), positive, neg_pos_ratio)
    chosen = positive | negative
    loss_cls = F.cross_entropy(logits.float()[chosen], positive[chosen].long(), reduction="sum") / max(num_pos, 1)
    total = loc_weight * loss_loc + loss_cls + landm_weight * loss_landm
    return DetectionLoss(total, loss_loc, loss_cls, loss_landm, num_pos, int(negative.sum()))
