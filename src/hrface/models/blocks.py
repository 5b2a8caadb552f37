"""Residual blocks shared by HRNet and the ResNet50 backbone: the basic 3×3–3×3 block and the
1×1–3×3–1×1 bottleneck.

Attribute names (``conv1``, ``bn1``, …, ``downsample``) are those of the reference implementations;
they make up the checkpoint keys, so they must not change.  BatchNorms use HRNet's momentum 0.01 by
default (ResNet50 passes PyTorch's 0.1); momentum only matters in training mode.
"""

from __future__ import annotations

import torch
from torch import nn

BN_MOMENTUM = 0.01


def batch_norm(channels: int, momentum: float = BN_MOMENTUM) -> nn.BatchNorm2d:
    """BatchNorm2d with HRNet's momentum (0.01) unless given, and the default eps (1e-5)."""
    return nn.BatchNorm2d(channels, momentum=momentum)


def conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    """3×3 convolution without bias and with padding 1 (output size = input size / stride)."""
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False)


def projection(in_ch: int, out_ch: int, stride: int = 1, bn_momentum: float = BN_MOMENTUM) -> nn.Sequential:
    """Shortcut projection of a residual block: 1×1 conv (no bias) + BN (keys ``0.weight``, ``1.*``)."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, bias=False),
        batch_norm(out_ch, bn_momentum),
    )


class BasicBlock(nn.Module):
    """Two 3×3 conv+BN layers with an identity (or projected) shortcut.

    (N, inplanes, H, W) → (N, planes, H/stride, W/stride).
    """

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        bn_momentum: float = BN_MOMENTUM,
    ):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = batch_norm(planes, bn_momentum)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = batch_norm(planes, bn_momentum)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + shortcut)


class Bottleneck(nn.Module):
    """1×1 reduce → 3×3 → 1×1 expand (×4), each with BN, plus a shortcut.

    (N, inplanes, H, W) → (N, 4·planes, H/stride, W/stride).
    """

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        bn_momentum: float = BN_MOMENTUM,
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = batch_norm(planes, bn_momentum)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = batch_norm(planes, bn_momentum)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = batch_norm(planes * self.expansion, bn_momentum)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + shortcut)


Block = type[BasicBlock] | type[Bottleneck]

BLOCKS: dict[str, Block] = {"BASIC": BasicBlock, "BOTTLENECK": Bottleneck}


def make_blocks(
    block: Block, inplanes: int, planes: int, num_blocks: int, stride: int = 1, bn_momentum: float = BN_MOMENTUM
) -> nn.Sequential:
    """A Sequential of ``num_blocks`` blocks; the first gets a projection shortcut when its shape changes.

    (N, inplanes, H, W) → (N, planes·block.expansion, H/stride, W/stride).
    """
    out_ch = planes * block.expansion
    downsample = None
    if stride != 1 or inplanes != out_ch:
        downsample = projection(inplanes, out_ch, stride, bn_momentum)
    layers: list[nn.Module] = [block(inplanes, planes, stride, downsample, bn_momentum)]
    layers += [block(out_ch, planes, bn_momentum=bn_momentum) for _ in range(1, num_blocks)]
    return nn.Sequential(*layers)
