"""``hrface bench``: per-stage timings of the pipeline on each backend and of peer detectors, as a table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..benchmark import BENCH_BACKENDS, BenchConfig, format_report, run_benchmark
from ..errors import ConfigError
from ..extras import available
from ..io.files import atomic_write_text
from ..runtime.detector import DEFAULT_DETECTOR
from .detect import parse_max_size
from .export import check_output


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "bench",
        help="time the pipeline per stage and backend, and peer detectors, on this machine",
        description="Median milliseconds per stage (pre-processing, detector forward, decode + NMS, landmark "
        "crop, landmark forward per face, total) for each backend, on images letterboxed to one size; peer "
        "detectors (YuNet, SCRFD) on the same images; FLOPs against this CPU's peak; training throughput.",
    )
    parser.add_argument("images", nargs="+", help="image files or folders (the first --max-images are used)")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, help="RetinaFace name or checkpoint path")
    parser.add_argument(
        "--landmarker",
        help="HRNet name, checkpoint or .onnx (default: HRNetV2-W18 with random weights at --landmark-size; the "
        "shipped landmark model without the hrface[torch] extra)",
    )
    parser.add_argument("--landmark-size", type=int, default=256, help="crop side of the random HRNet (256)")
    parser.add_argument(
        "--backends",
        help=f"comma-separated rows out of {','.join(BENCH_BACKENDS)}, or none (default torch,onnxruntime with "
        "the hrface[torch] extra, else onnxruntime)",
    )
    parser.add_argument("--int8-detector", type=Path, help="INT8 detector .onnx (hrface export --int8)")
    parser.add_argument("--int8-landmarker", type=Path, help="INT8 landmark .onnx (hrface export --int8)")
    parser.add_argument("--yunet", type=Path, help="YuNet .onnx for cv2.FaceDetectorYN (peer)")
    parser.add_argument("--scrfd", type=Path, help="SCRFD-0.5GF .onnx with keypoints (peer)")
    parser.add_argument("--threads", type=int, help="threads for every backend (default: the usable cores)")
    parser.add_argument("--size", default="640x480", help="detector input WIDTHxHEIGHT (default 640x480)")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per image (default 10)")
    parser.add_argument("--max-images", type=int, default=8, help="at most this many images (default 8)")
    parser.add_argument("--no-training", action="store_true", help="skip the training-throughput line")
    parser.add_argument(
        "--max-sizes",
        metavar="LIST",
        help="also time the detector end to end per photo at each max_size, e.g. 480,640,960,1280,none (with "
        "YuNet at the same sizes and SCRFD when given; use a large --size such as 1600x1200)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: small input, tiny HRNet, one run")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    options = {
        "detector": args.detector,
        "landmarker": args.landmarker,
        "backends": tuple(b.strip() for b in _backends(args.backends).split(",") if b.strip() not in ("", "none")),
        "int8_detector": args.int8_detector,
        "int8_landmarker": args.int8_landmarker,
        "yunet": args.yunet,
        "scrfd": args.scrfd,
        "threads": args.threads,
    }
    images = [Path(p) for p in args.images]
    if args.json:
        check_output(args.json)  # found before the benchmark runs, not after it
    if args.quick:
        config = BenchConfig.quick(images, **options)
    else:
        width, height = _size(args.size)
        config = BenchConfig(
            images,
            **options,
            landmark_size=args.landmark_size,
            size=(width, height),
            repeats=args.repeats,
            max_images=args.max_images,
        )
    if args.no_training:
        config.train_sizes = ()
    if args.max_sizes:
        config.max_sizes = tuple(_max_size(v) for v in args.max_sizes.split(","))
    results = run_benchmark(config)
    print(format_report(results))
    if args.json:
        atomic_write_text(args.json, json.dumps(results, indent=2) + "\n")
    return 0


def _backends(text: str | None) -> str:
    if text is not None:
        return text
    return "torch,onnxruntime" if available("torch") else "onnxruntime"


def _max_size(text: str) -> int | str | None:
    try:
        return parse_max_size(text.strip())
    except argparse.ArgumentTypeError as exc:
        raise ConfigError(f"--max-sizes: {exc}") from None


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size must be WIDTHxHEIGHT, e.g. 640x480; got {text!r}") from None
    if width < 32 or height < 32:
        raise ConfigError(f"--size must be at least 32x32, got {text!r}")
    return width, height
