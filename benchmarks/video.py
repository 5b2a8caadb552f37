"""Video benchmark: landmark error, jitter and track-id switches of :class:`~hrface.video.VideoAnalyzer` with and
without One Euro smoothing, on synthetic videos with known per-frame landmarks.

Each 300W validation photo (``configs/splits/300w_val10.json``, "val") gives three 640×480 clips at 30 fps, each
frame with fresh Gaussian pixel noise (σ = ``--noise`` grey levels, as a camera sensor):

* ``still``: the face (its largest one, scaled to ~170 px) centred and motionless;
* ``moving``: the same under smooth camera motion: translation (±70 px, ±25 px), rotation (±12°) and zoom
  (±20 %), at up to ~150 px/s;
* ``two``: the photo and the next one side by side (faces ~130 px), each drifting ±40 px horizontally.

The ground-truth points follow the same affine maps.  Per clip: **NME** (mean point error / inter-ocular
distance of the outer eye corners, mean over frames), **jitter** (mean over frames of the mean point
|Δpred − Δgt| / inter-ocular distance, Δ = change from the previous frame), track-id switches, missed faces, and
frames/s (detection + landmarks + tracking + smoothing).  The network runs once per frame; the raw and smoothed
variants (and ``--grid``) re-track the same per-frame faces.

    python benchmarks/video.py --photos 4 [--detect-every K] [--yunet YUNET.onnx] [--grid] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hrface.benchmark.peers import yunet_detector
from hrface.data.landmarks import read_300w_folder
from hrface.io.files import atomic_write_text
from hrface.io.image import read_image
from hrface.landmarks.layouts import get_layout
from hrface.runtime.analyzer import FaceAnalyzer
from hrface.runtime.detector import DEFAULT_DETECTOR
from hrface.runtime.landmarker import DEFAULT_LANDMARKER
from hrface.video import VideoAnalyzer
from hrface.video.follow import DEFAULT_DETECT_EVERY, DEFAULT_MIN_CONFIDENCE
from hrface.video.smoothing import DEFAULT_BETA, DEFAULT_MIN_CUTOFF

ROOT = Path(__file__).resolve().parents[1]  # the repository; its data sit in ../shared beside it
SIZE = (640, 480)  # frame width, height
FPS = 30.0
GRID_MIN_CUTOFF = (0.3, 1.0, 3.0)
GRID_BETA = (0.0, 3.0, 10.0, 30.0, 100.0)
Clip = tuple[list[np.ndarray], list[np.ndarray]]  # frames, ground truth per frame (faces, 68, 2)


def load_photos(split: Path, data_root: Path, offset: int, count: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(photo id, image, points (68, 2) of its largest face)`` of ``count`` validation photos from ``offset``."""
    ids = json.loads(split.read_text())["val"][offset : offset + count]
    folders: dict[str, list] = {}
    photos = []
    for photo in ids:
        folder = photo.split("/")[0]
        if folder not in folders:
            folders[folder] = read_300w_folder(data_root / folder, skip_missing=True)
        faces = [s for s in folders[folder] if s.photo == photo]
        if not faces:
            raise SystemExit(f"hrface: error: no annotated face for {photo} in {data_root / folder}")
        best = max(faces, key=lambda s: float(np.ptp(s.points, axis=0).max()))
        photos.append((photo, read_image(best.image), best.points))
    return photos


