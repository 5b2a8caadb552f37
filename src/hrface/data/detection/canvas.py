"""Mosaic and zoom-out images: photos scaled down so that their faces take a chosen size, on one canvas.

A canvas of ``width × height`` pixels filled with the mean colour (or a face-free ``background`` image) is
cut into ``grid × grid`` cells of ``width // grid × height // grid`` pixels (the remainder at the right and
bottom stays fill). Each cell receives one photo (:func:`place_photo`); ``grid`` 1 puts a single photo on the
canvas (zoom-out).

Placing a photo in a cell of ``cw × ch`` pixels:

1. **Scale.** A reference face is drawn among the photo's faces and a target size ``t`` log-uniformly
   in ``face_size`` (pixels on the canvas). The photo is scaled by ``k = min(t / s, 1)``, where ``s`` is
   the reference face's size (:func:`~hrface.ops.box_sizes`: √(width × height) of its box, the side of
   the square prior it matches best). Photos are never enlarged. A photo without faces gets ``k`` log-uniform in
   [0.1, 1].
2. **Window.** The part of the photo that fits the cell at that scale is cut out: a window of whole
   photo pixels of at most ``⌊cw / k⌋ × ⌊ch / k⌋``, placed at random among the positions that hold the
   whole reference face (centred on the face when none does).
3. **Paste.** The window is resized with area interpolation to ``round(window × k)`` (at most the cell)
   and pasted at a random position inside the cell. With a ``transform`` (training: the colour jitter of
   :func:`hrface.training.detection.augment.distort_colors`) each pasted window gets it first (each photo its own).

Faces follow exactly: the faces whose centres lie strictly inside the window are kept (boxes clipped to
the window, keypoints clamped to it: :func:`crop`, as the reference random crop does); then
``x' = x · w'/w + X`` and ``y' = y · h'/h + Y`` with the resize's own per-axis factors and the paste
position, in continuous pixel coordinates (pixel i spans [i, i + 1), the convention of ``cv2.resize``).
Faces whose size ends below ``min_face`` pixels are dropped: they become background, as every
unannotated face is. Below about 7 px that changes nothing in the loss (the smallest prior is 16 px, so
such a face's best prior IoU is under the matcher's 0.2 and it could never be a positive).

All randomness comes from the generator passed in, in a fixed order, so a canvas is a function of its
photos and the generator's seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from ...ops import BGR_MEAN, box_sizes
from .samples import DetectionSample

TileTransform = Callable[[np.ndarray, np.random.Generator], np.ndarray]
"""A change of each pasted window (uint8 BGR → uint8 BGR of the same shape), e.g. colour jitter."""


class Faces(NamedTuple):
    """The faces of one image: boxes (M, 4) xyxy, keypoints (M, 5, 2) (NaN where missing), has_keypoints (M,)."""

    boxes: np.ndarray
    keypoints: np.ndarray
    has_keypoints: np.ndarray

    @classmethod
    def of(cls, sample: DetectionSample) -> Faces:
        """The faces of a sample, as float64 copies (pixels)."""
        return cls(sample.boxes.astype(np.float64), sample.keypoints.astype(np.float64), sample.has_keypoints.copy())

    def select(self, mask: np.ndarray) -> Faces:
        return Faces(self.boxes[mask], self.keypoints[mask], self.has_keypoints[mask])

    def with_area(self) -> Faces:
        """The faces whose box has a positive width and height."""
        b = self.boxes
        return self.select((b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1]))


def crop(image: np.ndarray, faces: Faces, roi: np.ndarray) -> tuple[np.ndarray, Faces]:
    """The image inside ``roi`` (x1 y1 x2 y2, integers) and the faces in its pixels: boxes clipped to
    it, keypoints clamped to ``[0, roi size]`` (missing ones stay NaN)."""
    x1, y1, x2, y2 = (int(v) for v in roi)
    origin = np.array([x1, y1], dtype=np.float64)
    size = np.array([x2 - x1, y2 - y1], dtype=np.float64)
    boxes = np.concatenate(
        [np.maximum(faces.boxes[:, :2], origin), np.minimum(faces.boxes[:, 2:], origin + size)], axis=1
    ) - np.tile(origin, 2)
    keypoints = np.clip(faces.keypoints - origin, 0.0, size)
    return image[y1:y2, x1:x2], Faces(boxes, keypoints, faces.has_keypoints)


NO_FACE_SCALE = (0.1, 1.0)  # scale range of a photo without faces (log-uniform)


@dataclass(frozen=True)
class CanvasOptions:
    """How photos are scaled onto a canvas (module doc).

    Attributes:
        face_size: (low, high) target size of each photo's reference face, pixels on the canvas,
            drawn log-uniformly.
        min_face: faces smaller than this many pixels (√(w·h) on the canvas) are dropped.
    """

    face_size: tuple[float, float] = (10.0, 100.0)
    min_face: float = 8.0


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """A number log-uniformly distributed in [low, high] (both positive)."""
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def build_canvas(
    photos: Sequence[tuple[np.ndarray, Faces]],
    size: tuple[int, int],
    grid: int,
    rng: np.random.Generator,
    options: CanvasOptions = CanvasOptions(),
    transform: TileTransform | None = None,
    background: np.ndarray | None = None,
) -> tuple[np.ndarray, Faces]:
    """A ``size`` = (width, height) uint8 BGR canvas with ``photos[i]`` in cell i (row-major) and its faces
    in canvas pixels (module doc); needs ``grid²`` photos.

    ``transform`` changes each pasted window (e.g. colour jitter, drawing from ``rng``); ``background`` is a
    face-free uint8 BGR image resized (linear) to fill the canvas before the photos are pasted (None: the mean
    colour). Its pixels count as background: no face is ever taken from it."""
    width, height = size
    if len(photos) != grid * grid:
        raise ValueError(f"a {grid}x{grid} canvas needs {grid * grid} photos, got {len(photos)}")
    if background is None:
        canvas = np.empty((height, width, 3), np.uint8)
        canvas[:] = np.asarray(BGR_MEAN, np.uint8)
    else:
        canvas = cv2.resize(background, (width, height), interpolation=cv2.INTER_LINEAR)
    cell = (width // grid, height // grid)
    placed = []
    for i, (image, faces) in enumerate(photos):
        origin = ((i % grid) * cell[0], (i // grid) * cell[1])
        placed.append(place_photo(canvas, origin, cell, image, faces, rng, options, transform))
    return canvas, concat_faces(placed)


def place_photo(
    canvas: np.ndarray,
    origin: tuple[int, int],
    cell: tuple[int, int],
    image: np.ndarray,
    faces: Faces,
    rng: np.random.Generator,
    options: CanvasOptions,
    transform: TileTransform | None = None,
) -> Faces:
    """Paste ``image`` (uint8 BGR) scaled into the cell at ``origin`` (x, y) of size ``cell`` (w, h) of
    ``canvas``, in place; returns its kept faces in canvas pixels (steps in the module doc)."""
    height, width = image.shape[:2]
    faces = faces.with_area()
    sizes = box_sizes(faces.boxes)
    if len(sizes):
        ref = int(rng.integers(len(sizes)))
        scale = min(log_uniform(rng, *options.face_size) / sizes[ref], 1.0)
        ref_box = faces.boxes[ref]
    else:
        scale, ref_box = log_uniform(rng, *NO_FACE_SCALE), None
    win_w, win_h = (max(1, min(n, math.floor(c / scale))) for n, c in ((width, cell[0]), (height, cell[1])))
    x0 = _window_start(rng, width, win_w, None if ref_box is None else ref_box[[0, 2]])
    y0 = _window_start(rng, height, win_h, None if ref_box is None else ref_box[[1, 3]])
    roi = np.array([x0, y0, x0 + win_w, y0 + win_h])
    new_w, new_h = (max(1, min(c, round(n * scale))) for n, c in ((win_w, cell[0]), (win_h, cell[1])))
    window = image[y0 : y0 + win_h, x0 : x0 + win_w]
    tile = (
        window if (new_w, new_h) == (win_w, win_h) else cv2.resize(window, (new_w, new_h), interpolation=cv2.INTER_AREA)
    )
    if transform is not None:
        tile = transform(tile, rng)
    px = origin[0] + int(rng.integers(0, cell[0] - new_w + 1))
    py = origin[1] + int(rng.integers(0, cell[1] - new_h + 1))
    canvas[py : py + new_h, px : px + new_w] = tile
    centres = (faces.boxes[:, :2] + faces.boxes[:, 2:]) / 2
    inside = ((centres > roi[:2]) & (centres < roi[2:])).all(axis=1)
    _, kept = crop(image, faces.select(inside), roi)
    factor = np.array([new_w / win_w, new_h / win_h])
    offset = np.array([px, py], np.float64)
    moved = Faces(
        kept.boxes * np.tile(factor, 2) + np.tile(offset, 2), kept.keypoints * factor + offset, kept.has_keypoints
    )
    return moved.select(box_sizes(moved.boxes) >= max(options.min_face, 1e-9))


def _window_start(rng: np.random.Generator, length: int, window: int, face: np.ndarray | None) -> int:
    """First pixel of a ``window``-pixel span of ``length`` that holds ``face`` = (start, end) when it
    can (uniform over those positions), else centred on it; uniform anywhere without a face."""
    last = length - window
    if face is None:
        return int(rng.integers(0, last + 1))
    low, high = max(0, math.ceil(face[1]) - window), min(last, math.floor(face[0]))
    if low <= high:
        return int(rng.integers(low, high + 1))
    return int(np.clip(round((face[0] + face[1]) / 2 - window / 2), 0, last))


def concat_faces(parts: Sequence[Faces]) -> Faces:
    """The faces of several :class:`Faces` in one (empty parts allowed)."""
    if not parts:
        return Faces(np.zeros((0, 4)), np.zeros((0, 5, 2)), np.zeros(0, bool))
    return Faces(*(np.concatenate([getattr(p, name) for p in parts]) for name in Faces._fields))
