"""Head pose (yaw, pitch, roll) from 2-D landmarks: ``cv2.solvePnP`` against a 3-D mean face.

**Model.** ``mean_face_68.json`` beside this module: a rigid, mirror-symmetric 68-point face derived by
``scripts/derive_mean_face.py`` from the 300W training annotations in ``../shared`` (factorisation, see that
script).  Axes are those of the OpenCV camera frame for an upright frontal face: x from the image-left to
the image-right side, y down (eyes → mouth), z away from the camera (the nose tip has the smallest z); the
outer eye corners (36, 45) are 1.0 apart and the origin is the centroid of the 68 points.  The eye centres
and mouth corners lie in one plane parallel to x–y.  The 5-point model is (image-left eye centre =
mean of 36–41, image-right eye centre = mean of 42–47, nose tip 30, mouth corners 48 / 54), the points
hrface derives as keypoints from 68 landmarks.  :func:`face_pose` picks the points of a face: its 68 landmarks
when it has them, else its 5 keypoints.

**Camera.** Pinhole, focal length ``f = max(width, height)`` pixels in x and y, principal point at the image
centre ``((width - 1) / 2, (height - 1) / 2)`` (0-based pixel centres, as everywhere in hrface), no
distortion.  The fit: ``SOLVEPNP_SQPNP`` (global, no seed needed), refined by ``SOLVEPNP_ITERATIVE``
(Levenberg–Marquardt) from that seed.

**Angles** (degrees) describe the rotation ``R`` (model → camera, ``X_cam = R X_model + t``).  With
``R' = F R F``, ``F = diag(1, -1, -1)`` (the same rotation in axes x right, y up, z towards the viewer),
``R' = Rz(roll) · Ry(yaw) · Rx(-pitch)``:

- ``yaw > 0``: the face turns towards the image's right (the nose moves right; the subject's own left);
- ``pitch > 0``: the face looks up (the nose moves up in the image);
- ``roll > 0``: the face is turned counter-clockwise in the image as displayed.  Rotating all points about
  the image centre by θ counter-clockwise adds exactly θ to roll; mirroring the image negates yaw and roll.

All three are 0 for the mean face seen frontally and upright on the optical axis.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import ConfigError, InputError

MEAN_FACE_FILE = Path(__file__).with_name("mean_face_68.json")
LAYOUTS = ("68", "5")


@dataclass(frozen=True)
class Pose:
    """Head pose of one face (see the module docstring for the conventions).

    Attributes:
        yaw, pitch, roll: degrees.
        rotation: (3, 3) float64 ``R``, mean-face model → OpenCV camera frame.
        translation: (3,) float64 ``t`` in mean-face units (outer eye corners 1.0 apart), camera frame.
    """

    yaw: float
    pitch: float
    roll: float
    rotation: np.ndarray = field(repr=False, compare=False)
    translation: np.ndarray = field(repr=False, compare=False)

    def to_dict(self, decimals: int = 2) -> dict[str, float]:
        """``{"yaw": …, "pitch": …, "roll": …}`` rounded to ``decimals`` (degrees)."""
        return {name: round(float(getattr(self, name)), decimals) for name in ("yaw", "pitch", "roll")}


@cache
def mean_face_68() -> np.ndarray:
    """The (68, 3) float64 mean face (read-only; read once from :data:`MEAN_FACE_FILE`)."""
    points = np.asarray(json.loads(MEAN_FACE_FILE.read_text())["points"], dtype=np.float64)
    if points.shape != (68, 3):
        raise ConfigError(f"{MEAN_FACE_FILE}: expected 68 points of 3 coordinates, got {points.shape}")
    points.setflags(write=False)
    return points


def mean_face_5() -> np.ndarray:
    """(5, 3) float64: the mean face's eye centres, nose tip 30 and mouth corners 48 / 54 (keypoint order)."""
    p = mean_face_68()
    return np.stack([p[36:42].mean(axis=0), p[42:48].mean(axis=0), p[30], p[48], p[54]])


def camera_matrix(image_size: tuple[int, int]) -> np.ndarray:
    """(3, 3) intrinsics for an image of ``(width, height)`` pixels: ``f = max(width, height)``, centre
    ``((width - 1) / 2, (height - 1) / 2)``."""
    width, height = (float(v) for v in image_size)
    if not (width > 0 and height > 0 and math.isfinite(width + height)):
        raise InputError(f"image_size must be a positive (width, height), got {tuple(image_size)}")
    f = max(width, height)
    return np.array([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])


