"""Time per photo against the detector's ``max_size``: the detector end to end (downscaling, forward pass,
decoding, NMS and the coarse large-face pass when it runs) at each size, on the same photos, with YuNet at
the same sizes and SCRFD (fixed 640 × 640 input) beside it, and ratios to the first row of the same run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ..runtime.detector import Detector, MaxSize
from .peers import scrfd_detector, yunet_detector
from .timing import time_peer


def time_max_sizes(
    detector: nn.Module,
    images: Sequence[np.ndarray],
    sizes: Sequence[MaxSize],
    threads: int,
    repeats: int,
    warmup: int,
    yunet: Path | None = None,
    scrfd: Path | None = None,
) -> list[dict[str, Any]]:
    """Rows ``{name, max_size, input, ms, faces}``: median milliseconds per photo of ``detector`` (default backend,
    threshold 0.5) at each of ``sizes``, then YuNet at each size and SCRFD once; ``input`` is the network
    input of the first photo (``WxH``), ``faces`` the faces found in all photos."""
    detectors = [Detector(detector, max_size=size, threads=threads) for size in sizes]
    rows = [_row("detector", det, images, repeats, warmup) for det in detectors]
    for det in detectors if yunet else ():  # YuNet at the sizes the detector ran at ('auto' resolved)
        rows.append(_row("YuNet", yunet_detector(yunet, det.max_size, threshold=0.5), images, repeats, warmup))
    if scrfd:
        rows.append(_row("SCRFD-0.5GF", scrfd_detector(scrfd, threshold=0.5, threads=threads), images, repeats, warmup))
    return rows


def _row(name: str, det: Any, images: Sequence[np.ndarray], repeats: int, warmup: int) -> dict[str, Any]:
    h, w = images[0].shape[:2]
    cap = det.max_size if name != "SCRFD-0.5GF" else 640
    scale = 1.0 if cap is None else min(1.0, cap / max(h, w))
    return {
        "name": name,
        "max_size": cap,
        "input": f"{round(w * scale)}x{round(h * scale)}" if name != "SCRFD-0.5GF" else "640x640",
        "ms": time_peer(det.detect, images, repeats, warmup),
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
