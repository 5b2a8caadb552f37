"""Training throughput of the landmark model: images per second of one optimiser step, in float32 and in
bfloat16 autocast (``precision: bf16``), measured in the same run.

    python -m hrface.benchmark.training --width 18 --size 128 --batch 16

Pause any training run while measuring.
"""

from __future__ import annotations

import argparse
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=18)
    parser.add_argument("--size", type=int, default=128, help="crop side (pixels)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args(argv)
    rates = {p: training_images_per_s(args.width, args.size, args.batch, args.steps, 1, p) for p in ("fp32", "bf16")}
    print(f"HRNetV2-W{args.width}, {args.size}x{args.size}, batch {args.batch}, {torch.get_num_threads()} threads")
    for precision, rate in rates.items():
        print(
            f"  {precision}: {rate:6.2f} images/s, {1000 * args.batch / rate:7.1f} ms/step, "
            f"step time {rates['fp32'] / rate:.2f}x fp32"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
