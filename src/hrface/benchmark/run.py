"""``hrface bench``: per-stage timings of each backend and of peer detectors, on the same images, in one run.

Every figure is the median of repeated runs after warm-up, on images letterboxed to one size (640×480 by
default). Backends (rows):

- ``torch``: PyTorch eager under ``torch.inference_mode``;
- ``torch-fold``: the same with BatchNorm folded into the convolutions;
- ``onnxruntime``: the exported fp32 graph, ONNX Runtime graph optimisation ALL;
- ``onnxruntime-basic``: the same graph with optimisation level BASIC;
- ``onnxruntime-int8``: INT8 files from ``hrface export --int8`` (when given).
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..extras import available, require
from ..runtime import Detector, FaceAnalyzer, Landmarker
from ..runtime.detector import DEFAULT_DETECTOR, MaxSize
from ..runtime.landmarker import DEFAULT_LANDMARKER
from .hardware import cpu_info
from .images import bench_images
from .max_size import time_max_sizes
from .peers import Scrfd, YuNet
from .timing import median_ms, time_peer, time_pipeline

BENCH_BACKENDS = ("torch", "torch-fold", "onnxruntime", "onnxruntime-basic")


@dataclass
class BenchConfig:
    """What to measure; see ``hrface bench --help`` for each field."""

    images: list[Path]
    detector: str = DEFAULT_DETECTOR
    landmarker: str | None = None  # None: HRNetV2-W{landmark_width} with random weights at landmark_size
    landmark_width: int = 18
    landmark_size: int = 256
    backends: tuple[str, ...] = ("torch", "onnxruntime")
    int8_detector: Path | None = None
    int8_landmarker: Path | None = None
    yunet: Path | None = None
    scrfd: Path | None = None
    threads: int | None = None
    size: tuple[int, int] = (640, 480)  # (width, height)
    repeats: int = 10
    warmup: int = 2
    max_images: int = 8
    train_width: int = 18
    train_sizes: tuple[int, ...] = (256, 128)
    train_batch: int = 8
    train_steps: int = 3
    max_sizes: tuple[MaxSize, ...] = ()  # detector time per photo at each max_size (:mod:`.max_size`)

    @classmethod
    def quick(cls, images: list[Path], **overrides: Any) -> BenchConfig:
        """A smoke-test configuration that runs in seconds: small input, tiny HRNet, one repeat.  The input
        (320×240) is the smallest at which the default detector finds faces in the sample photos, so the
        landmark stages are timed too (at 160×120 it found none)."""
        settings: dict[str, Any] = {
            "size": (320, 240),
            "landmark_width": 2,
            "landmark_size": 64,
            "repeats": 1,
            "warmup": 1,
            "max_images": 2,
            "train_width": 2,
            "train_sizes": (64,),
            "train_batch": 2,
            "train_steps": 1,
        }
        return cls(images=images, **(settings | overrides))


def run_benchmark(config: BenchConfig) -> dict[str, Any]:
    """Measure everything of ``config``; returns the JSON-ready results (see :func:`format_report`)."""
    unknown = set(config.backends) - set(BENCH_BACKENDS)
    if unknown:
        raise ConfigError(f"unknown bench backends {sorted(unknown)}; choose from {BENCH_BACKENDS}")
    threads = config.threads or len(os.sched_getaffinity(0))
    with_torch = available("torch")
    for name in config.backends:
        if name != "onnxruntime":
            require("torch", "torch", f"bench backend {name!r}")
    if with_torch:
        import torch

        torch.set_num_threads(threads)
    width, height = config.size
    images = bench_images(config.images, width, height, config.max_images)
    det_module, lm_module = _models(config, with_torch)
    rows = []
    for name in config.backends:
        analyzer = _analyzer(name, det_module, lm_module, threads)
        stages, faces = time_pipeline(analyzer, images, config.repeats, config.warmup)
        rows.append({"backend": name, "faces": faces, "ms": stages})
    if config.int8_detector or config.int8_landmarker:
        analyzer = FaceAnalyzer(
            Detector(config.int8_detector or det_module, backend="onnxruntime", threads=threads),
            Landmarker(config.int8_landmarker or lm_module, backend="onnxruntime", threads=threads),
        )
        stages, faces = time_pipeline(analyzer, images, config.repeats, config.warmup)
        rows.append({"backend": "onnxruntime-int8", "faces": faces, "ms": stages})
    cpu = cpu_info()
    peak_used = cpu.peak_gflops * min(threads, cpu.cores) / cpu.cores
    return {
        "machine": cpu.to_dict() | {"platform": platform.platform()},
        "threads": threads,
        "versions": _versions(),
        "input": {"width": width, "height": height, "images": len(images), "repeats": config.repeats},
        "landmark_model": _landmark_description(config, lm_module, threads),
        "pipelines": rows,
        "peers": _peers(config, images, threads),
        "flops": _flops(det_module, lm_module, (width, height), rows, peak_used) if with_torch else [],
        "max_sizes": time_max_sizes(
            det_module, images, config.max_sizes, threads, config.repeats, config.warmup, config.yunet, config.scrfd
        )
        if config.max_sizes
        else [],
        "training": _training(config) if with_torch else [],
    }


def _models(config: BenchConfig, with_torch: bool) -> tuple[Any, Any]:
    """The detector and landmark models to time: PyTorch modules with the torch extra (every backend can
    run them), else the names or files as given, run by ONNX Runtime (no --landmarker: the shipped one)."""
    if not with_torch:
        return config.detector, config.landmarker or DEFAULT_LANDMARKER
    import torch

    from ..models.hrnet import HRNet
    from ..models.registry import create_model

    det_module = create_model(config.detector, expect="retinaface")
    if config.landmarker:
        return det_module, create_model(config.landmarker, expect="hrnet")
    torch.manual_seed(0)  # the same random weights every run, so the ONNX export is cached
    model = HRNet(num_landmarks=68, width=config.landmark_width).eval()
    model.input_size = config.landmark_size
    return det_module, model


def _landmark_description(config: BenchConfig, lm_model: Any, threads: int) -> dict[str, Any]:
    if hasattr(lm_model, "width"):
        return {"width": int(lm_model.width), "input_size": int(lm_model.input_size)}
    landmarker = Landmarker(lm_model, backend="onnxruntime", threads=threads)
    return {"name": str(lm_model), "input_size": landmarker.input_size}


def _training(config: BenchConfig) -> list[dict[str, Any]]:
    from .training import training_images_per_s

    return [
        {
            "width": config.train_width,
            "input_size": size,
            "batch": config.train_batch,
            "images_per_s": training_images_per_s(config.train_width, size, config.train_batch, config.train_steps),
        }
        for size in config.train_sizes
    ]


def _analyzer(name: str, det_module: Any, lm_module: Any, threads: int) -> FaceAnalyzer:
    if name == "torch-fold":
        from ..export.fold import fold_batchnorm

        det_module, lm_module = fold_batchnorm(det_module), fold_batchnorm(lm_module)
    backend = "torch" if name.startswith("torch") else "onnxruntime"
    detector = Detector(det_module, backend=backend, threads=threads)
    landmarker = Landmarker(lm_module, backend=backend, threads=threads)
    if name == "onnxruntime-basic":
        from ..runtime.backends import OrtRunner, cached_onnx

        detector.runner = OrtRunner(cached_onnx(det_module), threads, "basic")
        landmarker.runner = OrtRunner(cached_onnx(lm_module), threads, "basic")
    return FaceAnalyzer(detector, landmarker)


def _peers(config: BenchConfig, images: list, threads: int) -> list[dict[str, Any]]:
    import cv2

    peers = []
    width, height = config.size
    if config.yunet:
        cv2.setNumThreads(threads)
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # OpenCV 5's new-engine notice
        yunet = YuNet(config.yunet, (width, height))
        total = time_peer(yunet.detect, images, config.repeats, config.warmup)
        peers.append({"name": "YuNet", "detector_total": total})
    if config.scrfd:
        scrfd = Scrfd(config.scrfd, threads)
        blob, _ = scrfd.preprocess(images[0])
        forward = median_ms(lambda: scrfd.forward(blob), config.repeats, config.warmup)
        total = time_peer(scrfd.detect, images, config.repeats, config.warmup)
        peers.append({"name": "SCRFD-0.5GF", "detector_forward": forward, "detector_total": total})
    return peers


def _flops(det_module: Any, lm_module: Any, size: tuple[int, int], rows: list, peak: float) -> list[dict[str, Any]]:
    """GFLOPs (2 × MACs) per forward pass, and the fraction of ``peak`` (GFLOP/s of the cores used) reached."""
    from .flops import count_macs

    width, height = size
    side = int(lm_module.input_size)
    models = [
        ("detector", det_module, (1, 3, height, width), "detector_forward"),
        ("landmarker", lm_module, (1, 3, side, side), "landmark_forward_per_face"),
    ]
    out = []
    for role, module, shape, stage in models:
        gflop = 2 * count_macs(module, shape) / 1e9
        achieved = {row["backend"]: round(gflop / (row["ms"][stage] / 1e3), 2) for row in rows if stage in row["ms"]}
        out.append({"model": role, "input": list(shape), "gflop": round(gflop, 3), "gflops_achieved": achieved})
    for entry in out:
        entry["peak_fraction"] = {k: round(v / peak, 4) for k, v in entry["gflops_achieved"].items()} if peak else {}
    return out


def _versions() -> dict[str, str]:
    import cv2

    versions = {"opencv": cv2.__version__}
    if available("torch"):
        import torch

        versions["torch"] = torch.__version__
    try:
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return versions