def pose_from_rotation(rotation: np.ndarray, translation: np.ndarray | None = None) -> Pose:
    """The :class:`Pose` of a model → camera rotation ``R`` (3, 3) (angles as in the module docstring)."""
    r = np.asarray(rotation, dtype=np.float64)
    flipped = r * np.array([[1.0, -1.0, -1.0], [-1.0, 1.0, 1.0], [-1.0, 1.0, 1.0]])  # F R F
    yaw = math.degrees(math.atan2(-flipped[2, 0], math.hypot(flipped[2, 1], flipped[2, 2])))
    pitch = -math.degrees(math.atan2(flipped[2, 1], flipped[2, 2]))
    roll = math.degrees(math.atan2(flipped[1, 0], flipped[0, 0]))
    t = np.zeros(3) if translation is None else np.asarray(translation, dtype=np.float64).reshape(3)
    return Pose(yaw=yaw, pitch=pitch, roll=roll, rotation=r, translation=t)


def rotation_from_angles(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """(3, 3) model → camera rotation ``R`` of a head pose given by its angles in degrees, the inverse of
    :func:`pose_from_rotation`: ``F R F = Rz(roll) · Ry(yaw) · Rx(−pitch)``, ``F = diag(1, −1, −1)``."""
    a, b, c = np.radians([-pitch, yaw, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    flip = np.diag([1.0, -1.0, -1.0])
    return flip @ rz @ ry @ rx @ flip


def angle_difference(a: Any, b: Any) -> np.ndarray:
    """``|a − b|`` in degrees, wrapped to [0, 180] (179° and −179° are 2° apart); element-wise."""
    return np.abs((np.asarray(a, float) - np.asarray(b, float) + 180.0) % 360.0 - 180.0)


def head_pose(points_2d: Any, image_size: tuple[int, int], *, layout: str = "68") -> Pose | None:
    """Head pose from image points, or None when the fit fails (degenerate or non-finite input or result).

    Args:
        points_2d: (68, 2) landmarks (``layout="68"``, 300W order) or (5, 2) keypoints (``layout="5"``:
            image-left eye, image-right eye, nose tip, image-left / image-right mouth corner), pixels.
        image_size: ``(width, height)`` of the image in pixels (defines the camera, module docstring).
        layout: ``"68"`` or ``"5"``.

    One SQPnP solve plus a Levenberg–Marquardt refinement per call (a fraction of a millisecond).
    """
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown pose layout {layout!r}; use '68' (landmarks) or '5' (keypoints)")
    model = mean_face_68() if layout == "68" else mean_face_5()
    points = np.asarray(points_2d, dtype=np.float64)
    if points.shape != (len(model), 2):
        raise InputError(f"layout {layout!r} needs points of shape ({len(model)}, 2), got {points.shape}")
    if not np.isfinite(points).all() or np.ptp(points, axis=0).max() < 1e-3:
        return None
    camera = camera_matrix(image_size)
    image_points = np.ascontiguousarray(points)
    try:
        ok, rvec, tvec = cv2.solvePnP(model, image_points, camera, None, flags=cv2.SOLVEPNP_SQPNP)
        if ok:
            ok, rvec, tvec = cv2.solvePnP(
                model, image_points, camera, None, rvec, tvec, useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE
            )
    except cv2.error:
        return None
    if not ok or not (np.isfinite(rvec).all() and np.isfinite(tvec).all()) or tvec[2, 0] <= 0:
        return None
    return pose_from_rotation(cv2.Rodrigues(rvec)[0], tvec)


def face_pose(landmarks: Any, keypoints: Any, image_size: tuple[int, int]) -> Pose | None:
    """Head pose of one face: from its ``landmarks`` when they are 68 points (300W order), else from its 5
    ``keypoints`` (the detector's order); None when it has neither or the fit fails (see :func:`head_pose`).

    The one place where a face's pose is computed: :class:`~hrface.FaceAnalyzer` (raw points) and
    :class:`~hrface.video.VideoAnalyzer` (smoothed points) both call it.  ``image_size`` is ``(width, height)``.
    """
    if landmarks is not None and len(landmarks) == 68:
        return head_pose(landmarks, image_size, layout="68")
    if keypoints is not None:
        return head_pose(keypoints, image_size, layout="5")
    return None
