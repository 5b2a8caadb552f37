"""Time per photo against the detector's ``max_size``: the detector end to end (downscaling, forward pass,
decoding, NMS and the coarse large-face pass when it runs) at each size, on the same photos, with YuNet at
the same sizes and SCRFD (fixed 640 × 640 input) beside it, and ratios to the first row of the same run.

The rows are timed interleaved (each repeat runs every row on every photo in turn), so a machine whose
load drifts during the run slows all rows alike and the ratios stay meaningful."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.detector import Detector, MaxSize
from .peers import scrfd_detector, yunet_detector


def time_max_sizes(
    detector: Any,
    images: Sequence[np.ndarray],
    sizes: Sequence[MaxSize],
    threads: int,
    repeats: int,
    warmup: int,
    yunet: Path | None = None,
    scrfd: Path | None = None,
) -> list[dict[str, Any]]:
    """Rows ``{name, max_size, input, ms, faces}``: median milliseconds per photo of ``detector`` (a model as
    :class:`~hrface.runtime.detector.Detector` takes it; default backend,
    threshold 0.5) at each of ``sizes``, then YuNet at each size and SCRFD once; ``input`` is the network
    input of the first photo (``WxH``), ``faces`` the faces found in all photos."""
    detectors: list[tuple[str, Any]] = [("detector", Detector(detector, max_size=s, threads=threads)) for s in sizes]
    if yunet:  # at the sizes the detector ran at ('auto' resolved)
        detectors += [("YuNet", yunet_detector(yunet, det.max_size, threshold=0.5)) for _, det in list(detectors)]
    if scrfd:
        detectors.append(("SCRFD-0.5GF", scrfd_detector(scrfd, threshold=0.5, threads=threads)))
    ms = interleaved_ms([det.detect for _, det in detectors], images, repeats, warmup)
    return [_row(name, det, images, t) for (name, det), t in zip(detectors, ms, strict=True)]


def interleaved_ms(
    functions: Sequence[Callable[[np.ndarray], Any]], images: Sequence[np.ndarray], repeats: int, warmup: int
) -> list[float]:
    """Median milliseconds per call of each function over ``images`` × ``repeats`` calls, after ``warmup``
    calls per image; every repeat calls all functions on each image in turn."""
    for fn in functions:
        for image in images:
            for _ in range(warmup):
                fn(image)
    samples: list[list[float]] = [[] for _ in functions]
    for _ in range(repeats):
        for image in images:
            for fn, out in zip(functions, samples, strict=True):
                start = time.perf_counter()
                fn(image)
                out.append((time.perf_counter() - start) * 1e3)
    return [statistics.median(out) for out in samples]


def _row(name: str, det: Any, images: Sequence[np.ndarray], ms: float) -> dict[str, Any]:
    h, w = images[0].shape[:2]
    cap = det.max_size if name != "SCRFD-0.5GF" else 640
    scale = 1.0 if cap is None else min(1.0, cap / max(h, w))
    return {
        "name": name,
        "max_size": cap,
        "input": f"{round(w * scale)}x{round(h * scale)}" if name != "SCRFD-0.5GF" else "640x640",
        "ms": ms,
        "faces": sum(len(det.detect(image).scores) for image in images),
    }


def format_max_sizes(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The rows as table lines, with each row's time ÷ the first row's."""
    if not rows:
        return []
    base = rows[0]["ms"]
    lines = [f"{'detector':<14}{'max_size':>9}{'input':>11}{'ms/photo':>10}{'ratio':>8}{'faces':>7}"]
    for r in rows:
        size = "none" if r["max_size"] is None else str(r["max_size"])
        lines.append(f"{r['name']:<14}{size:>9}{r['input']:>11}{r['ms']:>10.2f}{r['ms'] / base:>7.2f}x{r['faces']:>7}")
    return lines
