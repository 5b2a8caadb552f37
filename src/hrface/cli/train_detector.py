"""``hrface train-detector``: train RetinaFace from a YAML config."""

from __future__ import annotations

import argparse
import math

from ..training.detection.config import load_detection_config
from ..training.detection.sources import build_detection_samples
from ..training.detection.trainer import train_detector
from .training_args import add_train_parser, apply_overrides


def add_parsers(commands: argparse._SubParsersAction) -> None:
    add_train_parser(
        commands,
        "train-detector",
        "train the RetinaFace detector from a YAML config",
        "configs/retinaface_mnet025_300w.yaml",
        run_train,
    )


def run_train(args: argparse.Namespace) -> int:
    config = load_detection_config(args.config, args.set)
    apply_overrides(config, args)
    train_images, val_images = build_detection_samples(config)
    faces = sum(s.num_faces for s in train_images)
    print(
        f"training on {len(train_images)} images ({faces} faces), validating on {len(val_images)} images; "
        f"output: {config.output_dir}"
    )
    result = train_detector(config, train_images, val_images, args.resume, args.max_steps, progress=not args.quiet)
    epoch, best_epoch = result["epoch"], result["best_epoch"]
    row = result["history"][best_epoch - 1] if best_epoch >= 1 else {}
    ap, nme = row.get("val_ap"), row.get("val_keypoint_nme")
    if ap is not None and math.isfinite(ap):
        kept = f"epoch {best_epoch} (select: {config.select}; validation AP {100 * ap:.2f} %"
        kept += f", keypoint NME {100 * nme:.2f} %)" if nme is not None and math.isfinite(nme) else ")"
    else:
        kept = "not evaluated yet"
    print(f"epoch {epoch}, step {result['global_step']}; weights kept (model.safetensors): {kept}")
    return 0
