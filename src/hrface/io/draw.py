"""Draw detected faces (boxes, scores, 5 keypoints, dense landmarks) on a BGR image.

Coordinates are float pixels, 0-based, ``(0, 0)`` at the centre of the top-left pixel; points are
drawn with sub-pixel precision (OpenCV's ``shift``) and anti-aliasing.  Line widths, point radii and
the font size scale with the image size, so annotations stay visible on a 4000-px photo without
swamping a 100-px crop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from hrface.io.image import to_bgr

__all__ = ["BOX_COLOR", "KEYPOINT_COLORS", "LANDMARK_COLOR", "draw_faces"]

BOX_COLOR = (0, 255, 0)
"""Box and score label colour (BGR): green."""
KEYPOINT_COLORS = ((255, 0, 0), (0, 0, 255), (0, 255, 255), (255, 0, 255), (255, 255, 0))
"""BGR colours of the 5 keypoints in order (left eye, right eye, nose, left / right mouth corner):
blue, red, yellow, magenta, cyan."""
LANDMARK_COLOR = (0, 140, 255)
"""Dense landmark dot colour (BGR): orange."""

_SHIFT = 4  # fractional bits for cv2 sub-pixel drawing
_ONE = 1 << _SHIFT


def _get(face: Any, name: str) -> Any:
    """Attribute ``name`` of a face object (or key of a mapping); ``None`` when absent."""
    if isinstance(face, Mapping):
        return face.get(name)
    return getattr(face, name, None)


def _fixed(xy: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Float points (N, 2) → int fixed-point coordinates for ``shift=_SHIFT``.

    Clipped to [lo, hi] — a range strictly outside the image, so the visible drawing is unchanged
    while huge values cannot overflow OpenCV's int32 coordinates.
    """
    return np.rint(np.clip(xy, lo, hi) * _ONE).astype(np.int64)


def _as_points(value: Any) -> np.ndarray | None:
    """(K, 2) finite float points, or None for missing / unusable input."""
    if value is None:
        return None
    pts = np.asarray(value, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] < 2 or pts.shape[0] == 0:
        return None
    pts = pts[:, :2]
    return pts[np.isfinite(pts).all(axis=1)]


def draw_faces(image_bgr: np.ndarray, faces: Sequence[object]) -> np.ndarray:
    """Return an annotated copy of ``image_bgr`` (uint8 BGR ``H×W×3``; the input is not modified).

    Each face needs ``box`` (x1, y1, x2, y2 float pixels) and may have ``score`` (float, drawn
    with 2 decimals above the box), ``keypoints`` ((5, 2) or None; drawn as dots in
    :data:`KEYPOINT_COLORS`) and ``landmarks`` ((K, 2) or None; small dots in
    :data:`LANDMARK_COLOR`).  Faces may also be mappings with those keys.  Non-finite
    coordinates are skipped.
    """
    out = to_bgr(image_bgr, max_pixels=2**62)
    h, w = out.shape[:2]
    size = max(h, w)
    thickness = max(1, round(size / 500))
    kp_radius = max(1.5, size / 250)
    lm_radius = max(1.0, size / 700)
    font_scale = max(0.35, size / 1300)
    font_thick = max(1, round(font_scale * 1.5))
    lo, hi = -float(size) - 10.0, 2.0 * size + 10.0

    for face in faces:
        box = np.asarray(_get(face, "box"), dtype=np.float64).reshape(-1)
        if box.size >= 4 and np.isfinite(box[:4]).all():
            (x1, y1), (x2, y2) = _fixed(box[:4].reshape(2, 2), lo, hi).tolist()
            cv2.rectangle(out, (x1, y1), (x2, y2), BOX_COLOR, thickness, cv2.LINE_AA, _SHIFT)
            score = _get(face, "score")
            if score is not None and np.isfinite(float(score)):
                _label(out, f"{float(score):.2f}", box[0], box[1], font_scale, font_thick)

        landmarks = _as_points(_get(face, "landmarks"))
        if landmarks is not None:
            r = round(lm_radius * _ONE)
            for x, y in _fixed(landmarks, lo, hi).tolist():
                cv2.circle(out, (x, y), r, LANDMARK_COLOR, -1, cv2.LINE_AA, _SHIFT)

        keypoints = _as_points(_get(face, "keypoints"))
        if keypoints is not None:
            r = round(kp_radius * _ONE)
            for i, (x, y) in enumerate(_fixed(keypoints, lo, hi).tolist()):
                color = KEYPOINT_COLORS[i % len(KEYPOINT_COLORS)]
                cv2.circle(out, (x, y), r, color, -1, cv2.LINE_AA, _SHIFT)
    return out


def _label(img: np.ndarray, text: str, x: float, y: float, scale: float, thick: int) -> None:
    """Draw ``text`` on a filled box-coloured background just above (x, y), kept inside the image."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    h, w = img.shape[:2]
    pad = max(1, thick)
    left = int(min(max(round(x), 0), max(w - tw - 2 * pad, 0)))
    top = round(y) - th - base - 2 * pad
    if top < 0:  # no room above the box: put the label just inside its top edge
        top = max(round(y), 0)
    top = int(min(top, max(h - th - base - 2 * pad, 0)))
    cv2.rectangle(img, (left, top), (left + tw + 2 * pad, top + th + base + 2 * pad), BOX_COLOR, -1)
    cv2.putText(img, text, (left + pad, top + pad + th), font, scale, (0, 0, 0), thick, cv2.LINE_AA)
