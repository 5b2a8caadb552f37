"""Benchmark inputs: photos letterboxed to one fixed size."""

from __future__ import annotations

import os
from collections.abc import Sequence

import cv2
import numpy as np

from ..errors import ConfigError
from ..io.files import iter_image_files
from ..io.image import read_image


def letterbox(image_bgr: np.ndarray, width: int, height: int) -> tuple[np.ndarray, float]:
    """Resize ``image_bgr`` to fit ``width``×``height`` (aspect kept, area/linear interpolation), placed
    at the top-left of a black canvas. Returns the (height, width, 3) canvas and the resize factor, so an
    image point x maps to x·factor on the canvas."""
    h, w = image_bgr.shape[:2]
    factor = min(width / w, height / h)
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image_bgr, size, interpolation=interpolation)
    canvas = np.zeros((height, width, 3), np.uint8)
    canvas[: size[1], : size[0]] = resized
    return canvas, factor


def bench_images(inputs: Sequence[str | os.PathLike[str]], width: int, height: int, limit: int = 8) -> list[np.ndarray]:
    """Up to ``limit`` images from files/folders, each letterboxed to ``width``×``height``."""
    paths = list(iter_image_files(inputs))[:limit]
    if not paths:
        raise ConfigError(f"no images found in {', '.join(map(str, inputs))}; pass image files or folders")
    return [letterbox(read_image(p), width, height)[0] for p in paths]
