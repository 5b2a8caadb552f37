"""RetinaFace training augmentation (the reference Pytorch_Retinaface ``preproc``), with NumPy randomness.

Training pipeline, in the reference's order:

1. :func:`choose_crop`: a random square of side ``scale × short side`` (scale one of
   :data:`CROP_SCALES`), up to :data:`CROP_TRIES` tries; a try succeeds when at least one face lies
   entirely inside it and at least one face whose centre is strictly inside keeps a size
   ``min(w, h) × image_size / side > min_face_size`` (0 px, as the reference) after clipping. Only the
   faces whose centres are inside are kept (boxes clipped to the crop, keypoints clamped to it). When
   every try fails the whole image is the crop, with all of its faces.
2. :func:`distort_colors`: brightness, contrast, saturation and hue jitter.
3. :func:`pad_to_square`: pads at the right / bottom with the mean colour (only images that are not
   square, i.e. when no crop was found).
4. :func:`mirror`: horizontal flip with probability 0.5; the eyes and the mouth corners swap.
5. :func:`to_network_input`: resize to ``image_size`` with one of :data:`INTERPOLATIONS` at random,
   subtract the BGR mean, HWC → CHW float32.

Geometry follows the reference: coordinates are continuous pixels (pixel i spans [i, i+1)), so a
mirror maps x → W − x and the targets are divided by the square's side. Faces without area (zero or
negative width or height) are dropped at the end, so their box encoding stays finite. All randomness
comes from the :class:`numpy.random.Generator` passed in.
"""

from __future__ import annotations

import cv2
import numpy as np

from ...data.detection.canvas import Faces, crop
from ...data.detection.samples import MIRROR_KEYPOINTS
from ...ops import BGR_MEAN

__all__ = ["Faces", "augment", "crop", "distort_colors", "mirror", "prepare", "to_network_input"]

CROP_SCALES = (0.3, 0.45, 0.6, 0.8, 1.0)
CROP_TRIES = 250
INTERPOLATIONS = (cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_AREA, cv2.INTER_NEAREST, cv2.INTER_LANCZOS4)
BRIGHTNESS_DELTA = 32.0
CONTRAST_RANGE = (0.5, 1.5)
SATURATION_RANGE = (0.5, 1.5)
HUE_DELTA = 18  # OpenCV hue units (0–179)


