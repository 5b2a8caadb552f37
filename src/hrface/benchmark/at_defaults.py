"""``hrface bench`` by default: what a user runs, timed on the user's photos at the default settings.

1. A stage-by-stage profile of the default pipeline per photo (:mod:`.profile`), with FLOPs and the fraction
   of this CPU's float32 peak for the forward passes.
2. Side by side on the same photos, interleaved (each repeat runs every row on each photo in turn, so a change
   in the machine's load slows all rows alike): the default detector, the default pipeline, and the peers
   that are there: YuNet at the photo's size (its default use) and SCRFD-0.5GF (fixed 640 × 640) from their
   ONNX files, dlib's HOG detector + 68 points when ``dlib`` and ``face-recognition-models`` are installed
   (MediaPipe's face landmarker needs a model file that its wheel does not ship, so it is not timed).
   Each row's median milliseconds per photo and its ratio to YuNet (else to the first row).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import HrfaceError
from ..io.image import read_image
from ..runtime import FaceAnalyzer
from .hardware import cpu_info
from .max_size import interleaved_ms
from .profile import STAGES, VIDEO_STAGES, profile_pipeline, profile_video, stage_flops

SUMMARY = (("detector", "detector end to end"), ("landmarks", "landmarks end to end"), ("pipeline", "pipeline"))


@dataclass
class DefaultsConfig:
    """What ``hrface bench`` measures by default (see ``hrface bench --help``)."""

    images: list[Path]
    threads: int | None = None
    repeats: int = 3
    yunet: Path | None = None
    scrfd: Path | None = None
    video: Path | None = None  # also profile this video per frame (its first video_frames frames)
    video_frames: int = 150


def run_defaults(config: DefaultsConfig) -> dict[str, Any]:
    """The profile and the side-by-side rows as a JSON-ready dict (:func:`format_defaults` prints it)."""
    from .peers import yunet_detector

    profile = profile_pipeline(config.images, FaceAnalyzer(threads=config.threads), config.repeats)  # instrumented
    flops = stage_flops(profile)
    pipeline = FaceAnalyzer(threads=config.threads)  # the side-by-side rows and the video share it
    yunet = yunet_detector(config.yunet, None, threshold=0.5) if config.yunet is not None else None
    rows, skipped = _rows(config, pipeline, yunet)
    images = [read_image(p) for p in config.images]
    ms = interleaved_ms([fn for _, fn in rows], images, config.repeats, 1)
    video = None
    if config.video is not None:
        video = profile_video(config.video, pipeline, config.video_frames, yunet)
    return {
        "video": video,
        "cpu": cpu_info().to_dict(),
        "threads": config.threads,
        "profile": profile,
        "gflop": flops,
        "rows": [{"name": name, "ms": t} for (name, _), t in zip(rows, ms, strict=True)],
        "skipped": skipped,
    }


def _rows(config: DefaultsConfig, pipeline: FaceAnalyzer, yunet: Any) -> tuple[list[tuple[str, Any]], list[str]]:
    """``(name, function of a BGR photo)`` rows of the side-by-side table, and one line per peer left out."""
    from .landmark_peers import PeerUnavailable, load_peer
    from .peers import scrfd_detector

    rows: list[tuple[str, Any]] = []
    skipped = []
    if yunet is not None:
        rows.append(("YuNet (photo size)", yunet.detect))
    else:
        skipped.append("YuNet: skipped (pass --yunet yunet_n_dynamic.onnx, OpenCV's face detector model file)")
    if config.scrfd is not None:
        scrfd = scrfd_detector(config.scrfd, threshold=0.5, threads=config.threads)
        rows.append(("SCRFD-0.5GF (640x640)", scrfd.detect))
    else:
        skipped.append("SCRFD: skipped (pass --scrfd scrfd_500m_bnkps.onnx, insightface's SCRFD-0.5GF with keypoints)")
    rows.append(("hrface detector (default)", pipeline.detector.detect))
    rows.append(("hrface pipeline (default)", pipeline.analyze))
    try:
        rows.append(("dlib HOG + 68 points", load_peer("dlib").detect))
    except (PeerUnavailable, HrfaceError) as exc:
        skipped.append(f"dlib: skipped ({exc})")
    # MediaPipe's face landmarker (mediapipe >= 0.10's Tasks API; its legacy face mesh is gone from current
    # releases) needs a .task model file that the wheel does not ship and hrface does not download.
    skipped.append(
        "MediaPipe: not timed (its face landmarker needs a .task model file that the mediapipe wheel does not ship)"
    )
    return rows, skipped


def format_defaults(results: dict[str, Any]) -> str:
    """The results as two plain-text tables and the skipped peers, one line each."""
    cpu, profile, flops = results["cpu"], results["profile"], results["gflop"]
    ms = profile["ms"]
    faces = ms.get("faces", 0.0)
    lines = [
        f"hrface bench: the default pipeline on {profile['photos']} photos ({profile['faces']} faces), "
        f"median per photo; {cpu['model']}, {cpu['cores']} cores, threads {results['threads'] or 'default'}",
        f"float32 peak {cpu['peak_gflops']:.0f} GFLOP/s ({cpu['formula']})",
        "",
        f"| {'stage':44} | {'ms':>7} | {'GFLOP':>6} | {'GFLOP/s':>7} | {'% peak':>6} |",
        f"|{'-' * 46}|{'-' * 8}:|{'-' * 7}:|{'-' * 8}:|{'-' * 7}:|",
    ]
    for key, label in STAGES:
        t, g = ms.get(key, 0.0), flops.get(key)
        shape = profile["shapes"].get(key)
        if shape is not None and key != "landmark_forward":
            label = f"{label} ({shape[3]}x{shape[2]})"
        rate = f"{g / t * 1e3:7.1f}" if g and t > 0 else f"{'':7}"
        peak = f"{100 * g / t * 1e3 / cpu['peak_gflops']:5.0f}%" if g and t > 0 and cpu["peak_gflops"] else f"{'':6}"
        gflop = f"{g:6.2f}" if g else f"{'':6}"
        lines.append(f"| {label:44} | {t:7.2f} | {gflop} | {rate} | {peak} |")
        if key == "landmark_forward" and faces:
            lines.append(f"| {'  per face (median photo: ' + f'{faces:g} faces)':44} | {t / faces:7.2f} | | | |")
    for key, label in SUMMARY:
        lines.append(f"| {label:44} | {ms.get(key, 0.0):7.2f} | | | |")
    if not flops:
        lines.append("(GFLOP columns need the onnx package: pip install onnx)")
    rows = results["rows"]
    base = next((r for r in rows if r["name"].startswith("YuNet")), rows[0])
    lines += ["", f"same photos, interleaved, median ms per photo (ratio to {base['name']})", ""]
    lines += [f"| {'':28} | {'ms':>7} | {'ratio':>6} |", f"|{'-' * 30}|{'-' * 8}:|{'-' * 7}:|"]
    for row in rows:
        lines.append(f"| {row['name']:28} | {row['ms']:7.2f} | {row['ms'] / base['ms']:5.2f}x |")
    lines += format_video(results.get("video"))
    lines += ["", *results["skipped"]]
    return "\n".join(lines)


def format_video(video: dict[str, Any] | None) -> list[str]:
    """The per-frame video profile as table lines (none without a video)."""
    if not video:
        return []
    lines = [
        "",
        f"video {video['video']}: {video['frames']} frames at the defaults, the detector on {video['detector_runs']}; "
        "median ms per frame of each stage",
        "",
        f"| {'stage':44} | {'ms':>7} |",
        f"|{'-' * 46}|{'-' * 8}:|",
    ]
    for key, label in VIDEO_STAGES:
        if key in video["ms"]:
            lines.append(f"| {label:44} | {video['ms'][key]:7.2f} |")
    lines.append(f"| {'mean per frame, all stages':44} | {video['frame_mean_ms']:7.2f} |")
    if video["peer_mean_ms"]:
        ratio = video["frame_mean_ms"] / video["peer_mean_ms"]
        lines.append(f"| {'YuNet detection alone, same frames':44} | {video['peer_mean_ms']:7.2f} | ({ratio:.2f}x)")
    return lines
