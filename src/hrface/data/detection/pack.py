"""Detection packs: a detector's training and validation photos, downscaled and re-encoded once, with their
faces in RetinaFace ``label.txt`` files, so that a run can travel to a machine without the photos.

A pack is a folder::

    images/000000.jpg …   the photos, longer side at most ``max_side`` pixels (never enlarged), JPEG or WebP
    train.txt, val.txt    RetinaFace labels (:mod:`.labels`) of the two parts (paths ``images/…``, relative
                          to the pack folder, the reader's default image root)

Boxes and keypoints are scaled with the photo by the resize's own per-axis factors (``new / old`` width
and height, continuous pixel coordinates). Faces without keypoints (e.g. teacher faces) stay without
them (``-1``). A config trains from a pack with ``format: retinaface`` sources for ``data.train`` and
``data.val`` (see ``configs/retinaface_mnet025_v2_gpu.yaml``).

Sizes measured on the 1,055 AFW + HELEN-train images: WebP at 800 px 37.2 MiB at quality 80 and 29.8 MiB
at quality 75; the latter (with the 3.6 MiB ImageNet backbone) keeps a working tree with the repository
(21 MB) under 64 MiB. JPEG is about 3× larger (q90 at 1,024 px: 132 MiB).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ...errors import ConfigError
from ...io.files import atomic_write_bytes
from ...io.image import read_image
from .labels import write_retinaface_labels
from .samples import DetectionSample

IMAGES = "images"
PARTS = ("train", "val")
FORMATS = {"jpg": cv2.IMWRITE_JPEG_QUALITY, "webp": cv2.IMWRITE_WEBP_QUALITY}  # file suffix → quality flag


def scaled_sample(sample: DetectionSample, image: str, factor_x: float, factor_y: float) -> DetectionSample:
    """``sample`` for ``image``, its boxes and keypoints multiplied by the per-axis factors."""
    xy = np.array([factor_x, factor_y], np.float32)
    return DetectionSample(
        image=image,
        boxes=sample.boxes * np.tile(xy, 2),
        keypoints=sample.keypoints * xy,
        has_keypoints=sample.has_keypoints,
        photo=sample.photo,
        subset=sample.subset,
    )


def write_detection_pack(
    out_dir: str | os.PathLike[str],
    train: Sequence[DetectionSample],
    val: Sequence[DetectionSample],
    max_side: int = 1024,
    quality: int = 90,
    image_format: str = "jpg",
) -> dict[str, int]:
    """Write the pack of the module doc; returns ``{'photos', 'faces', 'bytes'}`` (bytes of the images).
    ``image_format``: 'jpg' or 'webp' (:data:`FORMATS`), at ``quality`` (1–100).

    Each photo is read once even when several samples name it; files are written atomically, the label
    files last, so an interrupted run leaves no label file that names missing images.
    """
    if max_side < 32:
        raise ConfigError(f"max_side must be at least 32 pixels, got {max_side}")
    if image_format not in FORMATS:
        raise ConfigError(f"image format must be one of {', '.join(FORMATS)}, got {image_format!r}")
    out = Path(out_dir)
    (out / IMAGES).mkdir(parents=True, exist_ok=True)
    names: dict[str, tuple[str, float, float]] = {}
    parts: dict[str, list[DetectionSample]] = {part: [] for part in PARTS}
    written = 0
    for part, samples in zip(PARTS, (train, val), strict=True):
        for sample in samples:
            if sample.image not in names:
                name = f"{len(names):06d}.{image_format}"
                factors = _write_photo(sample.image, out / IMAGES / name, max_side, quality)
                names[sample.image] = (name, *factors)
                written += (out / IMAGES / name).stat().st_size
            name, fx, fy = names[sample.image]
            parts[part].append(scaled_sample(sample, str(out / IMAGES / name), fx, fy))
    for part, samples in parts.items():
        write_retinaface_labels(out / f"{part}.txt", samples, out)
    faces = sum(s.num_faces for samples in parts.values() for s in samples)
    return {"photos": len(names), "faces": faces, "bytes": written}


def _write_photo(source: str, target: Path, max_side: int, quality: int) -> tuple[float, float]:
    """Downscale (area interpolation) and encode one photo (format from the suffix); returns the per-axis factors."""
    image = read_image(source)
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(target.suffix, image, [FORMATS[target.suffix[1:]], quality])
    if not ok:
        raise ConfigError(f"{source}: could not encode the photo as {target.suffix[1:]}")
    atomic_write_bytes(target, encoded.tobytes())
    return image.shape[1] / width, image.shape[0] / height
