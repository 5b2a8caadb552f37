"""Timing of the pipeline stages and of the peer detectors: medians of repeated runs after warm-up."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..landmarks.heatmaps import heatmaps_to_image
from ..runtime import FaceAnalyzer

STAGES = (
    "preprocess",
    "detector_forward",
    "decode_nms",
    "detector_total",
    "landmark_crop",
    "landmark_forward_per_face",
    "landmark_decode",
    "total",
)


def median_ms(fn: Callable[[], Any], repeats: int, warmup: int) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def _timed(samples: dict[str, list[float]], stage: str, fn: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    out = fn()
    samples.setdefault(stage, []).append((time.perf_counter() - start) * 1e3)
    return out


def _stage_pass(analyzer: FaceAnalyzer, image: np.ndarray, samples: dict[str, list[float]] | None) -> int:
    """One pass of the pipeline, stage by stage (what ``analyzer.analyze`` does); returns the face count."""
    s: dict[str, list[float]] = {} if samples is None else samples
    det, lm = analyzer.detector, analyzer.landmarker
    h, w = image.shape[:2]
    batch = _timed(s, "preprocess", lambda: det.to_batch([det.resize(image)[0]]))
    loc, logits, landm = _timed(s, "detector_forward", lambda: det.runner(batch))
    found = _timed(s, "decode_nms", lambda: det.postprocess(loc[0], logits[0], landm[0], (h, w)))
    if lm is None or len(found.boxes) == 0:
        return len(found.boxes)
    crops, to_image = _timed(s, "landmark_crop", lambda: _crop_batch(lm, image, found.boxes))
    start = time.perf_counter()
    heatmaps = lm.runner(crops)[0]
    s.setdefault("landmark_forward_per_face", []).append((time.perf_counter() - start) * 1e3 / len(found.boxes))
    _timed(s, "landmark_decode", lambda: heatmaps_to_image(heatmaps, to_image, lm.input_size, lm.decode, lm.sigma))
    return len(found.boxes)


def _crop_batch(lm: Any, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    crops, to_image = lm.crop(image, boxes)
    return lm.preprocess(crops), to_image


def time_pipeline(
    analyzer: FaceAnalyzer, images: Sequence[np.ndarray], repeats: int, warmup: int
) -> tuple[dict[str, float], int]:
    """Median milliseconds of each stage of :data:`STAGES` over ``images`` × ``repeats``, and the faces found.

    Stages are timed one after another in the same pass; ``detector_total`` times ``detector.detect``
    and ``total`` times ``analyzer.analyze`` as wholes, in separate passes.
    """
    for image in images:
        for _ in range(warmup):
            _stage_pass(analyzer, image, None)
    samples: dict[str, list[float]] = {}
    faces = 0
    for image in images:
        for _ in range(repeats):
            faces_here = _stage_pass(analyzer, image, samples)
        faces += faces_here
        detect = median_ms(lambda image=image: analyzer.detector.detect(image), repeats, 0)
        samples.setdefault("detector_total", []).append(detect)
        total = median_ms(lambda image=image: analyzer.analyze(image), repeats, 0)
        samples.setdefault("total", []).append(total)
    return {stage: statistics.median(samples[stage]) for stage in STAGES if stage in samples}, faces


def time_peer(detect: Callable[[np.ndarray], Any], images: Sequence[np.ndarray], repeats: int, warmup: int) -> float:
    """Median milliseconds per image of a peer's end-to-end ``detect`` over ``images``."""
    return statistics.median(median_ms(lambda image=image: detect(image), repeats, warmup) for image in images)
