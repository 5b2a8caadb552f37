"""Multiply-accumulate counts of a model's convolutions and linear layers for one input shape.

FLOPs are reported as 2 × MACs (one multiply and one add per MAC); BatchNorm, activations, resizes
and additions are left out (they are < 1 % of the convolutions' work in RetinaFace and HRNet).
"""

from __future__ import annotations

import torch
from torch import nn


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """MACs of one forward pass of ``model`` on a zero tensor of ``input_shape`` (N, C, H, W).

    A conv contributes output elements × (in_channels / groups) × kernel area; a linear layer
    output elements × in_features.
    """
    total = 0

    def conv_hook(module: nn.Conv2d, _: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += out.numel() * (module.in_channels // module.groups) * kh * kw

    def linear_hook(module: nn.Linear, _: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() * module.in_features

    handles = [
        m.register_forward_hook(conv_hook if isinstance(m, nn.Conv2d) else linear_hook)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    try:
        with torch.inference_mode():
            model.eval()(torch.zeros(input_shape))
    finally:
        for handle in handles:
            handle.remove()
    return total
