"""RetinaFace neck: feature pyramid (FPN) and SSH context modules."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import conv_bn


def _leaky_slope(channels: int) -> float:
    # The reference uses LeakyReLU(0.1) in the narrow (MobileNet, 64-channel) neck and ReLU otherwise.
    return 0.1 if channels <= 64 else 0.0


class FPN(nn.Module):
    """Top-down feature pyramid over three backbone levels (strides 8, 16, 32).

    1×1 lateral convs (``output1..3``) bring every level to ``out_channels``; coarser levels are
    upsampled (nearest) to the finer one's size, added, and smoothed by a 3×3 conv (``merge1/2``).
    """

    def __init__(self, in_channels: tuple[int, int, int], out_channels: int) -> None:
        super().__init__()
        leaky = _leaky_slope(out_channels)
        self.output1 = conv_bn(in_channels[0], out_channels, leaky=leaky, kernel=1)
        self.output2 = conv_bn(in_channels[1], out_channels, leaky=leaky, kernel=1)
        self.output3 = conv_bn(in_channels[2], out_channels, leaky=leaky, kernel=1)
        self.merge1 = conv_bn(out_channels, out_channels, leaky=leaky)
        self.merge2 = conv_bn(out_channels, out_channels, leaky=leaky)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        p3 = self.output1(features[0])
        p4 = self.output2(features[1])
        p5 = self.output3(features[2])
        p4 = self.merge2(p4 + F.interpolate(p5, size=p4.shape[-2:], mode="nearest"))
        p3 = self.merge1(p3 + F.interpolate(p4, size=p3.shape[-2:], mode="nearest"))
        return [p3, p4, p5]


class SSH(nn.Module):
    """Single-stage headless context module: parallel 3×3, 5×5 and 7×7 receptive fields.

    The 5×5 branch is two stacked 3×3 convs and the 7×7 branch three, sharing their first conv.
    Output channels: out/2 (3×3) + out/4 (5×5) + out/4 (7×7), concatenated, then ReLU.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        if out_channels % 4:
            raise ValueError(f"SSH out_channels must be divisible by 4, got {out_channels}")
        leaky = _leaky_slope(out_channels)
        quarter = out_channels // 4
        self.conv3X3 = conv_bn(in_channels, out_channels // 2, leaky=None)
        self.conv5X5_1 = conv_bn(in_channels, quarter, leaky=leaky)
        self.conv5X5_2 = conv_bn(quarter, quarter, leaky=None)
        self.conv7X7_2 = conv_bn(quarter, quarter, leaky=leaky)
        self.conv7x7_3 = conv_bn(quarter, quarter, leaky=None)  # lower-case x: a checkpoint key

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch3 = self.conv3X3(x)
        shared = self.conv5X5_1(x)
        branch5 = self.conv5X5_2(shared)
        branch7 = self.conv7x7_3(self.conv7X7_2(shared))
        return F.relu(torch.cat([branch3, branch5, branch7], dim=1))
