"""Data and run tools: ``hrface convert-pts`` (300W-style ``.pts`` folders → a RetinaFace training
``label.txt``) and ``hrface plot-training`` (a run's ``metrics.csv`` → PNG)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..data.detection import detection_samples_from_landmarks, write_retinaface_labels
from ..data.landmarks import read_300w_folder


def add_parsers(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "convert-pts",
        help="write 300W-style .pts folders as a RetinaFace label.txt (boxes and 5 keypoints per face)",
        description="Group the faces of each photo, derive the WIDER FACE-style box and the 5 RetinaFace "
        "keypoints from each face's landmarks, and write them in the RetinaFace training label format.",
    )
    p.add_argument("pts_dirs", nargs="+", type=Path, metavar="PTS_DIR", help="folder of images and .pts files")
    p.add_argument("output", type=Path, metavar="OUT_LABEL_TXT", help="label file to write (atomically)")
    p.add_argument(
        "--image-root",
        type=Path,
        help="folder the image paths are written relative to (default: the label file's folder); "
        "it must contain every image",
    )
    p.add_argument("--one-based", action="store_true", help="the .pts files count pixels from 1 (original 300W)")
    p.set_defaults(run=run_convert_pts)
    add_plot_training_parser(commands)


def run_convert_pts(args: argparse.Namespace) -> int:
    landmarks = [face for folder in args.pts_dirs for face in read_300w_folder(folder, one_based=args.one_based)]
    samples = detection_samples_from_landmarks(landmarks)
    write_retinaface_labels(args.output, samples, args.image_root)
    print(f"wrote {len(landmarks)} faces of {len(samples)} images to {args.output}")
    return 0


def add_plot_training_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "plot-training",
        help="draw a training run's metrics.csv (validation NME or AP by epoch) as a PNG",
        description="Read RUN_DIR/metrics.csv, written after every epoch by train-landmarks and train-detector, "
        "and draw the chosen columns against the epoch. Works while the run is still going.",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a training run's output folder")
    p.add_argument("--output", "-o", type=Path, help="PNG to write (default: RUN_DIR/training.png)")
    p.add_argument(
        "--column",
        action="append",
        dest="columns",
        metavar="NAME",
        help="metrics.csv column to draw (repeatable, same units; default: val_nme, or val_ap for detectors)",
    )
    p.set_defaults(run=run_plot_training)


def run_plot_training(args: argparse.Namespace) -> int:
    from ..evaluation.training_plot import plot_training

    path = plot_training(args.run_dir, args.output, args.columns)
    print(f"wrote {path}")
    return 0
