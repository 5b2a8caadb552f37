"""Training throughput of the landmark model: images per second of one optimiser step."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from ..models.hrnet import HRNet


def training_images_per_s(width: int, size: int, batch: int = 8, steps: int = 3, warmup: int = 1) -> float:
    """Images/s of HRNetV2-W``width`` training steps (forward, MSE heatmap loss, backward, Adam) on
    random (batch, 3, size, size) inputs and 68 (size/4)² target heatmaps; median step time."""
    torch.manual_seed(0)
    model = HRNet(num_landmarks=68, width=width).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    images = torch.randn(batch, 3, size, size)
    targets = torch.rand(batch, 68, size // 4, size // 4)
    times = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(images), targets)
        loss.backward()
        optimizer.step()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    times.sort()
    return batch / times[len(times) // 2]
