"""Conv + BatchNorm (+ LeakyReLU) building blocks shared by the RetinaFace backbone and neck.

The Sequential indices (0 = conv, 1 = BN, 2 = activation) define checkpoint keys such as
``body.stage1.0.1.weight``, so these helpers keep the reference layout exactly.
"""

from __future__ import annotations

from torch import nn


def conv_bn(in_ch: int, out_ch: int, stride: int = 1, leaky: float | None = 0.0, kernel: int = 3) -> nn.Sequential:
    """``kernel``×``kernel`` conv (no bias, 'same' padding) + BN, followed by LeakyReLU unless ``leaky`` is None.

    ``leaky=0`` gives a plain ReLU (LeakyReLU with slope 0), as in the reference.
    """
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    if leaky is not None:
        layers.append(nn.LeakyReLU(negative_slope=leaky, inplace=True))
    return nn.Sequential(*layers)


def conv_dw(in_ch: int, out_ch: int, stride: int, leaky: float = 0.1) -> nn.Sequential:
    """Depthwise-separable conv: 3×3 depthwise + BN + LeakyReLU, then 1×1 pointwise + BN + LeakyReLU."""
    return nn.Sequential(
        nn.Conv2d(in_ch, in_ch, 3, stride, 1, groups=in_ch, bias=False),
        nn.BatchNorm2d(in_ch),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
        nn.Conv2d(in_ch, out_ch, 1, 1, 0, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
    )
