"""``hrface train-landmarks`` and ``hrface eval-landmarks``."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..benchmark.landmark_peers import PEERS, PeerUnavailable, load_peer
from ..data.landmarks.detector_boxes import BoxFromPoints
from ..errors import ConfigError
from ..evaluation import (
    evaluate_predictions,
    found_by_all,
    metrics_table,
    normalised_errors,
    plot_ced,
    summarize,
)
from ..evaluation.landmark_bias import ground_truth_yaw, nme_by_yaw, signed_error_table, signed_errors, yaw_table
from ..evaluation.landmark_runs import (
    detector_faces,
    ground_truth_boxes,
    mirrored_samples,
    peer_box_sets,
    predict_landmarks,
    rotated_samples,
)
from ..extras import require
from ..io.files import atomic_write_text
from ..io.image import image_size
from ..landmarks.confidence import (
    POINT_TOLERANCE,
    fit_point_calibration,
    point_scores,
    points_within,
    reliability,
    reliability_table,
)
from ..landmarks.layouts import get_layout
from ..runtime.detector import Detector
from ..runtime.landmarker import Landmarker
from ..training.landmarks.config import load_config
from ..training.landmarks.pack import write_pack
from ..training.landmarks.sources import build_samples, oversample
from .training_args import add_train_parser, apply_overrides


def add_parsers(commands: argparse._SubParsersAction) -> None:
    add_train_parser(
        commands,
        "train-landmarks",
        "train the HRNet landmark model from a YAML config",
        "configs/hrnet_w18_300w.yaml",
        run_train,
    )

    p = commands.add_parser(
        "pack-faces",
        help="cut a landmark config's faces out of their photos once (a small, self-contained training set)",
        description="Read the config's sources, split and detector boxes, and write one JPEG per face (the "
        "crop region with room for augmentation) and faces.json. Set 'pack: OUT_DIR' in a config to train "
        "from the pack, e.g. on a machine without the photos.",
    )
    p.add_argument("config", type=Path, help="landmark training config (YAML)")
    p.add_argument("output", type=Path, metavar="OUT_DIR", help="folder to write the pack into")
    p.add_argument("--size", type=int, default=320, help="side of each face image in pixels (default 320)")
    p.add_argument("--context", type=float, default=1.8, help="face image side / crop side (default 1.8)")
    p.set_defaults(run=run_pack)

    e = commands.add_parser("eval-landmarks", help="evaluate a landmark model (NME, FR, AUC) on a config's data")
    e.add_argument("config", type=Path, help="config whose validation faces are evaluated")
    e.add_argument("--model", required=True, help="landmark model name or checkpoint path")
    e.add_argument("--split", choices=("val", "train"), default="val")
    e.add_argument(
        "--boxes",
        choices=("gt", "detector", "both"),
        default="both",
        help="crop from boxes derived from the annotation, from the detector's boxes (missed faces are "
        "failures), or both (default)",
    )
    e.add_argument("--detector", help="detector for --boxes detector (default: the config's data.detector)")
    e.add_argument("--plot", type=Path, help="write a cumulative error distribution PNG here")
    e.add_argument("--output", "-o", type=Path, help="write the results as JSON (metrics; each face's NME in per_face)")
    e.add_argument("--device", default="cpu")
    e.add_argument("--backend", default="auto", help="auto, onnxruntime, torch or openvino (for both models)")
    e.add_argument("--flip", action="store_true", help="test-time flip averaging (Landmarker(flip=True))")
    e.add_argument(
        "--align",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="level each detector-box crop by the detector's eye keypoints (Landmarker(align=...); default on)",
    )
    e.add_argument(
        "--mirror",
        action="store_true",
        help="mirror the photos (and points, with the layout's flip pairs) left to right before evaluating "
        "(after any --rotate): a mirror-symmetric pipeline shows its signed x error with the opposite sign",
    )
    e.add_argument(
        "--fit-point-scores",
        action="store_true",
        help="fit the model's per-point score calibration on these faces (use --split train) and print it as "
        "'point_calibration=A,B' for 'hrface pack-weights --metadata'",
    )
    e.add_argument(
        "--rotate",
        type=float,
        action="append",
        metavar="DEG",
        help="rotate the photos (and points) in-plane by DEG degrees before evaluating; repeat for several "
        "angles, whose faces are pooled (e.g. --rotate -30 --rotate 30)",
    )
    e.add_argument(
        "--peer",
        action="append",
        default=[],
        choices=PEERS,
        help="also evaluate a peer landmark model on the same faces (dlib: needs dlib-bin and "
        "face-recognition-models installed; skipped with a message when absent)",
    )
    e.set_defaults(run=run_eval)


def run_train(args: argparse.Namespace) -> int:
    require("torch", "torch", "hrface train-landmarks")
    from ..training.landmarks.trainer import train

    config = load_config(args.config, args.set)
    apply_overrides(config, args)
    train_samples, val_samples = build_samples(config)
    per_epoch = len(oversample(train_samples, config.data))  # train() oversamples as data.repeat / yaw_repeat say
    repeated = f" ({per_epoch} per epoch with oversampling)" if per_epoch != len(train_samples) else ""
    print(
        f"training on {len(train_samples)} faces{repeated}, validating on {len(val_samples)}; "
        f"output: {config.output_dir}"
    )
    result = train(
        config, train_samples, val_samples, resume=args.resume, max_steps=args.max_steps, progress=not args.quiet
    )
    best, best_epoch = result.get("best_nme"), result.get("best_epoch", -1)
    best_text = "not evaluated yet" if best is None or best_epoch < 0 else f"{100 * best:.2f} % (epoch {best_epoch})"
    print(f"epoch {result['epoch']}, step {result['global_step']}; best validation NME (inter-ocular) {best_text}")
    return 0


def run_pack(args: argparse.Namespace) -> int:
    if args.size < 32 or not 1.0 <= args.context <= 4.0:
        raise ConfigError("--size must be at least 32 and --context between 1 and 4")
    config = load_config(args.config)
    config.pack = None  # pack the config's own sources
    train_samples, val_samples = build_samples(config)
    index = write_pack(args.output, train_samples, val_samples, args.size, args.context)
    total = sum(f.stat().st_size for f in args.output.iterdir() if f.is_file())
    print(
        f"packed {len(train_samples)} training and {len(val_samples)} validation faces into {index.parent} "
        f"({total / 1e6:.1f} MB)"
    )
    return 0


def run_eval(args: argparse.Namespace) -> int:
    if args.plot:
        require("matplotlib", "plot", "--plot")  # before the evaluation, not after it
    config = load_config(args.config)
    detector_name = args.detector or config.data.detector
    if args.boxes != "gt" and not detector_name:
        raise ConfigError("--boxes detector needs a detector: pass --detector or set data.detector in the config")
    config.data.detector = None  # evaluation takes the boxes itself (below)
    train_samples, val_samples = build_samples(config)
    samples = val_samples if args.split == "val" else train_samples
    with tempfile.TemporaryDirectory(prefix="hrface-rotated-") as rotations:  # rotated copies, if any
        if args.rotate:
            samples = [
                face
                for k, angle in enumerate(args.rotate)
                for face in rotated_samples(samples, angle, Path(rotations) / str(k))
            ]
            print(f"rotated in-plane by {', '.join(f'{a:g}' for a in args.rotate)} degrees: {len(samples)} faces")
        if args.mirror:
            samples = mirrored_samples(samples, Path(rotations) / "mirrored")
            print(f"mirrored left to right: {len(samples)} faces")
        evaluate_faces(args, samples, detector_name, config.data.detector_threshold)
    return 0


def evaluate_faces(args: argparse.Namespace, samples: list, detector_name: str | None, threshold: float) -> None:
    """Run the landmark model (and any peers) on ``samples`` from each kind of box; print, plot, write."""
    landmarker = Landmarker(args.model, device=args.device, backend=args.backend, flip=args.flip, align=args.align)
    layout = get_layout(landmarker.num_landmarks)
    gt = np.stack([s.points for s in samples])
    subsets = [s.subset or "all" for s in samples]
    yaws = ground_truth_yaw(gt, [image_size(s.image) for s in samples], layout)

    box_sets: dict[str, list[np.ndarray | None]] = {}
    mapping, det_keypoints = None, None
    if args.boxes != "gt":
        detector = Detector(detector_name, threshold=threshold, device=args.device, backend=args.backend)
        det, det_keypoints = detector_faces(samples, detector)
        box_sets["detector"] = det
        mapping = BoxFromPoints.fit_matched(samples, det)
    if args.boxes != "detector":
        # Ground-truth boxes in the detector's convention (the boxes the model was trained on).
        box_sets["gt"] = ground_truth_boxes(samples, mapping)

    results: dict[str, object] = {"faces": len(samples), "model": str(args.model), "split": args.split}
    results["rotate"] = args.rotate or []
    results["mirror"] = bool(args.mirror)
    results["images"] = [str(s.image) for s in samples]
    curves: dict[str, np.ndarray] = {}

    def report(model: object, label: str, boxes: list[np.ndarray | None], keypoints=None) -> dict[str, object]:
        fit = args.fit_point_scores and isinstance(model, Landmarker)
        pred, scores = predict_landmarks(model, samples, boxes, keypoints, peaks=fit)
        errors = normalised_errors(pred, gt, "inter-ocular", layout)
        curves[label] = errors
        groups = {sub: errors[[s == sub for s in subsets]] for sub in dict.fromkeys(subsets)}
        print(f"\n{label} — NME normalised by inter-ocular distance ({len(samples)} faces)\n")
        print(metrics_table(groups))
        result = evaluate_predictions(pred, gt, layout, subsets)
        result["signed_error"] = signed_errors(pred, gt, layout)
        result["by_yaw"] = nme_by_yaw(errors, yaws)
        print(f"{label} — mean signed error (% of the inter-ocular distance; x right, y down)\n")
        print(signed_error_table(result["signed_error"]))
        print(f"{label} — NME by head yaw (from the annotated points)\n")
        print(yaw_table(result["by_yaw"]))
        if isinstance(model, Landmarker):
            result["point_scores"] = point_score_report(label, pred, scores, gt, layout, fit)
        # Per-face inter-ocular NME (None for a missed face), in the order of "images", to find the failures.
        result["per_face"] = [None if np.isinf(e) else round(float(e), 6) for e in errors]
        return result

    for name, boxes in box_sets.items():
        keypoints = det_keypoints if name == "detector" else None  # gt boxes have no detector keypoints
        results[name] = report(landmarker, f"{name} boxes", boxes, keypoints)
    for peer_name in dict.fromkeys(args.peer):
        try:
            peer = load_peer(peer_name)
        except PeerUnavailable as exc:
            print(f"hrface: skipped peer {peer_name}: {exc}", file=sys.stderr)
            continue
        peer_sets = peer_box_sets(peer, samples, box_sets.get("detector"))
        results[f"peer:{peer_name}"] = {
            name: report(peer, f"{peer_name}, {name} boxes", boxes) for name, boxes in peer_sets.items()
        }
        if "detector" in box_sets:  # each pipeline end to end, on the faces both detectors found
            ours, theirs = curves["detector boxes"], curves[f"{peer_name}, detector boxes"]
            both = found_by_all(ours, theirs)
            print(f"\nend to end, on the {int(both.sum())} faces that both detectors found\n")
            print(metrics_table({"hrface": ours[both], peer_name: theirs[both]}, pooled=False))
            results[f"peer:{peer_name}"]["found_by_both"] = {
                "faces": int(both.sum()),
                "hrface": summarize(ours[both]).to_dict(),
                peer_name: summarize(theirs[both]).to_dict(),
            }
    results["yaw"] = [None if np.isnan(y) else round(float(y), 2) for y in yaws]
    if args.plot:
        plot_ced(curves, args.plot, threshold=0.10, title=f"CED, inter-ocular NME ({args.split})")
    if args.output:
        atomic_write_text(args.output, json.dumps(results, indent=2))


def point_score_report(
    label: str, pred: np.ndarray, scores: np.ndarray, gt: np.ndarray, layout: Any, fit: bool
) -> dict[str, object]:
    """Print (and return) how the per-point scores relate to the points' accuracy; with ``fit``, ``scores``
    are raw heatmap peaks, a calibration is fitted to them and the report shows the calibrated scores."""
    found = np.isfinite(pred).all(axis=(1, 2))
    within = points_within(pred[found], gt[found], layout.interocular(gt[found]))
    result: dict[str, object] = {"tolerance": POINT_TOLERANCE}
    if fit:
        a, b = fit_point_calibration(scores[found], within)
        result["point_calibration"] = [a, b]
        print(f"{label} — fitted point_calibration={a:.4f},{b:.4f} (score = sigmoid(a * peak + b))\n")
        scores = point_scores(scores, (a, b))
    result["reliability"] = reliability(scores[found], within)
    print(f"{label} — per-point scores against accuracy\n")
    print(reliability_table(result["reliability"]))
    return result
