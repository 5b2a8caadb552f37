"""Assigning ground-truth faces to RetinaFace prior boxes (the SSD / RetinaFace matching rule).

Conventions: boxes are ``x1 y1 x2 y2`` and keypoints ``(x, y)``, both normalised by the training
image size (fractions in [0, 1]); priors are ``(cx, cy, w, h)`` normalised the same way
(:func:`hrface.ops.priors.prior_boxes`).  A target row of an image is 15 float32 numbers::

    x1 y1 x2 y2  kx1 ky1 … kx5 ky5  label

``label`` is 1 for a face with 5 keypoints and −1 for a face without them (its keypoint coordinates
are −1); the matched prior label is 0 for background.

Rule (the reference Pytorch_Retinaface ``match``):

1. IoU of every face with every prior (priors taken as corner boxes).
2. Faces whose best prior IoU is below ``ignore_below`` (0.2) are too small or odd-shaped for any
   prior: they are ignored (never matched).  The reference still lets such a face claim its best
   prior's index in step 4 without forcing it positive; here they are dropped outright, which only
   differs when that prior overlaps another face by ≥ ``threshold``.
3. Every prior takes the face it overlaps most; it is positive when that IoU ≥ ``threshold`` (0.35).
4. Every remaining face forces its own best prior positive and assigned to itself, whatever the IoU
   (when two faces share a best prior, the later face in the target rows wins, as in the reference).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ...ops.box_coder import DEFAULT_VARIANCES, encode_boxes, encode_landmarks
from ...ops.boxes import box_iou

MATCH_THRESHOLD = 0.35
IGNORE_BELOW = 0.2
TARGET_COLUMNS = 15


@dataclass
class MatchedTargets:
    """Per-prior regression and class targets of a batch of N images with P priors.

    Attributes:
        loc: (N, P, 4) encoded box offsets of the matched face (:func:`~hrface.ops.encode_boxes`);
            meaningful only where ``labels != 0``.
        landm: (N, P, 10) encoded keypoint offsets (:func:`~hrface.ops.encode_landmarks`); meaningful
            only where ``labels == 1``.
        labels: (N, P) int64: 0 background, 1 face with keypoints, −1 face without keypoints.
    """

    loc: torch.Tensor
    landm: torch.Tensor
    labels: torch.Tensor


def prior_corners(priors: torch.Tensor) -> torch.Tensor:
    """Priors (P, 4) ``cx cy w h`` → corner boxes (P, 4) ``x1 y1 x2 y2``."""
    half = priors[:, 2:] / 2
    return torch.cat([priors[:, :2] - half, priors[:, :2] + half], dim=1)


def match_faces(
    boxes: torch.Tensor,
    priors: torch.Tensor,
    threshold: float = MATCH_THRESHOLD,
    ignore_below: float = IGNORE_BELOW,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Match the M faces of one image to P priors (rule in the module doc).

    Args:
        boxes: (M, 4) normalised xyxy face boxes (M may be 0).
        priors: (P, 4) normalised ``cx cy w h``.

    Returns:
        ``(face_index, positive)``: (P,) int64 index into ``boxes`` of each prior's matched face
        (0 where nothing is matched; only meaningful where positive) and (P,) bool positive mask.
    """
    num_priors = priors.shape[0]
    face_index = torch.zeros(num_priors, dtype=torch.int64, device=priors.device)
    positive = torch.zeros(num_priors, dtype=torch.bool, device=priors.device)
    if boxes.shape[0] == 0:
        return face_index, positive
    overlaps = box_iou(boxes, prior_corners(priors))  # (M, P)
    best_prior_overlap, best_prior = overlaps.max(dim=1)  # (M,)
    kept = torch.nonzero(best_prior_overlap >= ignore_below).squeeze(1)
    if kept.numel() == 0:
        return face_index, positive
    best_face_overlap, best_face = overlaps[kept].max(dim=0)  # (P,) over the kept faces
    best_prior = best_prior[kept]
    best_face_overlap = best_face_overlap.index_fill(0, best_prior, 2.0)  # forced: above any threshold
    # Each kept face claims its best prior; on a shared best prior the later face wins (amax of its rank).
    claim = torch.full_like(best_face, -1).scatter_reduce(
        0, best_prior, torch.arange(kept.numel(), device=priors.device), reduce="amax"
    )
    best_face = torch.where(claim >= 0, claim, best_face)
    return kept[best_face], best_face_overlap >= threshold


def match_targets(
    targets: Sequence[torch.Tensor],
    priors: torch.Tensor,
    threshold: float = MATCH_THRESHOLD,
    ignore_below: float = IGNORE_BELOW,
    variances: tuple[float, float] = DEFAULT_VARIANCES,
) -> MatchedTargets:
    """Per-prior targets of a batch: one (M_i, 15) target tensor per image (module doc), priors (P, 4).

    Loops over the images (each has its own number of faces); everything per prior is vectorised.
    """
    num_priors, device = priors.shape[0], priors.device
    loc, landm, labels = [], [], []
    for rows in targets:
        rows = rows.to(device, torch.float32).reshape(-1, TARGET_COLUMNS)
        if rows.shape[0] == 0:  # no face: every prior is background
            loc.append(torch.zeros(num_priors, 4, device=device))
            landm.append(torch.zeros(num_priors, 10, device=device))
            labels.append(torch.zeros(num_priors, dtype=torch.int64, device=device))
            continue
        face_index, positive = match_faces(rows[:, :4], priors, threshold, ignore_below)
        matched = rows[face_index]  # (P, 15)
        loc.append(encode_boxes(matched[:, :4], priors, variances))
        landm.append(encode_landmarks(matched[:, 4:14].reshape(-1, 5, 2), priors, variances))
        labels.append(torch.where(positive, matched[:, 14].round().long(), 0))
    return MatchedTargets(torch.stack(loc), torch.stack(landm), torch.stack(labels))
