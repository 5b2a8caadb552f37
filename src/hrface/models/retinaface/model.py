"""RetinaFace: backbone → FPN → SSH → class / box / landmark heads over prior boxes."""

from __future__ import annotations

import torch
from torch import nn

from ...errors import ConfigError
from .backbones import MobileNetV1, ResNet50
from .heads import BboxHead, ClassHead, LandmarkHead
from .neck import FPN, SSH

# backbone name → (constructor, FPN/SSH width) as in the reference configurations.
BACKBONES: dict[str, tuple[type[nn.Module], int]] = {
    "mobilenet0.25": (MobileNetV1, 64),
    "resnet50": (ResNet50, 256),
}

NUM_ANCHORS = 2  # anchors per feature-map cell (two min sizes per level)


class RetinaFace(nn.Module):
    """Single-stage face detector with 5-point landmarks (Deng et al., 2020).

    ``forward`` takes a mean-subtracted BGR batch (N, 3, H, W) and returns, for the P priors of
    that input size (see :func:`hrface.ops.priors.prior_boxes`; level → row → column → anchor):

    - ``loc``:   (N, P, 4)  box offsets, decoded by :func:`hrface.ops.box_coder.decode_boxes`
    - ``logits``: (N, P, 2) background / face logits (softmax gives the reference's ``conf``)
    - ``landm``: (N, P, 10) keypoint offsets, decoded by :func:`hrface.ops.box_coder.decode_landmarks`
    """

    def __init__(self, backbone: str = "mobilenet0.25") -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise ConfigError(f"unknown RetinaFace backbone {backbone!r}; choose one of {sorted(BACKBONES)}")
        body_cls, width = BACKBONES[backbone]
        self.backbone_name = backbone
        self.body = body_cls()
        self.fpn = FPN(self.body.out_channels, width)
        self.ssh1 = SSH(width, width)
        self.ssh2 = SSH(width, width)
        self.ssh3 = SSH(width, width)
        self.ClassHead = nn.ModuleList([ClassHead(width, NUM_ANCHORS) for _ in range(3)])
        self.BboxHead = nn.ModuleList([BboxHead(width, NUM_ANCHORS) for _ in range(3)])
        self.LandmarkHead = nn.ModuleList([LandmarkHead(width, NUM_ANCHORS) for _ in range(3)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pyramid = self.fpn(self.body(x))
        features = [self.ssh1(pyramid[0]), self.ssh2(pyramid[1]), self.ssh3(pyramid[2])]
        loc = torch.cat([head(f) for head, f in zip(self.BboxHead, features, strict=True)], dim=1)
        logits = torch.cat([head(f) for head, f in zip(self.ClassHead, features, strict=True)], dim=1)
        landm = torch.cat([head(f) for head, f in zip(self.LandmarkHead, features, strict=True)], dim=1)
        return loc, logits, landm