def choose_crop(
    width: int,
    height: int,
    boxes: np.ndarray,
    rng: np.random.Generator,
    image_size: int = 640,
    min_face_size: float = 0.0,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The random square crop of step 1 (module doc): ``(roi, keep)`` or None when all tries fail.

    Args:
        width, height: image size in pixels.
        boxes: (M, 4) face boxes xyxy in pixels.
        min_face_size: a kept face must be larger than this (its shorter side, in pixels at ``image_size``).

    Returns:
        ``roi`` (4,) int64 ``x1 y1 x2 y2`` of the crop (side ``x2 − x1 = y2 − y1``) and ``keep`` (M,) bool,
        the faces whose centres lie strictly inside it and that are large enough. All
        :data:`CROP_TRIES` tries are drawn at once (3 numbers each) and the first success is taken.
    """
    tries = CROP_TRIES
    scales = np.asarray(CROP_SCALES)[rng.integers(len(CROP_SCALES), size=tries)]
    side = (scales * min(width, height)).astype(np.int64)  # truncated, as the reference's int()
    left = rng.integers(0, np.maximum(width - side, 1))
    top = rng.integers(0, np.maximum(height - side, 1))
    lt = np.stack([left, top], axis=1)[:, None, :]  # (T, 1, 2)
    rb = lt + side[:, None, None]
    b = np.asarray(boxes, dtype=np.float64).reshape(1, -1, 4)
    has_area = (b[..., 2] > b[..., 0]) & (b[..., 3] > b[..., 1])
    inside = (b[..., :2] >= lt).all(-1) & (b[..., 2:] <= rb).all(-1) & has_area  # (T, M)
    centres = (b[..., :2] + b[..., 2:]) / 2
    centred = ((centres > lt) & (centres < rb)).all(-1)
    clipped = np.minimum(b[..., 2:], rb) - np.maximum(b[..., :2], lt)  # (T, M, 2)
    large = clipped.min(-1) * image_size / np.maximum(side, 1)[:, None] > min_face_size
    keep = centred & large
    success = inside.any(1) & keep.any(1) & (side > 0)
    if not success.any():
        return None
    t = int(np.argmax(success))
    return np.concatenate([lt[t, 0], rb[t, 0]]), keep[t]


def distort_colors(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Photometric jitter of a uint8 BGR image (a new array), each step with probability 0.5:
    brightness ± :data:`BRIGHTNESS_DELTA`, contrast × U(0.5, 1.5), then in HSV saturation × U(0.5, 1.5)
    and hue ± :data:`HUE_DELTA`; with probability 0.5 contrast comes last (after HSV) instead of
    second. Values are clipped to [0, 255] and truncated to integers, as the reference does."""
    contrast_first = _coin(rng)
    out = image.copy()
    if _coin(rng):
        out = _affine(out, 1.0, rng.uniform(-BRIGHTNESS_DELTA, BRIGHTNESS_DELTA))
    if contrast_first and _coin(rng):
        out = _affine(out, rng.uniform(*CONTRAST_RANGE), 0.0)
    hsv = cv2.cvtColor(out, cv2.COLOR_BGR2HSV)
    if _coin(rng):
        hsv[:, :, 1] = _affine(hsv[:, :, 1], rng.uniform(*SATURATION_RANGE), 0.0)
    if _coin(rng):
        hsv[:, :, 0] = (hsv[:, :, 0].astype(np.int64) + rng.integers(-HUE_DELTA, HUE_DELTA + 1)) % 180
    out = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    if not contrast_first and _coin(rng):
        out = _affine(out, rng.uniform(*CONTRAST_RANGE), 0.0)
    return out


def _coin(rng: np.random.Generator) -> bool:
    return bool(rng.integers(2))


def _affine(values: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """``values × alpha + beta`` clipped to [0, 255], truncated to uint8."""
    return np.clip(values.astype(np.float64) * alpha + beta, 0.0, 255.0).astype(np.uint8)


def pad_to_square(image: np.ndarray, fill: tuple[float, float, float] = BGR_MEAN) -> np.ndarray:
    """The image at the top-left of a square of side max(H, W) filled with ``fill`` (BGR); square images as is."""
    height, width = image.shape[:2]
    if height == width:
        return image
    side = max(height, width)
    out = np.empty((side, side, 3), dtype=image.dtype)
    out[:] = np.asarray(fill, dtype=image.dtype)
    out[:height, :width] = image
    return out


def mirror(image: np.ndarray, faces: Faces) -> tuple[np.ndarray, Faces]:
    """Horizontal mirror of the image and its faces: x → W − x; boxes stay x1 < x2 and the keypoints are
    re-ordered with :data:`MIRROR_KEYPOINTS` so that point 0 is again the image-left eye."""
    width = image.shape[1]
    boxes = faces.boxes.copy()
    boxes[:, [0, 2]] = width - faces.boxes[:, [2, 0]]
    keypoints = faces.keypoints[:, list(MIRROR_KEYPOINTS)].copy()
    keypoints[..., 0] = width - keypoints[..., 0]
    return np.ascontiguousarray(image[:, ::-1]), Faces(boxes, keypoints, faces.has_keypoints)


def to_network_input(image: np.ndarray, image_size: int, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """(H, W, 3) uint8 BGR square → (3, S, S) float32 BGR minus :data:`~hrface.ops.BGR_MEAN`."""
    resized = cv2.resize(image, (image_size, image_size), interpolation=interpolation).astype(np.float32)
    resized -= np.asarray(BGR_MEAN, dtype=np.float32)
    return np.ascontiguousarray(resized.transpose(2, 0, 1))


def augment(
    image: np.ndarray,
    faces: Faces,
    rng: np.random.Generator,
    image_size: int = 640,
    min_face_size: float = 0.0,
) -> tuple[np.ndarray, Faces]:
    """The training pipeline of the module doc: uint8 BGR image and its faces (pixels) →
    ``(input (3, S, S) float32, faces normalised by the square's side)``; faces without area are dropped."""
    height, width = image.shape[:2]
    if not len(faces.boxes):  # a face-free image (hard negative): a random square, as a crop with faces would be
        side = int(CROP_SCALES[int(rng.integers(len(CROP_SCALES)))] * min(width, height))
        x1, y1 = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
        found = (np.array([x1, y1, x1 + side, y1 + side]), np.zeros(0, bool)) if side > 0 else None
    else:
        found = choose_crop(width, height, faces.boxes, rng, image_size, min_face_size)
    roi, keep = found if found is not None else (np.array([0, 0, width, height]), np.ones(len(faces.boxes), bool))
    image, faces = crop(image, faces.select(keep), roi)
    image = pad_to_square(distort_colors(image, rng))
    if _coin(rng):
        image, faces = mirror(image, faces)
    interpolation = INTERPOLATIONS[int(rng.integers(len(INTERPOLATIONS)))]
    return to_network_input(image, image_size, interpolation), normalised_faces(faces, image.shape[0])


def prepare(image: np.ndarray, faces: Faces, image_size: int = 640) -> tuple[np.ndarray, Faces]:
    """Without augmentation: faces clipped to the image, pad to square, resize (linear), subtract the mean;
    returns what :func:`augment` returns."""
    height, width = image.shape[:2]
    image, faces = crop(image, faces, np.array([0, 0, width, height]))
    image = pad_to_square(image)
    return to_network_input(image, image_size), normalised_faces(faces, image.shape[0])


def normalised_faces(faces: Faces, side: int) -> Faces:
    """The faces with area, boxes and keypoints divided by ``side`` (the square input's side in pixels)."""
    faces = faces.with_area()
    return Faces(faces.boxes / side, faces.keypoints / side, faces.has_keypoints)