def placement(points: np.ndarray, centre: tuple[float, float], size: float) -> np.ndarray:
    """2×3 affine that moves the face of ``points`` to ``centre`` with its longer extent ``size`` pixels."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    s = size / float((hi - lo).max())
    c = (lo + hi) / 2
    return np.array([[s, 0, centre[0] - s * c[0]], [0, s, centre[1] - s * c[1]]])


def motion(t: float, centre: tuple[float, float], amp: tuple[float, float], rot_deg: float, zoom: float) -> np.ndarray:
    """3×3 camera motion at ``t`` seconds: rotation and zoom about ``centre``, then a translation."""
    angle = rot_deg * math.sin(2 * math.pi * t / 3.0)
    scale = 1.0 + zoom * math.sin(2 * math.pi * t / 2.4)
    m = np.vstack([cv2.getRotationMatrix2D(centre, angle, scale), [0, 0, 1]])
    m[0, 2] += amp[0] * math.sin(2 * math.pi * t / 3.0)
    m[1, 2] += amp[1] * math.sin(2 * math.pi * t / 2.0)
    return m


def warp(image: np.ndarray, points: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``image`` warped by the 2×3 (or 3×3) ``affine`` into a frame of :data:`SIZE`, and the points mapped."""
    a = affine[:2]
    frame = cv2.warpAffine(image, a, SIZE, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    return frame, points @ a[:, :2].T + a[:, 2]


def noisy(frame: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return np.clip(frame + rng.normal(0.0, sigma, frame.shape), 0, 255).round().astype(np.uint8)


def make_clips(photo: tuple, partner: tuple, frames: int, sigma: float, seed: int) -> dict[str, Clip]:
    """The ``still``, ``moving`` and ``two`` clips of one photo (``partner``: the right face of ``two``)."""
    rng = np.random.default_rng(seed)
    centre = (SIZE[0] / 2, SIZE[1] / 2)
    base = np.vstack([placement(photo[2], centre, 170.0), [0, 0, 1]])
    still_frame, still_points = warp(photo[1], photo[2], base)
    clips: dict[str, Clip] = {"still": ([], []), "moving": ([], []), "two": ([], [])}
    left = np.vstack([placement(photo[2], (160.0, 240.0), 130.0), [0, 0, 1]])
    right = np.vstack([placement(partner[2], (480.0, 240.0), 130.0), [0, 0, 1]])
    for i in range(frames):
        t = i / FPS
        clips["still"][0].append(noisy(still_frame, sigma, rng))
        clips["still"][1].append(still_points[None])
        frame, points = warp(photo[1], photo[2], motion(t, centre, (70.0, 25.0), 12.0, 0.2) @ base)
        clips["moving"][0].append(noisy(frame, sigma, rng))
        clips["moving"][1].append(points[None])
        drift = 40.0 * math.sin(2 * math.pi * t / 3.0)
        frame_l, points_l = warp(photo[1], photo[2], np.array([[1, 0, -drift], [0, 1, 0], [0, 0, 1]]) @ left)
        frame_r, points_r = warp(partner[1], partner[2], np.array([[1, 0, drift], [0, 1, 0], [0, 0, 1]]) @ right)
        frame_l[:, SIZE[0] // 2 :] = frame_r[:, SIZE[0] // 2 :]
        clips["two"][0].append(noisy(frame_l, sigma, rng))
        clips["two"][1].append(np.stack([points_l, points_r]))
    return clips


def match(faces: list, truth: np.ndarray) -> list[Any]:
    """For each ground-truth face (F, 68, 2): the predicted face whose box holds its centre, nearest first."""
    out: list[Any] = [None] * len(truth)
    pairs = []
    for g, points in enumerate(truth):
        c = points.mean(axis=0)
        for p, face in enumerate(faces):
            x1, y1, x2, y2 = np.asarray(face.box, dtype=np.float64)
            if x1 <= c[0] <= x2 and y1 <= c[1] <= y2 and face.landmarks is not None:
                pairs.append((float(np.hypot(c[0] - (x1 + x2) / 2, c[1] - (y1 + y2) / 2)), g, p))
    used: set[int] = set()
    for _, g, p in sorted(pairs):
        if out[g] is None and p not in used:
            out[g], used = faces[p], used | {p}
    return out


def score(per_frame: list[list], truth: list[np.ndarray]) -> dict[str, float]:
    """NME and jitter (% of inter-ocular distance), id switches and missed faces of one tracked clip; ``extra``:
    faces (summed over frames) that match no annotated face (false faces, or people 300W leaves unannotated),
    ``extra_track``: the most frames any one track spends as such a face."""
    layout = get_layout(68)
    nme, jitter, switches, missed, extra = [], [], 0, 0, 0
    extra_frames: dict[int, int] = {}
    previous: list[Any] = [None] * len(truth[0])
    for faces, gt in zip(per_frame, truth, strict=True):
        matched = match(faces, gt)
        for face in faces:
            if not any(face is m for m in matched):
                extra += 1
                track = getattr(face, "track_id", -1)
                extra_frames[track] = extra_frames.get(track, 0) + 1
        for g, face in enumerate(matched):
            if face is None:
                missed += 1
                previous[g] = None
                continue
            iod = float(layout.interocular(gt[g]))
            pred = np.asarray(face.landmarks, dtype=np.float64)
            nme.append(np.linalg.norm(pred - gt[g], axis=1).mean() / iod)
            if previous[g] is not None:
                last_face, last_gt = previous[g]
                motion_error = (pred - last_face.landmarks) - (gt[g] - last_gt)
                jitter.append(np.linalg.norm(motion_error, axis=1).mean() / iod)
                switches += int(face.track_id != last_face.track_id)
            previous[g] = (face, gt[g])
    return {
        "nme": 100 * float(np.mean(nme)) if nme else math.nan,
        "jitter": 100 * float(np.mean(jitter)) if jitter else math.nan,
        "id_switches": switches,
        "missed": missed,
        "extra": extra,
        "extra_track": max(extra_frames.values(), default=0),
    }


def run_variant(raw: list[list], smooth: bool, **options: Any) -> list[list]:
    """Track (and smooth) per-frame raw faces as :meth:`VideoAnalyzer.process` would."""
    va = VideoAnalyzer(analyzer=_NO_ANALYZER, smooth=smooth, **options)
    return [va.update(faces, i / FPS) for i, faces in enumerate(raw)]


class _NoAnalyzer:
    """Stands in for FaceAnalyzer where the faces are already computed."""

    def analyze(self, image: Any) -> list:
        raise RuntimeError("faces are precomputed here")


_NO_ANALYZER: Any = _NoAnalyzer()


def mean_rows(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=4, help="validation photos to use (default 4)")
    parser.add_argument("--offset", type=int, default=0, help="skip this many photos of the list first")
    parser.add_argument("--frames", type=int, default=90, help="frames per clip (30 fps; default 90)")
    parser.add_argument("--noise", type=float, default=4.0, help="pixel noise σ in grey levels (default 4)")
    parser.add_argument("--split", type=Path, default=ROOT / "configs" / "splits" / "300w_val10.json")
    parser.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data" / "300w")
    parser.add_argument("--grid", action="store_true", help="also try a grid of One Euro min_cutoff × beta")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--landmarker", default=DEFAULT_LANDMARKER, help="landmark model (default: the default)")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, help="detector (default: the default)")
    parser.add_argument("--yunet", type=Path, help="also time YuNet's detection on each frame, interleaved (peer)")
    parser.add_argument(
        "--detect-every",
        type=int,
        default=DEFAULT_DETECT_EVERY,
        help=f"frames between detector runs while faces are followed by their landmarks (default "
        f"{DEFAULT_DETECT_EVERY}; 1: the detector on every frame)",
    )
    parser.add_argument(
        "--min-confidence",
        type=float,
        default=DEFAULT_MIN_CONFIDENCE,
        help=f"mean landmark score below which a followed face is re-detected (default {DEFAULT_MIN_CONFIDENCE})",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the results to this JSON file")
    args = parser.parse_args(argv)

    photos = load_photos(args.split, args.data_root, args.offset, args.photos)
    fa = FaceAnalyzer(args.detector, landmarker=args.landmarker, threads=args.threads)
    raw: dict[str, list[tuple[list, list]]] = {"still": [], "moving": [], "two": []}
    seconds, frames_done, detector_runs, peer_seconds = 0.0, 0, 0, 0.0
    peer = yunet_detector(args.yunet, None, threshold=0.5) if args.yunet else None
    stages: dict[str, list[float]] = {"detector frames": [], "followed frames": [], "smoothing": []}
    for k, photo in enumerate(photos):
        clips = make_clips(photo, photos[(k + 1) % len(photos)], args.frames, args.noise, seed=k)
        for name, (frames, truth) in clips.items():
            # raw faces per frame (detected or followed), timed with the tracking and smoothing a user pays
            va = VideoAnalyzer(
                analyzer=fa, detect_every=args.detect_every, min_confidence=args.min_confidence, smooth=False
            )
            smoother = VideoAnalyzer(analyzer=_NO_ANALYZER)
            per_frame = []
            for i, frame in enumerate(frames):
                start = time.perf_counter()
                runs_before = va.detector_runs
                faces = va.process(frame, i / FPS)
                middle = time.perf_counter()
                smoother.update(faces, i / FPS)
                end = time.perf_counter()
                seconds += end - start
                stages["detector frames" if va.detector_runs > runs_before else "followed frames"].append(
                    middle - start
                )
                stages["smoothing"].append(end - middle)
                per_frame.append(faces)
                if peer is not None:  # interleaved, so that a change in the machine's load slows both alike
                    start = time.perf_counter()
                    peer.detect(frame)
                    peer_seconds += time.perf_counter() - start
            frames_done += len(frames)
            detector_runs += va.detector_runs
            raw[name].append((per_frame, truth))
        print(f"photo {photo[0]}: done ({frames_done / seconds:.1f} frames/s so far)", flush=True)

    def evaluate(smooth: bool, **options: Any) -> dict[str, dict[str, float]]:
        return {
            name: mean_rows([score(run_variant(r, smooth, **options), truth) for r, truth in clips])
            for name, clips in raw.items()
        }

    results = {"raw": evaluate(False), "smoothed": evaluate(True)}
    fps = frames_done / seconds
    print(f"\n{len(photos)} photos × 3 clips × {args.frames} frames, noise σ {args.noise}, {fps:.1f} frames/s")
    print(f"detector on {detector_runs} of {frames_done} frames (--detect-every {args.detect_every})")
    ms, peer_ms = 1e3 * seconds / frames_done, 1e3 * peer_seconds / frames_done
    for stage, times in stages.items():  # a frame goes through the detector or is followed, then is smoothed
        if times:
            print(f"  {stage}: {len(times)} frames, median {1e3 * float(np.median(times)):.1f} ms each")
    if peer is not None:
        print(f"{ms:.1f} ms per frame against YuNet's detection alone {peer_ms:.1f} ms: {ms / peer_ms:.2f}x")
    print(f"One Euro min_cutoff {DEFAULT_MIN_CUTOFF} Hz, beta {DEFAULT_BETA} Hz per face size/s\n")
    print(
        "| clip | NME raw % | NME smooth % | jitter raw % | jitter smooth % | id switches raw / smooth | missed "
        "| extra faces (longest track, frames) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in raw:
        r, s = results["raw"][name], results["smoothed"][name]
        print(
            f"| {name} | {r['nme']:.2f} | {s['nme']:.2f} | {r['jitter']:.3f} | {s['jitter']:.3f} | "
            f"{r['id_switches']:g} / {s['id_switches']:g} | {r['missed']:g} | {r['extra']:g} ({r['extra_track']:g}) |"
        )
    jitter_ratio = results["smoothed"]["still"]["jitter"] / results["raw"]["still"]["jitter"]
    nme_ratio = results["smoothed"]["moving"]["nme"] / results["raw"]["moving"]["nme"]
    verdict = "pass" if jitter_ratio <= 0.5 and nme_ratio <= 1.05 else "FAIL"
    print(f"\nstill jitter × {jitter_ratio:.3f} (bar ≤ 0.5), moving NME × {nme_ratio:.3f} (bar ≤ 1.05): {verdict}")

    grid = []
    if args.grid:
        print("\n| min_cutoff Hz | beta | still jitter × | moving NME × | moving jitter × | two NME × |")
        print("|---|---|---|---|---|---|")
        for min_cutoff in GRID_MIN_CUTOFF:
            for beta in GRID_BETA:
                g = evaluate(True, min_cutoff=min_cutoff, beta=beta)
                row = {"min_cutoff": min_cutoff, "beta": beta}
                row["still_jitter_ratio"] = g["still"]["jitter"] / results["raw"]["still"]["jitter"]
                row["moving_nme_ratio"] = g["moving"]["nme"] / results["raw"]["moving"]["nme"]
                row["moving_jitter_ratio"] = g["moving"]["jitter"] / results["raw"]["moving"]["jitter"]
                row["two_nme_ratio"] = g["two"]["nme"] / results["raw"]["two"]["nme"]
                grid.append(row)
                print(
                    f"| {min_cutoff:g} | {beta:g} | {row['still_jitter_ratio']:.3f} | {row['moving_nme_ratio']:.3f} | "
                    f"{row['moving_jitter_ratio']:.3f} | {row['two_nme_ratio']:.3f} |"
                )
    if args.json is not None:
        report = {
            "photos": [p[0] for p in photos],
            "frames_per_clip": args.frames,
            "noise_sigma": args.noise,
            "frames_per_second": fps,
            "detect_every": args.detect_every,
            "detector_runs": detector_runs,
            "stage_median_ms": {k: 1e3 * float(np.median(v)) for k, v in stages.items() if v},
            "ms_per_frame": ms,
            "yunet_ms_per_frame": peer_ms if peer is not None else None,
            "min_cutoff": DEFAULT_MIN_CUTOFF,
            "beta": DEFAULT_BETA,
            "results": results,
            "still_jitter_ratio": jitter_ratio,
            "moving_nme_ratio": nme_ratio,
            "grid": grid,
        }
        atomic_write_text(args.json, json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
