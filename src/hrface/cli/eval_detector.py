"""``hrface eval-detector``: detectors side by side on annotated photos (box AP, recall, keypoint error, recall
by face size), on held-out 300W photos, on a small-face test made from them, or on WIDER FACE boxes; or their
false faces on face-free images (``--face-free``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..data.detection import DetectionSample, read_wider_bbx_gt
from ..data.detection.convert import detection_samples_from_landmarks, outer_corner_distances
from ..data.landmarks import load_split, read_300w_folder
from ..errors import ConfigError
from ..evaluation.detection import (
    DetectionMetrics,
    detection_table,
    evaluate_detections,
    size_table,
    threshold_table,
)
from ..evaluation.false_faces import (
    FALSE_FACE_SCORES,
    MATCH_IOU,
    REFERENCE_MIN_SCORE,
    face_free_table,
    false_face_table,
    false_faces,
)
from ..evaluation.small_faces import CANVAS, save_small_face_test, small_face_test
from ..io.files import atomic_write_text, walk_images
from ..io.image import read_image
from ..runtime.detector import DEFAULT_MAX_SIZE, Detections, Detector
from .detect import max_size_option
from .widerface import WIDER_MIN_SCORE

BY_THRESHOLD = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # scores of --by-threshold


def add_parser(commands: argparse._SubParsersAction) -> None:
    d = commands.add_parser(
        "eval-detector",
        help="box AP, recall (also by face size) and keypoint error of detectors on annotated photos",
        description="Run each detector on annotated photos and compare them side by side: box AP at IoU 0.5, "
        "recall and precision at --threshold, the 5 keypoints' error (NME and the fraction within 0.1) "
        "normalised by the inter-ocular distance, and recall and keypoint NME by face size (< 24, 24-48, "
        "48-96, >= 96 px). Ground truth: 300W .pts folders (boxes and keypoints derived from the landmarks), "
        "optionally turned into a small-face test (--small-faces), or a WIDER FACE box file (--wider-gt).",
    )
    truth = d.add_mutually_exclusive_group(required=True)
    truth.add_argument(
        "--pts-dir",
        type=Path,
        nargs="+",
        action="extend",
        metavar="DIR",
        help="300W-style folders of images and .pts files",
    )
    truth.add_argument(
        "--wider-gt",
        type=Path,
        metavar="FILE",
        help="a wider_face_*_bbx_gt.txt file (boxes only; images relative to its folder)",
    )
    truth.add_argument(
        "--face-free",
        type=Path,
        metavar="DIR",
        help="a folder of images without any human face (e.g. scripts/face_free_set.py's): count the false "
        "faces of each detector, by score from --threshold to 0.9",
    )
    d.add_argument("--model", action="append", default=[], help="detector name or checkpoint (repeatable)")
    d.add_argument("--yunet", type=Path, metavar="ONNX", help="also evaluate YuNet (peer) at the same --max-size")
    d.add_argument("--scrfd", type=Path, metavar="ONNX", help="also evaluate SCRFD-0.5GF (peer; fixed 640x640 input)")
    d.add_argument("--split-file", type=Path, help="photo split JSON (e.g. runs/hrnet_w18_300w_split.json)")
    d.add_argument("--subset", choices=("val", "train"), default="val", help="part of the split (default val)")
    d.add_argument(
        "--small-faces",
        type=int,
        metavar="N",
        help=f"evaluate on N mosaics ({CANVAS[0]}x{CANVAS[1]} px) of the selected photos, scaled down so "
        "that their faces are 12-200 px (reproducible: see hrface.evaluation.small_faces)",
    )
    d.add_argument("--seed", type=int, default=0, help="seed of the small-face test (default 0)")
    d.add_argument(
        "--backgrounds",
        type=Path,
        metavar="DIR",
        help="small-face test on face-free backgrounds: each mosaic starts from an image of DIR (drawn with the "
        "seed) instead of a flat colour",
    )
    d.add_argument(
        "--save-test", type=Path, metavar="DIR", help="also write the small-face test images and their label.txt here"
    )
    d.add_argument("--threshold", type=float, default=0.5, help="score threshold of recall and keypoints")
    d.add_argument(
        "--by-threshold",
        action="store_true",
        help="also print recall and precision at the scores 0.3 to 0.9 (from the same detections)",
    )
    d.add_argument(
        "--keypoint-norm",
        choices=("eye-centres", "outer-corners"),
        default="eye-centres",
        help="distance that normalises keypoint errors: between the ground-truth eye centres (default), or "
        "between the outer eye corners of the landmarks (the 300W literature's; --pts-dir photos only)",
    )
    d.add_argument(
        "--max-size",
        type=max_size_option,
        nargs="+",
        default=["auto"],
        metavar="PX|auto|none",
        help="longer side above which photos are downscaled for detection; several values give one row "
        "per detector and size (default auto: each detector's own)",
    )
    d.add_argument(
        "--single-pass",
        action="store_true",
        help="no coarse large-face pass (hrface.runtime.large_faces), as the reference pipeline",
    )
    d.add_argument(
        "--reference",
        metavar="MODEL",
        help="also count false faces: detections (at --threshold) that match neither an annotated face nor any "
        "face this detector finds at score >= 0.3 (IoU 0.3), by score from --threshold to 0.9 (for photos "
        "that leave faces unannotated)",
    )
    d.add_argument(
        "--landmarker",
        metavar="MODEL",
        help="also score, for each --model row, the 5 points that this landmark model's dense landmarks give "
        "(Face.five_points: what the pipeline gives with landmarks) in place of the detector's keypoints",
    )
    d.add_argument("--threads", type=int, help="intra-op threads of each detector (default: the backend's)")
    d.add_argument("--json", type=Path, metavar="OUT", help="write the metrics per row as JSON here")
    d.add_argument("--device", default="cpu")
    d.set_defaults(run=run_eval_detector)


def run_eval_detector(args: argparse.Namespace) -> int:
    _check(args)
    if args.face_free:
        return _run_face_free(args)
    photos, description, norms = _ground_truth(args)
    detectors = _detectors(args)
    found: dict[str, list[Any]] = {name: [] for name in detectors}
    truths = []
    reference, twins, scores = None, {}, ()
    if args.reference:  # false faces are counted on what a user gets at --threshold (the coarse pass depends on it)
        options = {"threshold": REFERENCE_MIN_SCORE, "device": args.device, "threads": args.threads}
        reference = Detector(args.reference, **options)
        twins = _detectors(args, threshold=args.threshold)
        scores = sorted({args.threshold, *(t for t in FALSE_FACE_SCORES if t >= args.threshold)})
    false = {name: np.zeros(len(scores), int) for name in twins}
    count = len(photos) if args.small_faces is None else args.small_faces
    for image, truth in tqdm(_images(photos, args), total=count, unit="img", disable=not sys.stderr.isatty()):
        truths.append(truth)
        for name, detector in detectors.items():
            found[name].append(detector.detect(image))
        if reference is not None:
            known = [truth.boxes, reference.detect(image).boxes]
            for name, twin in twins.items():
                at_threshold = twin.detect(image)
                false[name] += false_faces(at_threshold.boxes, at_threshold.scores, known, scores)
    results: dict[str, DetectionMetrics] = {
        name: evaluate_detections(found[name], truths, score_threshold=args.threshold, keypoint_norms=norms)
        for name in detectors
    }
    print(detection_table(results))
    print()
    print(size_table(results))
    print(f"ground truth: {sum(t.num_faces for t in truths)} faces in {len(truths)} images ({description})")
    rows = {name: m.to_dict() for name, m in results.items()}
    if args.by_threshold:
        by_t = {
            name: {t: evaluate_detections(found[name], truths, score_threshold=t) for t in BY_THRESHOLD}
            for name in detectors
        }
        print("\nrecall / precision by score (precision counts every unannotated face as false):\n")
        print(threshold_table(by_t))
        for name, metrics in by_t.items():
            rows[name]["by_threshold"] = {
                str(t): {"recall": m.recall, "precision": m.precision} for t, m in metrics.items()
            }
    if reference is not None:
        print(f"\nfalse faces (detectors run at --threshold {args.threshold}): detections matching neither an")
        print(f"annotated face nor a face of {args.reference} (score >= {REFERENCE_MIN_SCORE}), IoU {MATCH_IOU}\n")
        print(false_face_table({name: counts.tolist() for name, counts in false.items()}, scores))
        for name, counts in false.items():
            rows[name]["false_faces"] = {
                "reference": str(args.reference),
                **dict(zip(map(str, scores), counts.tolist(), strict=True)),
            }
    if args.json:
        atomic_write_text(args.json, json.dumps(rows, indent=2) + "\n")
    return 0


def _run_face_free(args: argparse.Namespace) -> int:
    """False faces on face-free images: every detection at --threshold or above is one."""
    paths = _folder_images(args.face_free, "--face-free")
    detectors = _detectors(args, threshold=args.threshold)
    scores = sorted({args.threshold, *(t for t in FALSE_FACE_SCORES if t >= args.threshold)})
    counts = {name: np.zeros(len(scores), int) for name in detectors}
    images = {name: np.zeros(len(scores), int) for name in detectors}
    worst: dict[str, list[tuple[float, str]]] = {name: [] for name in detectors}
    for path in tqdm(paths, unit="img", disable=not sys.stderr.isatty()):
        image = read_image(path)
        for name, detector in detectors.items():
            found = np.asarray(detector.detect(image).scores, np.float64)
            above = np.array([(found >= t).sum() for t in scores])
            counts[name] += above
            images[name] += above > 0
            worst[name] += [(float(s), path.name) for s in found]
    print(f"false faces on {len(paths)} face-free images of {args.face_free} (in all, and images with one):\n")
    print(
        face_free_table(
            {n: c.tolist() for n, c in counts.items()}, {n: i.tolist() for n, i in images.items()}, len(paths), scores
        )
    )
    rows = {}
    for name in detectors:
        top = sorted(worst[name], reverse=True)[:5]
        print(f"{name}: highest scores " + (", ".join(f"{s:.2f} {p}" for s, p in top) or "none"))
        rows[name] = {
            "images": len(paths),
            "false_faces": dict(zip(map(str, scores), counts[name].tolist(), strict=True)),
            "images_with_false_faces": dict(zip(map(str, scores), images[name].tolist(), strict=True)),
        }
    if args.json:
        atomic_write_text(args.json, json.dumps(rows, indent=2) + "\n")
    return 0


def _check(args: argparse.Namespace) -> None:
    if not 0.0 <= args.threshold <= 1.0:
        raise ConfigError(f"--threshold must be in [0, 1], got {args.threshold}")
    names = [str(m) for m in args.model]
    if len(set(names)) < len(names):
        raise ConfigError(f"--model {next(n for n in names if names.count(n) > 1)} is given twice")
    if not names and not (args.yunet or args.scrfd):
        raise ConfigError("give at least one --model (or a peer: --yunet, --scrfd)")
    if args.face_free and (args.small_faces is not None or args.reference or args.landmarker or args.split_file):
        raise ConfigError("--face-free takes no --small-faces, --reference, --landmarker or --split-file")
    if args.backgrounds and args.small_faces is None:
        raise ConfigError("--backgrounds lays the small-face test on face-free images: give --small-faces N too")
    if args.small_faces is not None and (args.wider_gt or args.small_faces < 1):
        raise ConfigError("--small-faces N needs N >= 1 and --pts-dir photos")
    if args.keypoint_norm == "outer-corners" and (args.wider_gt or args.small_faces is not None):
        raise ConfigError("--keypoint-norm outer-corners needs the landmarks: use --pts-dir without --small-faces")
    if args.save_test and args.small_faces is None:
        raise ConfigError("--save-test writes the small-face test: give --small-faces N too")


def _ground_truth(args: argparse.Namespace) -> tuple[list[DetectionSample], str, list[np.ndarray] | None]:
    """The annotated photos, a one-line description of the test and the keypoint norms (None: eye centres)."""
    if args.wider_gt:
        photos = read_wider_bbx_gt(args.wider_gt, check_images=True)
        return photos, f"WIDER FACE boxes of {args.wider_gt}, original size", None
    samples = [sample for folder in args.pts_dir for sample in read_300w_folder(folder)]
    if args.split_file:
        train, val = load_split(args.split_file).apply(samples)
        samples = val if args.subset == "val" else train
    if not samples:
        raise ConfigError(f"no annotated faces in the {args.subset} part of {args.split_file}")
    photos = detection_samples_from_landmarks(samples)
    origin = f"the {args.subset} photos of {args.split_file}" if args.split_file else "the photos"
    if args.small_faces is None:
        text = f"{origin}; boxes mapped from the landmarks, keypoints = eye centres, nose tip, mouth corners"
        if args.keypoint_norm == "outer-corners":
            return photos, text + "; keypoint errors / outer-eye-corner distance", outer_corner_distances(samples)
        return photos, text, None
    if args.save_test:
        labels = save_small_face_test(args.save_test, photos, args.small_faces, args.seed, _backgrounds(args))
        print(f"small-face test written to {labels}", file=sys.stderr)
    on = f" on the face-free images of {args.backgrounds}" if args.backgrounds else ""
    text = f"small-face test: {args.small_faces} mosaics (seed {args.seed}){on} of {len(photos)} of {origin}"
    return photos, text, None


def _backgrounds(args: argparse.Namespace) -> list[Path] | None:
    if not args.backgrounds:
        return None
    return _folder_images(args.backgrounds, "--backgrounds")


def _folder_images(folder: Path, option: str) -> list[Path]:
    """The image files under ``folder`` (recursive, sorted); :class:`ConfigError` naming ``option`` when none."""
    paths = [path for path in walk_images(folder) if isinstance(path, Path)]
    if not paths:
        raise ConfigError(f"{option} {folder}: no image found there")
    return paths


def _images(photos: list[DetectionSample], args: argparse.Namespace) -> Iterator[tuple[np.ndarray, Any]]:
    if args.small_faces is not None:
        yield from small_face_test(photos, args.small_faces, args.seed, _backgrounds(args))
    else:
        for photo in photos:  # each photo is read once, for all detectors
            yield read_image(photo.image), photo


def _detectors(args: argparse.Namespace, threshold: float | None = None) -> dict[str, Any]:
    """Row name → detector (hrface detectors, then peers), one per detector and ``--max-size`` value, at
    ``threshold`` (default: low enough for AP)."""
    from ..benchmark.peers import scrfd_detector, yunet_detector

    if args.yunet and args.threads:
        import cv2

        cv2.setNumThreads(args.threads)

    # AP needs the low-score detections too.
    low = min(WIDER_MIN_SCORE, args.threshold) if threshold is None else threshold
    sizes = list(dict.fromkeys(args.max_size))
    several = len(sizes) > 1
    landmarker = _landmarker(args) if args.landmarker and threshold is None else None
    out: dict[str, Any] = {}
    for size in sizes:
        for model in args.model:
            options = {"threshold": low, "max_size": size, "device": args.device, "threads": args.threads}
            detector = Detector(model, **options, large_faces=not args.single_pass)
            out[_row(str(model), detector.max_size, several)] = detector
            if landmarker is not None:
                name = _row(f"{model} + {args.landmarker}", detector.max_size, several)
                out[name] = LandmarkKeypoints(detector, landmarker, args.threshold)
        if args.yunet:  # 'auto': hrface's size for detectors that record none
            cap = DEFAULT_MAX_SIZE if size == "auto" else size
            out[_row("YuNet", cap, several)] = yunet_detector(args.yunet, cap, low)
    if args.scrfd:
        out["SCRFD-0.5GF (640x640)"] = scrfd_detector(args.scrfd, low, args.threads)
    return out


def _row(name: str, max_size: int | None, with_size: bool) -> str:
    return f"{name} @{max_size or 'none'}" if with_size else name


def _landmarker(args: argparse.Namespace) -> Any:
    from ..runtime.landmarker import Landmarker

    landmarker = Landmarker(args.landmarker, device=args.device, threads=args.threads)
    if landmarker.layout is None:
        raise ConfigError(f"--landmarker {args.landmarker}: its {landmarker.num_landmarks} points have no known layout")
    return landmarker


class LandmarkKeypoints:
    """A detector whose keypoints, for the detections scoring at least ``min_score``, are the 5 points of a
    landmark model's dense landmarks (as :attr:`hrface.runtime.faces.Face.five_points` gives them)."""

    def __init__(self, detector: Detector, landmarker: Any, min_score: float) -> None:
        self.detector, self.landmarker, self.min_score = detector, landmarker, min_score

    def detect(self, image: np.ndarray) -> Detections:
        found = self.detector.detect(image)
        sure = np.flatnonzero(found.scores >= self.min_score)
        keypoints = np.array(found.keypoints, dtype=np.float64, copy=True)
        if len(sure):
            points, _ = self.landmarker.predict(image, found.boxes[sure], found.keypoints[sure])
            keypoints[sure] = self.landmarker.layout.five_points(points)
        return Detections(found.boxes, found.scores, keypoints)
