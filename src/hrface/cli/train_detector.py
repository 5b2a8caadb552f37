"""``hrface train-detector``: train RetinaFace from a YAML config."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..training.detection.config import load_detection_config
from ..training.detection.sources import build_detection_samples
from ..training.detection.trainer import train_detector


def add_parsers(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("train-detector", help="train the RetinaFace detector from a YAML config")
    p.add_argument("config", type=Path, help="training config (see configs/retinaface_mnet025_300w.yaml)")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR/last.pt exactly")
    p.add_argument("--max-steps", type=int, help="stop after this many optimizer steps (resumable)")
    p.add_argument("--device", help="override the config's device (cpu, cuda, auto)")
    p.add_argument("--output-dir", type=Path, help="override the config's output_dir")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> int:
    config = load_detection_config(args.config)
    config.device = args.device or config.device
    config.output_dir = str(args.output_dir or config.output_dir)
    train_images, val_images = build_detection_samples(config)
    faces = sum(s.num_faces for s in train_images)
    print(
        f"training on {len(train_images)} images ({faces} faces), validating on {len(val_images)} images; "
        f"output: {config.output_dir}"
    )
    result = train_detector(config, train_images, val_images, args.resume, args.max_steps, progress=not args.quiet)
    best, best_epoch = result["best_val_ap"], result["best_epoch"]
    evaluated = best_epoch >= 0 and math.isfinite(best)
    best_text = f"{100 * best:.2f} % (epoch {best_epoch})" if evaluated else "not evaluated yet"
    print(f"epoch {result['epoch']}, step {result['global_step']}; best validation AP (IoU 0.5) {best_text}")
    return 0
