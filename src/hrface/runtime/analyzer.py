"""The one-call pipeline: image → faces (box, score, 5 keypoints) → dense landmarks in image coordinates → head pose."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..geometry.pose import face_pose
from ..io.image import to_bgr
from .detector import DEFAULT_DETECTOR, Detector, MaxSize, Threshold
from .faces import Face
from .inputs import image_batch
from .landmarker import DEFAULT_LANDMARKER, Landmarker

ModelArg = str | os.PathLike[str] | Any  # a name, a checkpoint or .onnx path, or an nn.Module


class FaceAnalyzer:
    """Detect faces and (optionally) their dense landmarks.

    >>> fa = FaceAnalyzer()                # the shipped models (ONNX Runtime; no torch needed)
    >>> faces = fa("photo.jpg")            # or an ndarray (BGR; rgb=True for RGB) or a PIL image
    >>> faces[0].box, faces[0].keypoints   # pixels of the original image
    >>> faces[0].landmarks                 # (68, 2) points; FaceAnalyzer(landmarker=None) detects only
    >>> faces[0].pose                      # yaw, pitch, roll in degrees (hrface.geometry.pose), or None

    Args:
        detector: a :class:`Detector`, a registry name, or a RetinaFace checkpoint path.
        landmarker: a :class:`Landmarker`, a registry name, an HRNet checkpoint path, or None for
            detection only.
        threshold, nms_iou, max_size, min_face: detector settings (see :class:`Detector`); ignored when a
            ready Detector is passed.
        device: 'cpu', or 'cuda', 'cuda:N' or 'auto' (:mod:`hrface.runtime.device`), for the models built here.
        backend: 'torch', 'onnxruntime' or 'auto' for the models built here (see
            :mod:`hrface.runtime.backends`); ``threads``: their intra-op threads (None: the default).
    """

    def __init__(
        self,
        detector: Detector | ModelArg = DEFAULT_DETECTOR,
        landmarker: Landmarker | ModelArg | None = DEFAULT_LANDMARKER,
        *,
        threshold: Threshold = "auto",
        nms_iou: float = 0.4,
        max_size: MaxSize = "auto",
        min_face: float = 0.0,
        device: Any = "cpu",
        backend: str = "auto",
        threads: int | None = None,
    ) -> None:
        run = {"device": device, "backend": backend, "threads": threads}
        if isinstance(detector, Detector):
            self.detector = detector
        else:
            options = {"threshold": threshold, "nms_iou": nms_iou, "max_size": max_size, "min_face": min_face}
            self.detector = Detector(detector, **options, **run)
        if landmarker is None or isinstance(landmarker, Landmarker):
            self.landmarker = landmarker
        else:
            self.landmarker = Landmarker(landmarker, **run)

    def __call__(self, image: Any, rgb: bool = False) -> list[Face]:
        """Faces in ``image`` (path, ndarray — BGR unless ``rgb`` — or PIL image), best score first."""
        return self.analyze(image, rgb)

    def analyze(self, image: Any, rgb: bool = False) -> list[Face]:
        """Faces in one image, best score first: a path, an array (BGR uint8 (H, W, 3), or anything else
        :func:`~hrface.io.image.to_bgr` accepts; RGB with ``rgb``) or a PIL image."""
        image_bgr = to_bgr(image, rgb=rgb, copy=False)
        return self._with_landmarks(image_bgr, self.detector.detect(image_bgr).to_faces())

    def analyze_batch(self, images: Sequence[Any], rgb: bool = False) -> list[list[Face]]:
        """Faces of several images (each as :meth:`analyze` takes it); same-size images share detector
        forward passes (:meth:`Detector.detect_batch`), and all faces of an image share landmark forward
        passes.  Every image is converted before any work starts: a bad one raises an error naming its index."""
        images_bgr = image_batch(images, rgb)
        detections = self.detector.detect_batch(images_bgr)
        return [self._with_landmarks(image, d.to_faces()) for image, d in zip(images_bgr, detections, strict=True)]

    def _with_landmarks(self, image_bgr: np.ndarray, faces: list[Face]) -> list[Face]:
        if self.landmarker is not None and faces:
            boxes = np.stack([face.box for face in faces])
            keypoints = np.stack([face.keypoints for face in faces])
            points, scores = self.landmarker.predict(image_bgr, boxes, keypoints)
            for face, face_points, face_scores in zip(faces, points, scores, strict=True):
                face.landmarks = face_points
                face.landmark_scores = face_scores
        size = (image_bgr.shape[1], image_bgr.shape[0])
        for face in faces:  # one solvePnP per face: from the 68 landmarks when there are, else the 5 keypoints
            face.pose = face_pose(face.landmarks, face.keypoints, size)
        return faces
