"""Encoding and decoding of boxes and 5-point landmarks against prior boxes (SSD-style, with variances).

All boxes here are in normalised coordinates (fractions of the input width/height); priors are
``(cx, cy, w, h)``, boxes ``(x1, y1, x2, y2)``. Multiply by (W, H, W, H) for pixels.  Decoding (the
runtime) works on NumPy arrays; encoding (training targets) on torch tensors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

DEFAULT_VARIANCES: tuple[float, float] = (0.1, 0.2)


def decode_boxes(loc: np.ndarray, priors: np.ndarray, variances: tuple[float, float] = DEFAULT_VARIANCES) -> np.ndarray:
    """Offsets (…, P, 4) → boxes (…, P, 4) in normalised xyxy.

    centre = prior_centre + loc[:2]·v0·prior_size; size = prior_size·exp(loc[2:]·v1).
    """
    centres = priors[..., :2] + loc[..., :2] * variances[0] * priors[..., 2:]
    sizes = priors[..., 2:] * np.exp(loc[..., 2:] * variances[1])
    return np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=-1)


def decode_landmarks(
    landm: np.ndarray, priors: np.ndarray, variances: tuple[float, float] = DEFAULT_VARIANCES
) -> np.ndarray:
    """Offsets (…, P, 10) → keypoints (…, P, 5, 2) in normalised (x, y): prior_centre + offset·v0·prior_size."""
    offsets = landm.reshape(*landm.shape[:-1], 5, 2)
    return priors[..., None, :2] + offsets * variances[0] * priors[..., None, 2:]


def encode_boxes(
    boxes: torch.Tensor, priors: torch.Tensor, variances: tuple[float, float] = DEFAULT_VARIANCES
) -> torch.Tensor:
    """Inverse of :func:`decode_boxes`: normalised xyxy boxes (P, 4) matched to priors (P, 4) → offsets (P, 4)."""
    import torch

    centres = (boxes[..., :2] + boxes[..., 2:]) / 2
    sizes = boxes[..., 2:] - boxes[..., :2]
    d_centre = (centres - priors[..., :2]) / (variances[0] * priors[..., 2:])
    d_size = torch.log(sizes / priors[..., 2:]) / variances[1]
    return torch.cat([d_centre, d_size], dim=-1)


def encode_landmarks(
    points: torch.Tensor, priors: torch.Tensor, variances: tuple[float, float] = DEFAULT_VARIANCES
) -> torch.Tensor:
    """Inverse of :func:`decode_landmarks`: keypoints (P, 5, 2) normalised → offsets (P, 10)."""
    offsets = (points - priors[..., None, :2]) / (variances[0] * priors[..., None, 2:])
    return offsets.reshape(*offsets.shape[:-2], 10)
