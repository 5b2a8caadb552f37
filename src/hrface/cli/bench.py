"""``hrface bench``: per-stage timings of the pipeline on each backend and of peer detectors, as a table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..benchmark import BENCH_BACKENDS, BenchConfig, format_report, run_benchmark
from ..errors import ConfigError
from ..extras import available
from ..io.files import atomic_write_text
from ..runtime.detector import DEFAULT_DETECTOR, parse_max_size
from .export import check_output


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "bench",
        help="time the default pipeline stage by stage on your photos, against YuNet and SCRFD",
        description="By default: the default pipeline as 'hrface detect' runs it, profiled stage by stage on the "
        "photos (median ms per photo, FLOPs and the fraction of this CPU's float32 peak), then the default "
        "detector, the default pipeline and the peers that are there (YuNet, SCRFD, dlib) on the same "
        "photos, interleaved, with ratios to YuNet; about half a minute for 20 photos. With --research: the "
        "per-backend table on letterboxed images, INT8 files, time by max_size and training throughput.",
    )
    parser.add_argument("images", nargs="+", help="image files or folders (the first --max-images are used)")
    parser.add_argument(
        "--research",
        action="store_true",
        help="the research timings instead: each backend per stage on images letterboxed to --size (the options "
        "below marked [research])",
    )
    parser.add_argument("--detector", default=None, help="[research] RetinaFace name or checkpoint path")
    parser.add_argument(
        "--landmarker",
        help="[research] HRNet name, checkpoint or .onnx (default: HRNetV2-W18 with random weights at "
        "--landmark-size; the shipped landmark model without the hrface[torch] extra)",
    )
    parser.add_argument(
        "--landmark-size", type=int, default=None, help="[research] crop side of the random HRNet (256)"
    )
    parser.add_argument(
        "--backends",
        help=f"[research] comma-separated rows out of {','.join(BENCH_BACKENDS)}, or none (default "
        "torch,onnxruntime with the hrface[torch] extra, else onnxruntime)",
    )
    parser.add_argument("--int8-detector", type=Path, help="[research] INT8 detector .onnx (hrface export --int8)")
    parser.add_argument("--int8-landmarker", type=Path, help="[research] INT8 landmark .onnx (hrface export --int8)")
    parser.add_argument("--yunet", type=Path, help="YuNet .onnx for cv2.FaceDetectorYN (peer)")
    parser.add_argument("--scrfd", type=Path, help="SCRFD-0.5GF .onnx with keypoints (peer)")
    parser.add_argument("--threads", type=int, help="threads for every backend (default: the usable cores)")
    parser.add_argument("--size", default=None, help="[research] detector input WIDTHxHEIGHT (default 640x480)")
    parser.add_argument("--repeats", type=int, help="timed runs per image (default 3; research: 10)")
    parser.add_argument("--max-images", type=int, help="at most this many images (default 20; research: 8)")
    parser.add_argument(
        "--video",
        type=Path,
        metavar="FILE",
        help="also profile this video per frame at the defaults (its first 150 frames; with --yunet, YuNet on "
        "the same frames)",
    )
    parser.add_argument(
        "--split-file",
        type=Path,
        metavar="FILE",
        help="IMAGES are 300W-style folders: time the photos of this split's validation part (e.g. "
        "configs/splits/300w_val10.json)",
    )
    parser.add_argument("--no-training", action="store_true", help="[research] skip the training-throughput line")
    parser.add_argument(
        "--max-sizes",
        metavar="LIST",
        help="[research] also time the detector end to end per photo at each max_size, e.g. "
        "480,640,960,1280,none (with YuNet at the same sizes and SCRFD when given; use a large --size such as "
        "1600x1200)",
    )
    parser.add_argument("--quick", action="store_true", help="[research] smoke test: small input, tiny HRNet, one run")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    parser.set_defaults(run=run)


RESEARCH_ONLY = ("detector", "landmarker", "landmark_size", "backends", "int8_detector", "int8_landmarker", "size")
RESEARCH_FLAGS = ("no_training", "max_sizes", "quick")


def run(args: argparse.Namespace) -> int:
    if args.json:
        check_output(args.json)  # found before the benchmark runs, not after it
    if not args.research:
        given = [name for name in (*RESEARCH_ONLY, *RESEARCH_FLAGS) if getattr(args, name)]
        if given:
            raise ConfigError(f"--{given[0].replace('_', '-')} is a research option; add --research")
        return run_defaults_bench(args)
    if args.split_file is not None or args.video is not None:
        raise ConfigError("--split-file and --video are for the default mode, not --research")
    return run_research(args)


def run_defaults_bench(args: argparse.Namespace) -> int:
    from ..benchmark.at_defaults import DefaultsConfig, format_defaults, run_defaults
    from ..io.files import iter_image_files

    if args.split_file is not None:
        from ..data.landmarks.split import split_images

        paths = split_images(args.images, args.split_file, "val")[: args.max_images or 20]
    else:
        paths = list(iter_image_files(args.images))[: args.max_images or 20]
    if not paths:
        raise ConfigError("no images found in the given paths; pass photos or folders of photos")
    repeats = args.repeats or 3
    if repeats < 1:
        raise ConfigError(f"--repeats must be at least 1, got {repeats}")
    config = DefaultsConfig(
        paths, threads=args.threads, repeats=repeats, yunet=args.yunet, scrfd=args.scrfd, video=args.video
    )
    results = run_defaults(config)
    print(format_defaults(results))
    if args.json:
        atomic_write_text(args.json, json.dumps(results, indent=2, default=str) + "\n")
    return 0


def run_research(args: argparse.Namespace) -> int:
    options = {
        "detector": args.detector or DEFAULT_DETECTOR,
        "landmarker": args.landmarker,
        "backends": tuple(b.strip() for b in _backends(args.backends).split(",") if b.strip() not in ("", "none")),
        "int8_detector": args.int8_detector,
        "int8_landmarker": args.int8_landmarker,
        "yunet": args.yunet,
        "scrfd": args.scrfd,
        "threads": args.threads,
    }
    images = [Path(p) for p in args.images]
    if args.quick:
        config = BenchConfig.quick(images, **options)
    else:
        width, height = _size(args.size or "640x480")
        config = BenchConfig(
            images,
            **options,
            landmark_size=args.landmark_size or 256,
            size=(width, height),
            repeats=args.repeats or 10,
            max_images=args.max_images or 8,
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
    except ValueError as exc:
        raise ConfigError(f"--max-sizes: {exc}") from None


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size must be WIDTHxHEIGHT, e.g. 640x480; got {text!r}") from None
    if width < 32 or height < 32:
        raise ConfigError(f"--size must be at least 32x32, got {text!r}")
    return width, height
