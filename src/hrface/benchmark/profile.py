"""Stage-by-stage profile of the default pipeline on photos, as ``hrface detect`` runs it (``hrface bench``).

The real code path is timed, not a copy of it: timing wrappers are put around the stages of one
:class:`~hrface.runtime.FaceAnalyzer` (its detector's ``resize``, ``to_batch``, ``coarse_input``, ``postprocess``
and forward pass; its landmark model's ``crop``, forward pass and ``predict``), and each photo goes through
:meth:`FaceAnalyzer.analyze` as a user's does. What the wrappers do not cover is the remainder of its caller:
the merging of the two detector passes, the heatmap decoding (``predict`` less crops and forward) and the head
pose (``analyze`` less detection and landmarks). Reading the file, writing the JSON record and drawing are
timed apart, with the same functions as ``hrface detect``.

FLOPs (2 × multiply-accumulates of the convolutions, :mod:`.onnx_flops`, when the ``onnx`` package is
installed) are counted exactly at the first photo's network input sizes and scaled by pixel count for the
others (within 4 %); achieved GFLOP/s and the fraction of this CPU's float32 peak (:mod:`.hardware`) follow.
For an INT8 graph that fraction compares integer work with the float32 peak.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..extras import available
from ..io.draw import draw_faces
from ..io.image import read_image
from ..runtime import FaceAnalyzer

# (key, label) in the order of the pipeline; the forward rows carry FLOPs
STAGES = (
    ("read", "read + decode the file"),
    ("resize", "detector: resize to max_size"),
    ("normalise", "detector: normalise (both passes)"),
    ("forward", "detector: forward, first pass"),
    ("decode", "detector: decode + NMS, first pass"),
    ("coarse_resize", "detector: coarse pass input"),
    ("coarse_forward", "detector: forward, coarse pass"),
    ("coarse_decode", "detector: decode + NMS, coarse pass"),
    ("merge", "detector: merge the passes"),
    ("crop", "landmarks: crops"),
    ("landmark_forward", "landmarks: forward, all faces in one batch"),
    ("heatmaps", "landmarks: heatmap decoding"),
    ("pose", "head pose"),
    ("record", "JSON record"),
    ("draw", "drawing (--draw)"),
)


class _Clock:
    """Milliseconds per stage: ``ms`` the total of the current run (cleared per run), ``calls`` each call's."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = defaultdict(float)
        self.calls: dict[str, list[float]] = defaultdict(list)
        self.shapes: dict[str, tuple[int, ...]] = {}

    def wrap(self, fn: Callable[..., Any], key: Callable[..., str] | str) -> Callable[..., Any]:
        """``fn`` timed under ``key`` (a name, or a function of ``fn``'s arguments called after it ran)."""

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            elapsed = (time.perf_counter() - start) * 1e3
            name = key(*args) if callable(key) else key
            self.ms[name] += elapsed
            self.calls[name].append(elapsed)
            return out

        return timed


def profile_pipeline(paths: Sequence[Path], analyzer: FaceAnalyzer, repeats: int = 3) -> dict[str, Any]:
    """Median milliseconds per photo of each stage in :data:`STAGES` over ``paths`` (each photo ``repeats``
    times after one warm-up run; a stage's figure is the median over photos of its per-photo median), the
    faces found, and the network input shapes and ONNX files met (for FLOPs).  ``analyzer`` is instrumented
    for good: pass one made for the profile."""
    clock = _Clock()
    det, lm = analyzer.detector, analyzer.landmarker
    det_runner, passes = det.runner, []
    models_lm = getattr(lm.runner, "path", None) if lm is not None else None

    def forward_stage(batch: np.ndarray) -> str:  # the first forward pass of a photo, or its coarse pass
        passes.append(batch.shape)
        stage = "forward" if len(passes) == 1 else "coarse_forward"
        clock.shapes.setdefault(stage, batch.shape)
        return stage

    det.runner = clock.wrap(det_runner, forward_stage)  # type: ignore[assignment]
    det.resize = clock.wrap(det.resize, "resize")  # type: ignore[method-assign]
    det.to_batch = clock.wrap(det.to_batch, "normalise")  # type: ignore[method-assign]
    det.coarse_input = clock.wrap(det.coarse_input, "coarse_resize")  # type: ignore[method-assign]
    det.postprocess = clock.wrap(det.postprocess, lambda *a: "decode" if len(passes) == 1 else "coarse_decode")
    if lm is not None:
        lm_runner = lm.runner

        def landmark_forward(batch: np.ndarray) -> Any:
            clock.shapes["landmark_forward"] = (1, *batch.shape[1:])
            clock.ms["faces"] += len(batch)
            return lm_runner(batch)

        lm.runner = landmark_forward  # type: ignore[assignment]
        lm.crop = clock.wrap(lm.crop, "crop")  # type: ignore[method-assign]
        lm.forward = clock.wrap(lm.forward, "landmark_forward")  # type: ignore[method-assign]
        lm.predict = clock.wrap(lm.predict, "predict")  # type: ignore[method-assign]
    analyze = clock.wrap(analyzer.analyze, "analyze")
    detect = det.detect_batch
    det.detect_batch = clock.wrap(detect, "detect")  # type: ignore[method-assign]

    per_photo: dict[str, list[float]] = defaultdict(list)
    faces_found = 0
    for path in paths:
        runs: dict[str, list[float]] = defaultdict(list)
        for repeat in range(repeats + 1):
            clock.ms.clear()
            passes.clear()
            image = clock.wrap(read_image, "read")(path)
            faces = analyze(image)
            clock.wrap(lambda f: json.dumps([face.to_dict() for face in f]), "record")(faces)
            clock.wrap(draw_faces, "draw")(image, faces)
            if repeat == 0:  # warm-up
                faces_found += len(faces)
                continue
            for key, value in _stages(clock.ms).items():
                runs[key].append(value)
        for key, values in runs.items():
            per_photo[key].append(statistics.median(values))
    medians = {key: statistics.median(values) for key, values in per_photo.items()}
    models = {"forward": getattr(det_runner, "path", None), "coarse_forward": getattr(det_runner, "path", None)}
    models["landmark_forward"] = models_lm
    return {
        "ms": medians,
        "faces": faces_found,
        "photos": len(paths),
        "shapes": dict(clock.shapes),
        "models": models,
    }


