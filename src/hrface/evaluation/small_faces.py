"""A reproducible small-face test made from held-out annotated photos: mosaics of the photos, scaled down.

Test image ``i`` of a test with seed ``s`` is a :data:`CANVAS` (1600 × 1200 px) mosaic built with the
training mosaic code (:func:`hrface.data.detection.canvas.build_canvas`, no colour jitter) from the
generator ``numpy.random.default_rng([s, i])``, so each image depends on the photos, the seed and its
index only (not on how many images are made):

- a grid ``g`` drawn from :data:`GRIDS` (2 × 2, 3 × 3 or 4 × 4 cells of 800 × 600 … 400 × 300 px);
- ``g²`` different photos drawn from the given ones (with repeats only when there are fewer photos);
- each photo scaled so that one of its faces, drawn at random, is :data:`FACE_SIZE` = 12–200 px
  (√(width × height) of its box, log-uniform: about a quarter of those faces in each of the size
  buckets < 24, 24–48, 48–96, ≥ 96 px), cut to its cell and pasted at a random place in it on a
  mean-coloured background; faces under :data:`MIN_FACE` (8 px) are left out of the ground truth.

The ground truth is the photos' annotation (boxes and 5 keypoints) mapped exactly with the pixels. Use
only photos that no evaluated model was trained on (the validation photos of a split file).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from ..data.detection.canvas import CanvasOptions, Faces, build_canvas
from ..data.detection.labels import write_retinaface_labels
from ..data.detection.samples import DetectionSample
from ..errors import ConfigError
from ..io.files import atomic_write_bytes
from ..io.image import read_image

CANVAS = (1600, 1200)  # width, height in pixels
GRIDS = (2, 3, 4)
FACE_SIZE = (12.0, 200.0)
MIN_FACE = 8.0
PathLike = str | os.PathLike[str]


def small_face_image(
    photos: Sequence[DetectionSample], index: int, seed: int = 0, backgrounds: Sequence[PathLike] | None = None
) -> tuple[np.ndarray, DetectionSample]:
    """Test image ``index`` (module doc): the BGR canvas and its faces in canvas pixels (``image`` is
    ``small_faces/NNNNNN.jpg``, a name for reports and :func:`save_small_face_test`).

    ``backgrounds``: face-free images; each canvas then starts from one of them (drawn by a generator of its
    own, ``[seed, index, 1]``, so that the photos and their places are those of the test without)."""
    if not photos:
        raise ConfigError("the small-face test needs at least one annotated photo")
    rng = np.random.default_rng([seed, index])
    grid = int(GRIDS[int(rng.integers(len(GRIDS)))])
    chosen = rng.choice(len(photos), grid * grid, replace=len(photos) < grid * grid)
    tiles = [(read_image(photos[i].image), Faces.of(photos[i])) for i in chosen]
    options = CanvasOptions(face_size=FACE_SIZE, min_face=MIN_FACE)
    background = None
    if backgrounds:
        background = read_image(backgrounds[int(np.random.default_rng([seed, index, 1]).integers(len(backgrounds)))])
    canvas, faces = build_canvas(tiles, CANVAS, grid, rng, options, background=background)
    truth = DetectionSample(
        image=f"small_faces/{index:06d}.jpg",
        boxes=faces.boxes,
        keypoints=faces.keypoints,
        has_keypoints=faces.has_keypoints,
        photo=f"{index:06d}",
        subset="small_faces",
    )
    return canvas, truth


def small_face_test(
    photos: Sequence[DetectionSample], count: int, seed: int = 0, backgrounds: Sequence[PathLike] | None = None
) -> Iterator[tuple[np.ndarray, DetectionSample]]:
    """Test images 0 … ``count − 1``, made one at a time (a 1600 × 1200 canvas is 5.8 MB)."""
    for index in range(count):
        yield small_face_image(photos, index, seed, backgrounds)


def save_small_face_test(
    out_dir: str | os.PathLike[str],
    photos: Sequence[DetectionSample],
    count: int,
    seed: int = 0,
    backgrounds: Sequence[PathLike] | None = None,
    quality: int = 95,
) -> Path:
    """Write the test images (JPEG) and their faces (RetinaFace ``label.txt``) to ``out_dir``, for inspection
    and timing; evaluations use the exact in-memory images. Returns the label file's path."""
    out = Path(out_dir)
    truths = []
    for canvas, truth in small_face_test(photos, count, seed, backgrounds):
        path = out / Path(truth.image).name
        ok, encoded = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise ConfigError(f"{path}: could not encode the test image")
        atomic_write_bytes(path, encoded.tobytes())
        truths.append(
            DetectionSample(str(path), truth.boxes, truth.keypoints, truth.has_keypoints, truth.photo, truth.subset)
        )
    labels = out / "label.txt"
    write_retinaface_labels(labels, truths, out)
    return labels
