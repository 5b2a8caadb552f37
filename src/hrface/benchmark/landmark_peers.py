"""Peer landmark models for side-by-side evaluation: dlib's 68-point shape predictor.

dlib is never a dependency of hrface.  When a user has ``dlib`` (``pip install dlib-bin``) and the model
files of ``face-recognition-models`` installed, :class:`DlibLandmarks` runs dlib's 2014 ensemble of
regression trees (``shape_predictor_68_face_landmarks.dat``, trained on iBUG 300-W) on the same photos
as hrface; otherwise :func:`load_peer` raises :class:`PeerUnavailable` with a one-line message saying
what to install.

A peer has the interface :func:`hrface.evaluation.landmark_runs.predict_landmarks` needs
(``num_landmarks`` and ``predict(image_bgr, boxes) → (points, scores)``) and a ``detect`` that is a
:data:`~hrface.data.landmarks.detector_boxes.DetectFn`, so faces are matched to its own detections as
they are to hrface's (by the 5 keypoints, here taken from the peer's own 68 points).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import HrfaceError
from ..landmarks.layouts import get_layout

PEERS = ("dlib",)
PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"


class PeerUnavailable(HrfaceError):
    """The peer's package or model file is not installed (one line: what to install)."""


class DlibLandmarks:
    """dlib's HOG face detector and 68-point shape predictor (dlib's defaults: HOG with one 2× upsampling,
    as ``face_recognition`` runs it).  Points are dlib's whole-pixel positions, 0-based like hrface's."""

    name = "dlib"
    num_landmarks = 68

    def __init__(self, predictor_path: str | None = None, upsample: int = 1) -> None:
        try:
            import dlib
        except ImportError:
            raise PeerUnavailable(
                "the dlib peer needs dlib: pip install dlib-bin face-recognition-models (never an hrface dependency)"
            ) from None
        if predictor_path is None:
            predictor_path = _packaged_predictor()
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(predictor_path))
        self.upsample = int(upsample)
        self._layout = get_layout(68)

    def predict(self, image_bgr: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``points`` (N, 68, 2) float64 image pixels for boxes (N, 4) x1, y1, x2, y2, and ``scores`` (N, 68)
        of ones (dlib gives no per-point confidence)."""
        rgb = np.ascontiguousarray(image_bgr[..., ::-1])
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        points = np.zeros((len(boxes), 68, 2))
        for i, (x1, y1, x2, y2) in enumerate(boxes):
            rect = self._dlib.rectangle(int(round(x1)), int(round(y1)), int(round(x2)), int(round(y2)))
            shape = self._predictor(rgb, rect)
            points[i] = [(p.x, p.y) for p in shape.parts()]
        return points, np.ones(points.shape[:2])

    def detect(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """dlib's HOG detections: ``boxes`` (M, 4) and the 5 keypoints (M, 5, 2) of its own 68 points on
        each box (eye centres, nose tip, mouth corners), so faces can be matched like hrface's."""
        rgb = np.ascontiguousarray(image_bgr[..., ::-1])
        rects = self._detector(rgb, self.upsample)
        boxes = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], dtype=np.float64).reshape(-1, 4)
        points, _ = self.predict(image_bgr, boxes)
        five = np.stack([self._layout.five_points(p) for p in points]) if len(points) else np.zeros((0, 5, 2))
        return boxes, five


def _packaged_predictor() -> Path:
    """dlib's 68-point model file inside the ``face_recognition_models`` package, found without importing
    it (its ``__init__`` needs ``pkg_resources``, which current setuptools no longer ships)."""
    spec = importlib.util.find_spec("face_recognition_models")
    path = None if spec is None or spec.origin is None else Path(spec.origin).parent / "models" / PREDICTOR_FILE
    if path is None or not path.is_file():
        raise PeerUnavailable("the dlib peer needs dlib's 68-point model file: pip install face-recognition-models")
    return path


def load_peer(name: str) -> Any:
    """The peer ``name`` (one of :data:`PEERS`); :class:`PeerUnavailable` when it is not installed."""
    if name == "dlib":
        return DlibLandmarks()
    raise PeerUnavailable(f"unknown landmark peer {name!r}; known: {', '.join(PEERS)}")
