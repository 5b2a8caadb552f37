"""Training throughput of the landmark model (``hrface bench --research``): images per second of one optimiser
step, in float32 or in bfloat16 autocast (``precision: bf16``).  Both, side by side:
``python benchmarks/training_throughput.py --width 18 --size 128 --batch 16``.  Pause any training run while
measuring.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from ..models.hrnet import HRNet
from ..training.common import autocast


def training_images_per_s(
    width: int, size: int, batch: int = 8, steps: int = 3, warmup: int = 1, precision: str = "fp32"
) -> float:
    """Images/s of HRNetV2-W``width`` training steps (forward, MSE heatmap loss, backward, Adam) on
    random (batch, 3, size, size) inputs and 68 (size/4)² target heatmaps, on the CPU; median step time.
    ``precision``: 'fp32' or 'bf16' (bfloat16 autocast, as the trainer's ``precision`` key)."""
    torch.manual_seed(0)
    model = HRNet(num_landmarks=68, width=width).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    images = torch.randn(batch, 3, size, size)
    targets = torch.rand(batch, 68, size // 4, size // 4)
    times = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with autocast(torch.device("cpu"), precision):
            heatmaps = model(images)
        loss = F.mse_loss(heatmaps.float(), targets)
        loss.backward()
        optimizer.step()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    times.sort()
    return batch / times[len(times) // 2]
