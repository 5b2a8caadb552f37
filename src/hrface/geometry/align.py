"""Aligned face crops (ArcFace 5-point similarity, FFHQ oriented quad) from keypoints or 68 landmarks.

Coordinates follow hrface (see :mod:`hrface.landmarks.crop`): 0-based pixel centres, ``(x, y)`` points.
Every matrix ``M`` (2×3 float64) maps image pixels to crop pixels, ``[u, v] = M[:, :2] @ [x, y] + M[:, 2]``,
so ``cv2.warpAffine(image, M, (size, size))`` (bilinear, black border) gives the crop.

The 5 source points are the detector's keypoints (image-left eye, image-right eye, nose tip, image-left and
image-right mouth corner) or, from dense landmarks, the 5 points hrface derives from them
(:meth:`~hrface.landmarks.layouts.LandmarkLayout.five_points`; 68 points: eye centres = means of 36–41 and
42–47, nose tip 30, mouth corners 48 / 54).  Landmarks win when both are given.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ..errors import ConfigError, InputError
from ..landmarks.layouts import LAYOUTS

TEMPLATES = ("arcface", "ffhq")
DEFAULT_CROP_SIZES = {"arcface": 112, "ffhq": 512}
"""The crop side (pixels) of each template when none is asked for: its native size."""
MIN_SIZE = 16

ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)
"""The standard ArcFace template for 112×112 crops, in keypoint order (crop pixel coordinates)."""


def arcface_template(size: int = 112) -> np.ndarray:
    """(5, 2) ArcFace template for a ``size``×``size`` crop: the 112-px template times ``size / 112``."""
    return ARCFACE_112 * (size / 112.0)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) ``src → dst`` by
    Umeyama's method: (N, 2) and (N, 2) points → (2, 3) float64 matrix."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    sc, dc = src - mu_s, dst - mu_d
    var_s = (sc**2).sum() / len(src)
    if not var_s > 1e-12:
        raise InputError("the face's points all coincide; cannot fit an alignment")
    u, d, vt = np.linalg.svd(dc.T @ sc / len(src))
    sign = np.array([1.0, 1.0 if np.linalg.det(u) * np.linalg.det(vt) >= 0 else -1.0])
    rotation = u @ np.diag(sign) @ vt
    scale = float((d * sign).sum() / var_s)
    return np.concatenate([scale * rotation, (mu_d - scale * rotation @ mu_s)[:, None]], axis=1)


def ffhq_quad(points5: np.ndarray) -> np.ndarray:
    """The FFHQ oriented quad (4, 2) ``TL, BL, BR, TR`` from 5 keypoints (eyes 0/1, mouth corners 3/4).

    The FFHQ recipe (``recreate_aligned_images``): ``x = eye_to_eye − rot90(eye_to_mouth)`` with
    ``rot90(v) = (−v_y, v_x)`` (a quarter turn clockwise as displayed, y down), so x points from the
    image-left to the image-right eye of an upright face; ``x`` is scaled to length
    ``max(2.0·|eye_to_eye|, 1.8·|eye_to_mouth|)``, ``y = rot90(x)`` points towards the mouth, and the
    centre is ``c = eye_avg + 0.1·eye_to_mouth``; corners ``c − x − y, c − x + y, c + x + y, c + x − y``.
    """
    p = np.asarray(points5, dtype=np.float64)
    eye_avg = (p[0] + p[1]) / 2
    eye_to_eye = p[1] - p[0]
    eye_to_mouth = (p[3] + p[4]) / 2 - eye_avg
    x = eye_to_eye - _rot90(eye_to_mouth)
    length = np.hypot(*x)
    if not length > 1e-9:
        raise InputError("the face's eyes and mouth coincide; cannot fit an FFHQ alignment")
    x *= max(2.0 * np.hypot(*eye_to_eye), 1.8 * np.hypot(*eye_to_mouth)) / length
    y = _rot90(x)
    c = eye_avg + 0.1 * eye_to_mouth
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def ffhq_matrix(points5: np.ndarray, size: int) -> np.ndarray:
    """(2, 3) image → crop matrix mapping the FFHQ quad's outer edges onto the crop's outer pixel edges:
    TL → (−0.5, −0.5), TR → (size − 0.5, −0.5), BL → (−0.5, size − 0.5) (so BR → (size − 0.5, size − 0.5))."""
    tl, bl, _, tr = ffhq_quad(points5)
    src = np.stack([tl, tr, bl])
    lo, hi = -0.5, size - 0.5
    dst = np.array([[lo, lo], [hi, lo], [lo, hi]])
    return np.linalg.solve(np.concatenate([src, np.ones((3, 1))], axis=1), dst).T


def align_face(
    image: np.ndarray,
    *,
    landmarks: Any = None,
    keypoints: Any = None,
    size: int = 112,
    template: str = "arcface",
) -> tuple[np.ndarray, np.ndarray]:
    """Cut an aligned ``size``×``size`` face crop out of ``image``.

    Args:
        image: (H, W, 3) uint8 array in any channel order (the crop keeps it).
        landmarks: (K, 2) dense landmarks of a known layout (68, 98, 29 or 19 points), pixels.
        keypoints: (5, 2) detector keypoints, pixels (used when ``landmarks`` is None).
        size: crop side in pixels (≥ 16).
        template: ``"arcface"``: the least-squares similarity (Umeyama, no reflection) of the 5 points onto
            :func:`arcface_template`; ``"ffhq"``: the FFHQ oriented quad (:func:`ffhq_quad`) mapped onto the
            whole crop (:func:`ffhq_matrix`; FFHQ itself uses 1024 px; its padding and blur are not done).

    Returns:
        The crop (size, size, 3) uint8 (bilinear; outside the image is black) and the (2, 3) float64 matrix
        image → crop (pixel-centre convention, ``cv2.warpAffine(image, M, (size, size))`` gives the crop).
    """
    if template not in TEMPLATES:
        raise ConfigError(f"unknown alignment template {template!r}; use one of {', '.join(TEMPLATES)}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < MIN_SIZE:
        raise ConfigError(f"alignment size must be an integer of at least {MIN_SIZE} pixels, got {size!r}")
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        got = f"{image.shape} {image.dtype}" if isinstance(image, np.ndarray) else type(image).__name__
        raise InputError(f"align_face needs an (H, W, 3) uint8 image array, got {got}")
    points5 = _five_points(landmarks, keypoints)
    size = int(size)
    if template == "arcface":
        matrix = similarity_transform(points5, arcface_template(size))
    else:
        matrix = ffhq_matrix(points5, size)
    crop = cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    return crop, matrix


def _five_points(landmarks: Any, keypoints: Any) -> np.ndarray:
    """The (5, 2) source points from landmarks (preferred) or keypoints; one-line errors otherwise."""
    if landmarks is not None:
        points = np.asarray(landmarks, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] not in LAYOUTS:
            known = ", ".join(str(n) for n in LAYOUTS)
            raise InputError(f"landmarks must have shape (K, 2) with K in {known}, got {points.shape}")
        five = LAYOUTS[points.shape[0]].five_points(points)
    elif keypoints is not None:
        five = np.asarray(keypoints, dtype=np.float64)
        if five.shape != (5, 2):
            raise InputError(f"keypoints must have shape (5, 2), got {five.shape}")
    else:
        raise InputError("align_face needs landmarks or keypoints")
    if not np.isfinite(five).all():
        raise InputError("the face's points are not all finite (NaN or infinity)")
    return five


def _rot90(v: np.ndarray) -> np.ndarray:
    """``(−v_y, v_x)``: a quarter turn, clockwise as displayed in y-down image coordinates."""
    return np.array([-v[1], v[0]])
