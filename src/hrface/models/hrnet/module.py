"""The multi-resolution module of HRNet: parallel branches followed by all-to-all fusion."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from ..blocks import Block, batch_norm, conv3x3, make_blocks

# How lower-resolution branches are brought up to a higher resolution when fusing.  The reference
# face model resizes bilinearly (align_corners=False) to the target branch's exact size; the
# synthetic-weight parity fixture confirms this (bilinear matches it exactly; nearest neighbour is
# off by up to 0.08 on heatmaps of magnitude ~0.9).
FUSE_UPSAMPLE_MODE = "bilinear"


class HighResolutionModule(nn.Module):
    """``num_branches`` parallel residual branches, then every branch receives the sum of all others.

    Branch ``b`` works at 1/2^b of branch 0's resolution.  ``forward`` takes a list of
    ``num_branches`` tensors, tensor ``b`` of shape (N, num_inchannels[b], H/2^b, W/2^b), and returns
    a list of the fused tensors, tensor ``i`` of shape (N, num_channels[i]·expansion, H/2^i, W/2^i):
    all ``num_branches`` of them with ``multi_scale_output``, otherwise only the highest-resolution one.

    Fusion into output ``i`` from branch ``j`` (``fuse_layers[i][j]``):

    - ``j > i``: 1×1 conv (no bias) + BN, then bilinear resize up to branch ``i``'s size;
    - ``j == i``: identity (``None``);
    - ``j < i``: ``i - j`` stride-2 3×3 conv+BN steps, ReLU between steps but not after the last.

    The summed result goes through a final ReLU.
    """

    def __init__(
        self,
        num_branches: int,
        block: Block,
        num_blocks: Sequence[int],
        num_inchannels: Sequence[int],
        num_channels: Sequence[int],
        multi_scale_output: bool = True,
    ):
        super().__init__()
        self._check_branches(num_branches, num_blocks, num_inchannels, num_channels)
        self.num_branches = num_branches
        self.multi_scale_output = multi_scale_output
        self.branches = nn.ModuleList(
            make_blocks(block, num_inchannels[b], num_channels[b], num_blocks[b]) for b in range(num_branches)
        )
        # Channels of each branch's output; also the channels of the fused outputs.
        self.num_inchannels = [c * block.expansion for c in num_channels]
        self.fuse_layers = self._make_fuse_layers()
        self.relu = nn.ReLU(inplace=True)

    @staticmethod
    def _check_branches(
        num_branches: int,
        num_blocks: Sequence[int],
        num_inchannels: Sequence[int],
        num_channels: Sequence[int],
    ) -> None:
        for name, values in (
            ("num_blocks", num_blocks),
            ("num_inchannels", num_inchannels),
            ("num_channels", num_channels),
        ):
            if len(values) != num_branches:
                raise ConfigError(
                    f"HighResolutionModule: num_branches is {num_branches} but {name} has "
                    f"{len(values)} entries ({list(values)}); give one entry per branch"
                )

    def _make_fuse_layers(self) -> nn.ModuleList | None:
        if self.num_branches == 1:
            return None
        channels = self.num_inchannels
        num_outputs = self.num_branches if self.multi_scale_output else 1
        fuse_layers = []
        for i in range(num_outputs):
            row: list[nn.Module | None] = []
            for j in range(self.num_branches):
                if j > i:
                    row.append(
                        nn.Sequential(
                            nn.Conv2d(channels[j], channels[i], kernel_size=1, bias=False),
                            batch_norm(channels[i]),
                        )
                    )
                elif j == i:
                    row.append(None)
                else:
                    row.append(self._downsampler(channels[j], channels[i], steps=i - j))
            fuse_layers.append(nn.ModuleList(row))
        return nn.ModuleList(fuse_layers)

    @staticmethod
    def _downsampler(in_ch: int, out_ch: int, steps: int) -> nn.Sequential:
        """``steps`` stride-2 3×3 conv+BN; intermediate steps keep ``in_ch`` and end in ReLU."""
        layers = []
        for k in range(steps):
            if k == steps - 1:
                layers.append(nn.Sequential(conv3x3(in_ch, out_ch, 2), batch_norm(out_ch)))
            else:
                layers.append(nn.Sequential(conv3x3(in_ch, in_ch, 2), batch_norm(in_ch), nn.ReLU(inplace=True)))
        return nn.Sequential(*layers)

    def get_num_inchannels(self) -> list[int]:
        """Channels of each output branch (what the next module takes as ``num_inchannels``)."""
        return list(self.num_inchannels)

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        feats = [branch(t) for branch, t in zip(self.branches, x, strict=True)]
        if self.fuse_layers is None:
            return feats
        fused = []
        for i, row in enumerate(self.fuse_layers):
            size = feats[i].shape[-2:]
            y: torch.Tensor | None = None
            for j, layer in enumerate(row):  # summed in branch order, as the reference does
                if j == i:
                    z = feats[j]
                elif j > i:
                    z = F.interpolate(layer(feats[j]), size=size, mode=FUSE_UPSAMPLE_MODE, align_corners=False)
                else:
                    z = layer(feats[j])
                y = z if y is None else y + z
            fused.append(self.relu(y))
        return fused
