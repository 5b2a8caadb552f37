"""``hrface train-detector`` (train RetinaFace from a YAML config), ``hrface pack-detection`` (its
photos and faces as a small, self-contained training set) and ``hrface mine-negatives`` (face-free
training images: the false faces of a detector, background cuts, drawn textures)."""

from __future__ import annotations

import argparse
import math
import shutil
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..extras import require
from .training_args import add_train_parser, apply_overrides


def add_parsers(commands: argparse._SubParsersAction) -> None:
    add_train_parser(
        commands,
        "train-detector",
        "train the RetinaFace detector from a YAML config",
        "configs/retinaface_mnet025_v2.yaml",
        run_train,
    )
    p = commands.add_parser(
        "pack-detection",
        help="write a detector config's training and validation photos, downscaled, with their labels",
        description="Read the config's sources, split and teacher faces, and write the photos to OUT_DIR/images/ "
        "(JPEG or WebP, longer side at most --max-side) with OUT_DIR/train.txt and OUT_DIR/val.txt (RetinaFace "
        "labels; teacher faces without keypoints), and a copy of the config's model.backbone_weights. Train from "
        "it with format: retinaface sources, e.g. on a machine without the photos.",
    )
    p.add_argument("config", type=Path, help="detector training config (YAML)")
    p.add_argument("output", type=Path, metavar="OUT_DIR", help="folder to write the pack into")
    p.add_argument("--max-side", type=int, default=1024, help="longer photo side in pixels (default 1024)")
    p.add_argument("--quality", type=int, default=90, help="JPEG / WebP quality, 1-100 (default 90)")
    p.add_argument("--format", choices=("jpg", "webp"), default="jpg", help="image format (default jpg)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    p.set_defaults(run=run_pack)
    p = commands.add_parser(
        "mine-negatives",
        help="write face-free training images (a detector's false faces, background cuts, textures)",
        description="Run --detector over the config's training photos and cut out, with context, each detection "
        "that matches neither an annotated face nor a face of --reference (default: the config's data.teacher, "
        "its cache reused); add random face-free squares of each photo and drawn textures. Writes PNG files and "
        "negatives.json to OUT_DIR; a detector config lists the folder under data.negatives.",
    )
    p.add_argument("config", type=Path, help="detector training config (YAML)")
    p.add_argument("output", type=Path, metavar="OUT_DIR", help="folder to write the images into")
    p.add_argument("--detector", default=None, help="detector whose false faces are mined (default: the default)")
    p.add_argument("--reference", default=None, help="detector whose faces (score >= 0.3) count as real faces")
    p.add_argument("--threshold", type=float, default=0.3, help="lowest score of a mined false face (default 0.3)")
    p.add_argument("--backgrounds", type=int, default=1, help="face-free squares cut per photo (default 1)")
    p.add_argument("--textures", type=int, default=200, help="drawn texture images (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed of the cuts and textures (default 0)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    p.set_defaults(run=run_mine)


def run_train(args: argparse.Namespace) -> int:
    require("torch", "torch", "hrface train-detector")
    from ..training.detection.config import load_detection_config
    from ..training.detection.sources import build_detection_samples
    from ..training.detection.trainer import train_detector

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


def run_pack(args: argparse.Namespace) -> int:
    require("torch", "torch", "hrface pack-detection")  # its config module names the training defaults
    from ..data.detection.pack import write_detection_pack
    from ..training.detection.config import load_detection_config
    from ..training.detection.sources import build_detection_samples

    if not 1 <= args.quality <= 100:
        raise ConfigError(f"--quality must be in [1, 100], got {args.quality}")
    config = load_detection_config(args.config, args.set)
    train_images, val_images = build_detection_samples(config)
    written = write_detection_pack(args.output, train_images, val_images, args.max_side, args.quality, args.format)
    if config.model.backbone_weights:  # the ImageNet backbone travels with the pack (a few MB)
        shutil.copyfile(config.model.backbone_weights, args.output / Path(config.model.backbone_weights).name)
    print(
        f"wrote {written['photos']} images ({written['bytes'] / 2**20:.1f} MiB of images), {written['faces']} faces: "
        f"{args.output}/train.txt ({len(train_images)} images), {args.output}/val.txt ({len(val_images)} images)"
    )
    return 0


def run_mine(args: argparse.Namespace) -> int:
    require("torch", "torch", "hrface mine-negatives")  # its config module names the training defaults
    from collections import Counter

    from ..runtime.detector import DEFAULT_DETECTOR, Detector
    from ..training.detection.config import load_detection_config
    from ..training.detection.negatives import write_negatives
    from ..training.detection.sources import annotated_samples
    from ..training.detection.teacher import teacher_detections

    config = load_detection_config(args.config, args.set)
    reference = args.reference or config.data.teacher
    if not reference:
        raise ConfigError("no reference detector: pass --reference or set data.teacher in the config")
    train, _ = annotated_samples(config.data)
    cache = config.data.teacher_cache if reference == config.data.teacher else None
    known = {path: rows[:, :4] for path, rows in teacher_detections(train, reference, cache).items()}
    detector = Detector(args.detector or DEFAULT_DETECTOR, threshold=args.threshold)

    def detect(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        found = detector.detect(image)
        return found.boxes, found.scores

    options = (args.threshold, args.backgrounds, args.textures, args.seed)
    cuts = write_negatives(args.output, train, known, detect, *options)
    counts = Counter(cut.kind for cut in cuts)
    print(f"wrote {len(cuts)} face-free images to {args.output} ({dict(counts)}; list: negatives.json)")
    return 0
