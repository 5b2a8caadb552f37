"""Draw detected faces (boxes, scores, track ids, 5 keypoints, dense landmarks, head-pose axes) on a BGR image.

Coordinates are float pixels, 0-based, ``(0, 0)`` at the centre of the top-left pixel; points are
drawn with sub-pixel precision (OpenCV's ``shift``) and anti-aliasing.  Line widths, point radii and
the font size scale with the image size, so annotations stay visible on a 4000-px photo without
swamping a 100-px crop.

**Pose axes.**  A face with a ``pose`` (:class:`hrface.geometry.pose.Pose`) gets the three axes of its head
frame drawn from the nose tip, in the axes its angles are defined in (:mod:`hrface.geometry.pose`): x to the
face's image-right side (red), y up (green), z out of the face towards the viewer, the way the nose points
(blue).  They are the columns of ``R · diag(1, −1, −1)`` (``R`` = ``pose.rotation``), projected
orthographically onto the image, each half the box width long at full length: a frontal upright face shows
x pointing right, y up and z as a dot; ``yaw > 0`` turns z towards the image's right, ``pitch > 0`` turns it
up.  The nearer axes are drawn over the farther ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from hrface.io.image import to_bgr

__all__ = ["AXIS_COLORS", "BOX_COLOR", "KEYPOINT_COLORS", "LANDMARK_COLOR", "TRACK_COLORS", "draw_faces", "track_color"]

BOX_COLOR = (0, 255, 0)
"""Box and score label colour (BGR): green."""
KEYPOINT_COLORS = ((255, 0, 0), (0, 0, 255), (0, 255, 255), (255, 0, 255), (255, 255, 0))
"""BGR colours of the 5 keypoints in order (left eye, right eye, nose, left / right mouth corner):
blue, red, yellow, magenta, cyan."""
LANDMARK_COLOR = (0, 140, 255)
"""Dense landmark dot colour (BGR): orange."""
TRACK_COLORS = (
    (0, 215, 255),
    (255, 191, 0),
    (180, 105, 255),
    (208, 224, 64),
    (80, 127, 255),
    (238, 130, 238),
    (140, 230, 240),
    (255, 144, 30),
    (144, 238, 144),
    (122, 160, 255),
)
"""Box and label colours (BGR) of tracked faces, by ``track_id`` modulo 10 (:func:`track_color`): gold, deep
sky blue, hot pink, turquoise, coral, violet, khaki, dodger blue, light green, light salmon — all light
enough for the black label text."""
AXIS_COLORS = ((0, 0, 255), (0, 255, 0), (255, 0, 0))
"""BGR colours of the head-pose axes x, y, z: red, green, blue."""

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


def track_color(track_id: int) -> tuple[int, int, int]:
    """The BGR colour of track ``track_id`` (≥ 0): :data:`TRACK_COLORS` cycled, the same in every frame."""
    return TRACK_COLORS[int(track_id) % len(TRACK_COLORS)]


def _track_id(face: Any) -> int | None:
    """The face's ``track_id`` when it is an int ≥ 0 (a :class:`~hrface.video.TrackedFace`'s), else None."""
    value = _get(face, "track_id")
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) and value >= 0:
        return int(value)
    return None


def _nose_tip(face: Any) -> np.ndarray | None:
    """(2,) the nose tip: landmark 30 of 68 landmarks, else keypoint 2; None when neither is finite."""
    for name, count, index in (("landmarks", 68, 30), ("keypoints", 5, 2)):
        value = _get(face, name)
        if value is None:
            continue
        pts = np.asarray(value, dtype=np.float64)
        if pts.ndim == 2 and pts.shape[0] == count and pts.shape[1] >= 2 and np.isfinite(pts[index, :2]).all():
            return pts[index, :2]
    return None


def _pose_axes(pose: Any) -> np.ndarray | None:
    """(3, 3) head axes x (image-right side), y (up), z (towards the viewer) in camera coordinates, one per
    row (see the module docstring); None without a finite rotation."""
    rotation = getattr(pose, "rotation", None)
    if rotation is None:
        return None
    r = np.asarray(rotation, dtype=np.float64)
    if r.shape != (3, 3) or not np.isfinite(r).all():
        return None
    return (r * np.array([1.0, -1.0, -1.0])).T  # columns of R · diag(1, -1, -1), as rows


def draw_faces(image_bgr: np.ndarray, faces: Sequence[object], fade: bool = True) -> np.ndarray:
    """Return an annotated copy of ``image_bgr`` (uint8 BGR ``H×W×3``; the input is not modified).

    Each face needs ``box`` (x1, y1, x2, y2 float pixels) and may have ``score`` (float, drawn
    with 2 decimals above the box), ``keypoints`` ((5, 2) or None; drawn as dots in
    :data:`KEYPOINT_COLORS`) and ``landmarks`` ((K, 2) or None; small dots in
    :data:`LANDMARK_COLOR`; with ``fade`` and the face's ``landmark_scores`` (K,) in [0, 1], each dot is
    blended with the pixel under it by its score, from 25 % opaque at score 0 to opaque at 1, so the points the
    model is unsure of fade out).  A ``track_id`` (int ≥ 0, as video faces have) is written as ``#ID`` before
    the score, and the box and label take the track's colour (:func:`track_color`) instead of
    :data:`BOX_COLOR`.  A ``pose`` (not None) adds the head-pose axes from the nose tip (landmark 30 of 68
    landmarks, else keypoint 2), in :data:`AXIS_COLORS` (see the module docstring).  Faces may also be
    mappings with those keys.  Non-finite coordinates are skipped.
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
        track_id = _track_id(face)
        color = BOX_COLOR if track_id is None else track_color(track_id)
        box = np.asarray(_get(face, "box"), dtype=np.float64).reshape(-1)
        box_ok = box.size >= 4 and np.isfinite(box[:4]).all()
        if box_ok:
            (x1, y1), (x2, y2) = _fixed(box[:4].reshape(2, 2), lo, hi).tolist()
            cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness, cv2.LINE_AA, _SHIFT)
            score = _get(face, "score")
            parts = [] if track_id is None else [f"#{track_id}"]
            if score is not None and np.isfinite(float(score)):
                parts.append(f"{float(score):.2f}")
            if parts:
                _label(out, " ".join(parts), box[0], box[1], font_scale, font_thick, color)

        landmarks = _as_points(_get(face, "landmarks"))
        if landmarks is not None:
            r = round(lm_radius * _ONE)
            colors = _landmark_colors(out, landmarks, _get(face, "landmark_scores") if fade else None)
            for (x, y), dot in zip(_fixed(landmarks, lo, hi).tolist(), colors, strict=True):
                cv2.circle(out, (x, y), r, dot, -1, cv2.LINE_AA, _SHIFT)

        pose = _get(face, "pose")
        if pose is not None and box_ok:
            _draw_axes(out, pose, _nose_tip(face), 0.5 * abs(box[2] - box[0]), thickness, lo, hi)

        keypoints = _as_points(_get(face, "keypoints"))
        if keypoints is not None:
            r = round(kp_radius * _ONE)
            for i, (x, y) in enumerate(_fixed(keypoints, lo, hi).tolist()):
                kp_color = KEYPOINT_COLORS[i % len(KEYPOINT_COLORS)]
                cv2.circle(out, (x, y), r, kp_color, -1, cv2.LINE_AA, _SHIFT)
    return out


