"""Appearance augmentation of landmark training crops: colour, blur, JPEG artefacts and occluders.

These change pixels only, never geometry, so the heatmap targets stay as they are (an occluded point
keeps its target: the model learns to infer it from the rest of the face, as it must at inference).
They act on the (S, S, 3) uint8 BGR crop, after the geometric warp, in this order:

1. colour: brightness, contrast and saturation factors, each U(1 - c, 1 + c);
2. Gaussian blur with probability ``blur_prob``, σ U(0.3, 1.5) × S / 128 pixels (out of focus, motion-free);
3. JPEG re-encoding with probability ``jpeg_prob`` at quality U(20, 90);
4. an occluding rectangle with probability ``occlusion_prob``: sides U(0.15, 0.45) × S, anywhere in the
   crop, filled with one random colour (a hand, a microphone, a sticker).

Every call draws the same fifteen numbers from ``rng`` in the same order, so turning one option on or off
never changes the random values of another.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AppearanceParams:
    """Strengths and probabilities; 0 turns an augmentation off (see the module doc)."""

    color: float = 0.0
    blur_prob: float = 0.0
    jpeg_prob: float = 0.0
    occlusion_prob: float = 0.0

    @property
    def active(self) -> bool:
        return any(v > 0 for v in (self.color, self.blur_prob, self.jpeg_prob, self.occlusion_prob))


def augment_appearance(crop_bgr: np.ndarray, params: AppearanceParams, rng: np.random.Generator) -> np.ndarray:
    """A new (S, S, 3) uint8 BGR crop with ``params``' random appearance changes (module doc)."""
    u = rng.random(15)
    size = crop_bgr.shape[0]
    out = crop_bgr
    if params.color > 0:
        out = _color(out, *(1.0 + params.color * (2.0 * u[:3] - 1.0)))
    if u[3] < params.blur_prob:
        sigma = (0.3 + 1.2 * u[4]) * size / 128.0
        radius = max(1, int(np.ceil(3.0 * sigma)))  # OpenCV's own kernel size is a no-op below σ ≈ 0.35
        out = cv2.GaussianBlur(out, (2 * radius + 1, 2 * radius + 1), sigmaX=sigma)
    if u[5] < params.jpeg_prob:
        quality = int(20 + 70 * u[6])
        ok, encoded = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            out = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    if u[7] < params.occlusion_prob:
        out = _occlude(out, u[8:10], u[10:12], np.floor(256 * u[12:15]).astype(np.uint8))
    return np.ascontiguousarray(out)


def _color(crop: np.ndarray, brightness: float, contrast: float, saturation: float) -> np.ndarray:
    """Scale brightness, then contrast about the mean grey, then saturation about each pixel's grey."""
    img = crop.astype(np.float32) * brightness
    grey = img @ np.asarray([0.114, 0.587, 0.299], np.float32)  # BGR luma weights
    img = (img - grey.mean()) * contrast + grey.mean()
    grey = (img @ np.asarray([0.114, 0.587, 0.299], np.float32))[..., None]
    img = (img - grey) * saturation + grey
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _occlude(crop: np.ndarray, u_size: np.ndarray, u_place: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Fill a rectangle of sides U(0.15, 0.45) × S (from ``u_size``) at a place inside the crop drawn
    from ``u_place`` with ``colour``."""
    size = crop.shape[0]
    w, h = (np.round(size * (0.15 + 0.3 * u_size))).astype(int)
    x0, y0 = (np.asarray([size - w, size - h]) * u_place).astype(int)
    out = crop.copy()
    out[y0 : y0 + h, x0 : x0 + w] = colour
    return out
