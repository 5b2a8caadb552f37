"""RetinaFace prediction heads: one 1×1 conv per pyramid level for classes, boxes and landmarks."""

from __future__ import annotations

import torch
from torch import nn


class _AnchorHead(nn.Module):
    """1×1 conv predicting ``values`` numbers for each of ``num_anchors`` anchors per cell.

    (N, C, H, W) → (N, H·W·num_anchors, values), anchors ordered row → column → anchor.
    """

    def __init__(self, in_channels: int, num_anchors: int, values: int) -> None:
        super().__init__()
        self.values = values
        self.conv1x1 = nn.Conv2d(in_channels, num_anchors * values, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1x1(x).permute(0, 2, 3, 1)
        return out.reshape(out.shape[0], -1, self.values)


class ClassHead(_AnchorHead):
    """Face / background logits: (N, H·W·A, 2)."""

    def __init__(self, in_channels: int, num_anchors: int = 2) -> None:
        super().__init__(in_channels, num_anchors, 2)


class BboxHead(_AnchorHead):
    """Box offsets (dx, dy, dw, dh) relative to the priors: (N, H·W·A, 4)."""

    def __init__(self, in_channels: int, num_anchors: int = 2) -> None:
        super().__init__(in_channels, num_anchors, 4)


class LandmarkHead(_AnchorHead):
    """Offsets of the 5 keypoints (x1, y1, …, x5, y5) relative to the priors: (N, H·W·A, 10)."""

    def __init__(self, in_channels: int, num_anchors: int = 2) -> None:
        super().__init__(in_channels, num_anchors, 10)