def _landmark_colors(image: np.ndarray, points: np.ndarray, scores: Any) -> list[tuple[int, int, int]]:
    """BGR colour of each landmark dot: :data:`LANDMARK_COLOR`, or without per-point ``scores`` of the same
    length, blended with the image pixel under the point by opacity ``0.25 + 0.75 * score``."""
    s = None if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
    if s is None or s.size != len(points):
        return [LANDMARK_COLOR] * len(points)
    alpha = 0.25 + 0.75 * np.clip(np.nan_to_num(s, nan=0.0), 0.0, 1.0)
    h, w = image.shape[:2]
    cols = np.clip(np.rint(points[:, 0]), 0, w - 1).astype(int)
    rows = np.clip(np.rint(points[:, 1]), 0, h - 1).astype(int)
    under = image[rows, cols].reshape(len(points), -1)[:, :3].astype(np.float64)
    if under.shape[1] == 1:
        under = np.repeat(under, 3, axis=1)
    blend = alpha[:, None] * np.asarray(LANDMARK_COLOR, np.float64) + (1.0 - alpha[:, None]) * under
    return [tuple(int(v) for v in c) for c in np.rint(blend)]


def _draw_axes(
    img: np.ndarray, pose: Any, nose: np.ndarray | None, length: float, thick: int, lo: float, hi: float
) -> None:
    """The head-pose axes of ``pose`` from ``nose``, ``length`` pixels at full length (nothing when either
    is missing or the length is 0)."""
    axes = _pose_axes(pose)
    if axes is None or nose is None or not (np.isfinite(length) and length > 0):
        return
    start = _fixed(nose[None], lo, hi)[0].tolist()
    ends = _fixed(nose + length * axes[:, :2], lo, hi).tolist()
    for i in np.argsort(-axes[:, 2], kind="stable").tolist():  # farthest (largest camera z) first
        cv2.arrowedLine(img, tuple(start), tuple(ends[i]), AXIS_COLORS[i], thick, cv2.LINE_AA, _SHIFT, 0.2)


def _label(
    img: np.ndarray, text: str, x: float, y: float, scale: float, thick: int, color: tuple[int, int, int] = BOX_COLOR
) -> None:
    """Draw ``text`` on a filled ``color`` background just above (x, y), kept inside the image."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    h, w = img.shape[:2]
    pad = max(1, thick)
    left = int(min(max(round(x), 0), max(w - tw - 2 * pad, 0)))
    top = round(y) - th - base - 2 * pad
    if top < 0:  # no room above the box: put the label just inside its top edge
        top = max(round(y), 0)
    top = int(min(top, max(h - th - base - 2 * pad, 0)))
    cv2.rectangle(img, (left, top), (left + tw + 2 * pad, top + th + base + 2 * pad), color, -1)
    cv2.putText(img, text, (left + pad, top + pad + th), font, scale, (0, 0, 0), thick, cv2.LINE_AA)
