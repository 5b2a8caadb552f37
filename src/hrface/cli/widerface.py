"""The WIDER FACE protocol commands: ``hrface eval-widerface`` and ``hrface predict-widerface``
(``hrface eval-detector``, on annotated photos, is :mod:`.eval_detector`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import ConfigError
from ..evaluation.plots import plot_pr_curves
from ..evaluation.widerface import evaluate_widerface_folder, format_prediction_file
from ..extras import require
from ..io.files import atomic_write_text
from ..runtime import FaceAnalyzer
from ..runtime.detector import DEFAULT_DETECTOR, Detector
from .detect import add_max_size_argument, progress_bar, record_for
from .inputs import collect_images

WIDER_MIN_SCORE = 0.02  # the reference's WIDER FACE test threshold: low, so that the PR curve reaches far


def add_parsers(commands: argparse._SubParsersAction) -> None:
    e = commands.add_parser(
        "eval-widerface",
        help="WIDER FACE easy/medium/hard AP of prediction files (official protocol)",
        description="Evaluate prediction files PRED_DIR/EVENT/IMAGE.txt against the official WIDER FACE "
        "validation ground truth, by the protocol of the official evaluation tool (IoU 0.5, scores "
        "normalised over the data set, 1000 thresholds, VOC AP). Images without a file count as "
        "no detections and are reported.",
    )
    e.add_argument("pred_dir", type=Path, metavar="PRED_DIR", help="folder of EVENT/IMAGE.txt prediction files")
    e.add_argument("--gt-dir", type=Path, required=True, help="folder with wider_face_val.mat and wider_*_val.mat")
    e.add_argument("--plot", type=Path, metavar="PNG", help="write the precision-recall curves here")
    e.add_argument("--json", type=Path, metavar="OUT", help="write AP, counts and curves as JSON here")
    e.set_defaults(run=run_eval_widerface)

    p = commands.add_parser(
        "predict-widerface",
        help="run the detector over WIDER FACE images, writing official prediction files",
        description="Detect faces in IMAGES_DIR/EVENT/IMAGE.jpg (at the original size unless --max-size) and write "
        "OUT_DIR/EVENT/IMAGE.txt (image name, box count, 'x y w h score' lines). An image that cannot be "
        "processed is reported, listed in OUT_DIR/errors.jsonl and gets no file; the run goes on. Exit "
        "status: 0 all images processed, 1 some images failed, 2 usage or model error.",
    )
    p.add_argument("images_dir", type=Path, metavar="IMAGES_DIR", help="WIDER_val/images (EVENT folders)")
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="folder for the prediction files")
    p.add_argument("--model", default=DEFAULT_DETECTOR, help="detector name or checkpoint path")
    p.add_argument("--threshold", type=float, default=WIDER_MIN_SCORE, help="minimum score (default 0.02)")
    p.add_argument("--nms", type=float, default=0.4, help="NMS IoU threshold (default 0.4)")
    add_max_size_argument(p, "none")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no summary")
    p.set_defaults(run=run_predict_widerface)


def run_eval_widerface(args: argparse.Namespace) -> int:
    if args.plot:
        require("matplotlib", "plot", "--plot")  # before the evaluation, not after it
    result = evaluate_widerface_folder(args.pred_dir, args.gt_dir)
    print(result.table())
    if result.missing:
        print(
            f"hrface: warning: {len(result.missing)} of {result.images} images have no prediction file "
            f"(counted as no detections), e.g. {result.missing[0]}",
            file=sys.stderr,
        )
    if args.plot:
        plot_pr_curves(result.pr_curves(), args.plot, "WIDER FACE val", ap=result.ap)
    if args.json:
        atomic_write_text(args.json, json.dumps(result.to_dict()) + "\n")
    return 0


def run_predict_widerface(args: argparse.Namespace) -> int:
    if not args.images_dir.is_dir():
        raise ConfigError(f"{args.images_dir}: not a folder (expected IMAGES_DIR/EVENT/IMAGE.jpg)")
    # By default the original size (max_size None), as the published WIDER FACE figures are measured.
    # Single pass (no coarse large-face pass), as the reference test_widerface.py.
    options = {"threshold": args.threshold, "nms_iou": args.nms, "max_size": args.max_size, "device": args.device}
    options["large_faces"] = False
    detector = Detector(args.model, **options)
    analyzer = FaceAnalyzer(detector, landmarker=None)
    sources = collect_images([str(args.images_dir)])  # no image at all: a usage error
    failures, faces = [], 0
    for item in progress_bar(sources, not args.quiet and len(sources) > 1 and sys.stderr.isatty()):
        record = record_for(analyzer, item)
        if "error" in record:
            failures.append(record)
            print(f"hrface: {record['image']}: {record['error']}", file=sys.stderr)
            continue
        boxes = [face["box"] for face in record["faces"]]
        scores = [face["score"] for face in record["faces"]]
        text = format_prediction_file(item.path.stem, boxes, scores)
        atomic_write_text(args.out_dir / item.path.relative_to(item.root).with_suffix(".txt"), text)
        faces += len(boxes)
    errors_file = args.out_dir / "errors.jsonl"
    if failures:
        atomic_write_text(errors_file, "".join(json.dumps(r) + "\n" for r in failures))
    else:
        errors_file.unlink(missing_ok=True)  # no stale list from an earlier run
    if not args.quiet:
        listed = f" (listed in {errors_file})" if failures else ""
        print(
            f"hrface: {len(sources)} images, {faces} faces, {len(failures)} errors{listed} -> {args.out_dir}",
            file=sys.stderr,
        )
    return 1 if failures else 0
