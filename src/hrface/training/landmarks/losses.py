"""Heatmap losses of the landmark trainer.

- ``mse``: the reference HRNet loss, the mean squared error between predicted and target heatmaps.
- ``awing``: Adaptive Wing loss (Wang, Bo and Fuxin, "Adaptive Wing Loss for Robust Face Alignment via
  Heatmap Regression", ICCV 2019) with the paper's constants α = 2.1, ω = 14, ε = 1, θ = 0.5 and its
  weighted loss map (weight 1 + W·M, W = 10, M = the target above 0.2 dilated by a 3×3 square).  Near
  the foreground it behaves like a log loss, which keeps pushing small errors down where MSE has all
  but stopped; on the background (target 0) it is close to MSE.

Every loss takes ``pred`` and ``target`` (N, K, H, W) and ``weight`` (N, K) (0 for points without a
target) and returns the mean over all N·K·H·W elements of the weighted per-pixel loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

AWING_ALPHA, AWING_OMEGA, AWING_EPSILON, AWING_THETA = 2.1, 14.0, 1.0, 0.5
AWING_MAP_WEIGHT, AWING_MAP_THRESHOLD = 10.0, 0.2


def mse_heatmap_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted MSE: mean over (N, K, H, W) of ``weight[n, k] * (pred - target)²``."""
    return ((pred.float() - target) ** 2 * weight[:, :, None, None]).mean()


def adaptive_wing_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Adaptive Wing loss with the weighted loss map (module doc), as a mean over (N, K, H, W)."""
    pred, target = pred.float(), target.float()
    alpha, omega, eps, theta = AWING_ALPHA, AWING_OMEGA, AWING_EPSILON, AWING_THETA
    delta = (pred - target).abs()
    power = alpha - target  # per pixel: steeper near the background, flatter near the peak
    ratio = (theta / eps) ** power
    a = omega / (1.0 + ratio) * power * ((theta / eps) ** (power - 1.0)) / eps
    c = theta * a - omega * torch.log1p(ratio)
    loss = torch.where(delta < theta, omega * torch.log1p((delta / eps) ** power), a * delta - c)
    foreground = F.max_pool2d((target > AWING_MAP_THRESHOLD).float(), kernel_size=3, stride=1, padding=1)
    loss = loss * (1.0 + AWING_MAP_WEIGHT * foreground)
    return (loss * weight[:, :, None, None]).mean()


HEATMAP_LOSSES = {"mse": mse_heatmap_loss, "awing": adaptive_wing_loss}