def _stages(ms: dict[str, float]) -> dict[str, float]:
    """The stages of one run from the raw wrapper times (remainders computed as the module doc says)."""
    out = {key: ms.get(key, 0.0) for key, _ in STAGES}
    detector_parts = ("resize", "normalise", "forward", "decode", "coarse_resize", "coarse_forward", "coarse_decode")
    out["merge"] = max(0.0, ms.get("detect", 0.0) - sum(ms.get(k, 0.0) for k in detector_parts))
    predict = ms.get("predict", 0.0)
    out["heatmaps"] = max(0.0, predict - ms.get("crop", 0.0) - ms.get("landmark_forward", 0.0))
    out["pose"] = max(0.0, ms.get("analyze", 0.0) - ms.get("detect", 0.0) - predict)
    out["detector"] = ms.get("detect", 0.0)
    out["landmarks"] = predict
    out["pipeline"] = ms.get("analyze", 0.0)
    out["faces"] = ms.get("faces", 0.0)
    return out


def stage_flops(profile: dict[str, Any]) -> dict[str, float]:
    """GFLOP per photo of the forward stages (see the module doc), or {} without the ``onnx`` package or for
    models that are not ONNX files."""
    from .onnx_flops import onnx_macs

    if not available("onnx"):
        return {}
    out: dict[str, float] = {}
    for stage in ("forward", "coarse_forward", "landmark_forward"):
        shape, model = profile["shapes"].get(stage), profile["models"].get(stage)
        if shape is None or model is None:
            continue
        gflop = 2 * onnx_macs(model, shape) / 1e9
        if stage == "landmark_forward":
            gflop *= profile["ms"].get("faces", 1.0)  # per photo: the median photo's faces
        out[stage] = gflop
    return out


VIDEO_STAGES = (
    ("read", "read + decode the frame"),
    ("detector_frames", "frames through the detector (+ landmarks)"),
    ("followed_frames", "frames followed by their landmarks"),
    ("tracking", "tracking + One Euro smoothing + pose"),
    ("record", "JSON record"),
    ("draw", "drawing (--draw)"),
)


def profile_video(path: Path, analyzer: FaceAnalyzer, max_frames: int = 150, peer: Any = None) -> dict[str, Any]:
    """Per-frame milliseconds of the default video path (:class:`~hrface.video.VideoAnalyzer` at its defaults)
    over the first ``max_frames`` frames of the video at ``path``: each stage of :data:`VIDEO_STAGES` as the
    median over the frames it ran on, the whole frame's mean, and ``peer`` (a detector with ``detect``, e.g.
    YuNet) on the same frames, interleaved."""
    from ..video import VideoAnalyzer, VideoSource

    clock = _Clock()
    video_analyzer = VideoAnalyzer(analyzer)
    analyze = analyzer.analyze
    analyzer.analyze = clock.wrap(analyze, "detector_frames")  # type: ignore[method-assign]
    if video_analyzer.follower is not None:
        follower = video_analyzer.follower
        follower.step = clock.wrap(follower.step, "followed_frames")  # type: ignore[method-assign]
    video_analyzer.update = clock.wrap(video_analyzer.update, "tracking")  # type: ignore[method-assign]
    record = clock.wrap(lambda faces: json.dumps([face.to_dict() for face in faces]), "record")
    draw = clock.wrap(draw_faces, "draw")
    peer_detect = clock.wrap(peer.detect, "peer") if peer is not None else None
    try:
        with VideoSource(path, max_frames=max_frames) as video:
            frames = iter(video)
            read = clock.wrap(lambda: next(frames, None), "read")
            while True:
                start = time.perf_counter()
                item = read()
                if item is None:
                    break
                _, time_s, frame = item
                faces = video_analyzer.process(frame, time_s)
                record(faces)
                draw(frame, faces)
                clock.calls["frame"].append((time.perf_counter() - start) * 1e3)
                if peer_detect is not None:  # interleaved, so that a change in the machine's load slows both alike
                    peer_detect(frame)
    finally:
        analyzer.analyze = analyze  # type: ignore[method-assign]
    calls = clock.calls
    return {
        "video": str(path),
        "frames": len(calls["frame"]),
        "detector_runs": len(calls["detector_frames"]),
        "ms": {key: statistics.median(calls[key]) for key, _ in VIDEO_STAGES if calls[key]},
        "frame_mean_ms": statistics.fmean(calls["frame"]) if calls["frame"] else float("nan"),
        "peer_mean_ms": statistics.fmean(calls["peer"]) if calls["peer"] else None,
    }
