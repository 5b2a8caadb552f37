"""Training throughput of the landmark model: images per second of one optimiser step, in float32 and in
bfloat16 autocast (``precision: bf16``), measured in the same run.

    python benchmarks/training_throughput.py --width 18 --size 128 --batch 16

Pause any training run while measuring.  (``hrface bench --research`` reports the float32 figure too.)
"""

from __future__ import annotations

import argparse

import torch

from hrface.benchmark.training import training_images_per_s


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
