"""HRNetV2 for facial landmarks: a high-resolution backbone and a 1×1-conv heatmap head.

The module layout and names follow the reference face-alignment implementation exactly, so its
checkpoints (HRNetV2-W18 on 300W / WFLW / COFW / AFLW) load unchanged with ``strict=True``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from ..blocks import BLOCKS, Bottleneck, batch_norm, conv3x3, make_blocks
from .module import HighResolutionModule

STEM_CHANNELS = 64  # channels of the two stride-2 stem convolutions and of layer1's bottleneck planes
LAYER1_BLOCKS = 4
DEFAULT_INPUT_SIZE = 256  # crop side of the reference recipe (heatmaps are a quarter of it)


@dataclass(frozen=True)
class StageSpec:
    """One multi-resolution stage: ``num_modules`` HighResolutionModules over ``len(num_channels)`` branches.

    ``num_channels[b]`` is the width of branch ``b`` (before the block expansion), ``num_blocks[b]`` the
    number of residual blocks of that branch in each module, ``block`` a key of :data:`BLOCKS`.
    """

    num_modules: int
    num_blocks: tuple[int, ...]
    num_channels: tuple[int, ...]
    block: str = "BASIC"

    @property
    def num_branches(self) -> int:
        return len(self.num_channels)


def stage_specs(width: int) -> tuple[StageSpec, StageSpec, StageSpec]:
    """Stages 2–4 of HRNetV2-W``width`` as used for face alignment (branch widths w, 2w, 4w, 8w).

    Stage 2: 1 module, 2 branches; stage 3: 4 modules, 3 branches; stage 4: 3 modules, 4 branches;
    4 basic blocks per branch throughout.
    """
    if width <= 0:
        raise ConfigError(f"HRNet width must be a positive integer, got {width}")
    return (
        StageSpec(num_modules=1, num_blocks=(4, 4), num_channels=(width, 2 * width)),
        StageSpec(num_modules=4, num_blocks=(4, 4, 4), num_channels=(width, 2 * width, 4 * width)),
        StageSpec(
            num_modules=3,
            num_blocks=(4, 4, 4, 4),
            num_channels=(width, 2 * width, 4 * width, 8 * width),
        ),
    )


# The published HRNetV2 widths; any positive width builds, these are the ones with known checkpoints.
STAGE_CONFIGS: dict[int, tuple[StageSpec, StageSpec, StageSpec]] = {w: stage_specs(w) for w in (18, 32, 48)}


def make_transition(pre_channels: list[int], cur_channels: list[int]) -> nn.ModuleList:
    """Adapters from one stage's branches to the next stage's (one more) branches.

    Existing branch ``b``: 3×3 conv+BN+ReLU when its width changes, else ``None`` (identity).
    New branch: stride-2 3×3 conv+BN+ReLU steps from the lowest-resolution existing branch, each step
    a nested Sequential (keys ``transitionK.B.S.0/1``), the last one producing the new width.
    """
    layers: list[nn.Module | None] = []
    for b, out_ch in enumerate(cur_channels):
        if b < len(pre_channels):
            in_ch = pre_channels[b]
            if in_ch == out_ch:
                layers.append(None)
            else:
                layers.append(nn.Sequential(conv3x3(in_ch, out_ch), batch_norm(out_ch), nn.ReLU(inplace=True)))
            continue
        steps = []
        in_ch = pre_channels[-1]
        num_steps = b + 1 - len(pre_channels)
        for s in range(num_steps):
            step_out = out_ch if s == num_steps - 1 else in_ch
            steps.append(nn.Sequential(conv3x3(in_ch, step_out, 2), batch_norm(step_out), nn.ReLU(inplace=True)))
        layers.append(nn.Sequential(*steps))
    return nn.ModuleList(layers)


def make_stage(spec: StageSpec, in_channels: list[int]) -> tuple[nn.Sequential, list[int]]:
    """``spec.num_modules`` chained HighResolutionModules (all multi-scale); returns them and output widths."""
    block = BLOCKS[spec.block]
    modules = []
    channels = list(in_channels)
    for _ in range(spec.num_modules):
        module = HighResolutionModule(
            spec.num_branches, block, spec.num_blocks, channels, spec.num_channels, multi_scale_output=True
        )
        channels = module.get_num_inchannels()
        modules.append(module)
    return nn.Sequential(*modules), channels


def _apply_transition(transition: nn.ModuleList, feats: list[torch.Tensor]) -> list[torch.Tensor]:
    """Existing branches pass through (or are adapted); new ones are derived from the last branch."""
    out = []
    for b, layer in enumerate(transition):
        if b < len(feats):
            out.append(feats[b] if layer is None else layer(feats[b]))
        else:
            out.append(layer(feats[-1]))
    return out


class HRNet(nn.Module):
    """HRNetV2-W``width`` facial landmark network (Wang et al., 2020; Sun et al., 2019).

    ``forward`` maps a normalised RGB crop (N, 3, H, W) — the reference uses 256×256 with ImageNet
    mean/std — to ``num_landmarks`` heatmaps (N, K, H/4, W/4), i.e. (N, K, 64, 64) for 256×256.
    The heatmaps have stride 4 with respect to the input; their values are raw regression outputs
    (trained towards Gaussians of peak 1), not probabilities.

    Layout: stem (two stride-2 3×3 convs, 64 ch) → ``layer1`` (4 bottlenecks, 256 ch) → stages 2–4
    with transitions → the four branches (widths w, 2w, 4w, 8w at strides 4, 8, 16, 32) resized
    bilinearly to stride 4 and concatenated (15w channels) → ``head`` (1×1 conv, BN, ReLU, 1×1 conv).
    """

    def __init__(self, num_landmarks: int = 68, width: int = 18):
        super().__init__()
        if num_landmarks <= 0:
            raise ConfigError(f"HRNet needs a positive number of landmarks, got {num_landmarks}")
        self.num_landmarks = num_landmarks
        self.width = width
        # Side (pixels) of the square crops the weights were trained on; not part of the state_dict.
        # The published checkpoints use 256; create_model sets it from a trained file's metadata.
        self.input_size = DEFAULT_INPUT_SIZE
        stage2_spec, stage3_spec, stage4_spec = STAGE_CONFIGS.get(width) or stage_specs(width)

        self.conv1 = nn.Conv2d(3, STEM_CHANNELS, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = batch_norm(STEM_CHANNELS)
        self.conv2 = nn.Conv2d(STEM_CHANNELS, STEM_CHANNELS, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn2 = batch_norm(STEM_CHANNELS)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = make_blocks(Bottleneck, STEM_CHANNELS, STEM_CHANNELS, LAYER1_BLOCKS)
        channels = [STEM_CHANNELS * Bottleneck.expansion]

        self.transition1 = make_transition(channels, _expanded(stage2_spec))
        self.stage2, channels = make_stage(stage2_spec, _expanded(stage2_spec))
        self.transition2 = make_transition(channels, _expanded(stage3_spec))
        self.stage3, channels = make_stage(stage3_spec, _expanded(stage3_spec))
        self.transition3 = make_transition(channels, _expanded(stage4_spec))
        self.stage4, channels = make_stage(stage4_spec, _expanded(stage4_spec))

        head_ch = sum(channels)
        self.head = nn.Sequential(
            nn.Conv2d(head_ch, head_ch, kernel_size=1),
            batch_norm(head_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(head_ch, num_landmarks, kernel_size=1),
        )

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Backbone outputs: 4 tensors (N, w·2^b, H/2^(b+2), W/2^(b+2)) for b = 0..3."""
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        feats = [self.layer1(x)]
        for transition, stage in (
            (self.transition1, self.stage2),
            (self.transition2, self.stage3),
            (self.transition3, self.stage4),
        ):
            feats = stage(_apply_transition(transition, feats))
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) float → (N, num_landmarks, H/4, W/4) heatmaps."""
        feats = self.features(x)
        size = feats[0].shape[-2:]
        upsampled = [feats[0]] + [F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in feats[1:]]
        return self.head(torch.cat(upsampled, dim=1))


def _expanded(spec: StageSpec) -> list[int]:
    """Output width of each branch of a stage (branch width × block expansion)."""
    return [c * BLOCKS[spec.block].expansion for c in spec.num_channels]
