"""Backbones of RetinaFace: MobileNetV1-0.25 and ResNet50, written without torchvision.

Each backbone's ``forward`` returns the three feature maps the FPN consumes, at strides 8, 16 and 32.
Attribute names match the reference checkpoints (``stage1``… for MobileNet, ``conv1``/``layer1``… for
ResNet50), which are stored under the ``body.`` prefix of RetinaFace.
"""

from __future__ import annotations

import torch
from torch import nn

from ..blocks import Bottleneck, make_blocks
from .layers import conv_bn, conv_dw

TORCH_BN_MOMENTUM = 0.1  # torchvision's ResNet uses PyTorch's default BatchNorm momentum


class MobileNetV1(nn.Module):
    """MobileNetV1 with width multiplier 0.25 and LeakyReLU(0.1), as used by RetinaFace.

    Input (N, 3, H, W) → features at strides 8, 16, 32 with 64, 128 and 256 channels.
    The ImageNet classifier (``avg``, ``fc``) is optional: RetinaFace checkpoints do not contain it,
    the ImageNet-pretrained backbone checkpoint does.
    """

    out_channels = (64, 128, 256)

    def __init__(self, with_classifier: bool = False, num_classes: int = 1000) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(
            conv_bn(3, 8, 2, leaky=0.1),  # stride 2
            conv_dw(8, 16, 1),
            conv_dw(16, 32, 2),  # stride 4
            conv_dw(32, 32, 1),
            conv_dw(32, 64, 2),  # stride 8
            conv_dw(64, 64, 1),
        )
        self.stage2 = nn.Sequential(
            conv_dw(64, 128, 2),  # stride 16
            *[conv_dw(128, 128, 1) for _ in range(5)],
        )
        self.stage3 = nn.Sequential(
            conv_dw(128, 256, 2),  # stride 32
            conv_dw(256, 256, 1),
        )
        if with_classifier:
            self.avg = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(256, num_classes)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c3 = self.stage1(x)
        c4 = self.stage2(c3)
        c5 = self.stage3(c4)
        return [c3, c4, c5]


class ResNet50(nn.Module):
    """ResNet50 trunk (stem + layer1–4), returning layer2/3/4 features (strides 8/16/32; 512/1024/2048 ch)."""

    out_channels = (512, 1024, 2048)

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(64, 64, blocks=3, stride=1)
        self.layer2 = self._make_layer(256, 128, blocks=4, stride=2)
        self.layer3 = self._make_layer(512, 256, blocks=6, stride=2)
        self.layer4 = self._make_layer(1024, 512, blocks=3, stride=2)

    @staticmethod
    def _make_layer(in_ch: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
        return make_blocks(Bottleneck, in_ch, planes, blocks, stride, bn_momentum=TORCH_BN_MOMENTUM)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [c3, c4, c5]
