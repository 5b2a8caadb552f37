"""Peer face detectors for side-by-side timing: YuNet (OpenCV) and SCRFD-0.5GF (ONNX Runtime).

Both return boxes (N, 4) xyxy, scores (N,) and keypoints (N, 5, 2) in the pixels of the input image.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import cv2
import numpy as np

from ..ops import nms
from ..runtime.backends import import_onnxruntime, session_options
from ..runtime.detector import Detections
from .images import letterbox

Result = tuple[np.ndarray, np.ndarray, np.ndarray]


class YuNet:
    """``cv2.FaceDetectorYN`` for a fixed input size (w, h); pre/post-processing happen inside OpenCV."""

    def __init__(self, path: str | os.PathLike[str], size: tuple[int, int], threshold: float = 0.5) -> None:
        self.net = cv2.FaceDetectorYN.create(os.fspath(path), "", size, threshold, 0.3, 5000)

    def detect(self, image_bgr: np.ndarray) -> Result:
        _, rows = self.net.detect(image_bgr)
        rows = np.zeros((0, 15), np.float32) if rows is None else rows
        boxes = np.concatenate([rows[:, :2], rows[:, :2] + rows[:, 2:4]], axis=1)
        return boxes, rows[:, 14], rows[:, 4:14].reshape(-1, 5, 2)


class Scrfd:
    """SCRFD with 5 keypoints: fixed 1×3×640×640 input, outputs score/bbox/kps at strides 8, 16, 32.

    Pre-processing letterboxes the image into the top-left of the square (aspect kept, zero padding)
    and normalises RGB as (x − 127.5) / 128. Each stride-s cell has 2 anchors centred at (x·s, y·s);
    boxes are distances (left, top, right, bottom) × s from the centre, keypoints offsets × s.
    """

    strides = (8, 16, 32)
    anchors = 2

    def __init__(
        self, path: str | os.PathLike[str], threads: int | None = None, threshold: float = 0.5, nms_iou: float = 0.4
    ) -> None:
        ort = import_onnxruntime()
        options = session_options(threads)
        self.session = ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.side = int(self.session.get_inputs()[0].shape[2])
        self.threshold, self.nms_iou = threshold, nms_iou
        self.centres = np.concatenate([self._centres(s) for s in self.strides])  # (P, 2)
        self.scales = np.concatenate(
            [np.full((len(self._centres(s)), 1), s, np.float32) for s in self.strides]
        )  # (P, 1) stride of each anchor

    def _centres(self, stride: int) -> np.ndarray:
        cells = self.side // stride
        ys, xs = np.mgrid[0:cells, 0:cells].astype(np.float32) * stride
        return np.repeat(np.stack([xs.ravel(), ys.ravel()], axis=1), self.anchors, axis=0)

    def preprocess(self, image_bgr: np.ndarray) -> tuple[np.ndarray, float]:
        """Letterboxed, normalised (1, 3, side, side) float32 input and the resize factor."""
        canvas, scale = letterbox(image_bgr, self.side, self.side)
        blob = cv2.dnn.blobFromImage(canvas, 1.0 / 128, (self.side, self.side), (127.5, 127.5, 127.5), swapRB=True)
        return blob, scale

    def forward(self, blob: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {self.input_name: blob})

    def postprocess(self, outputs: list[np.ndarray], scale: float) -> Result:
        """Decode the 9 outputs (3 score, 3 box, 3 keypoint maps) → thresholded, NMS'd detections."""
        n = len(self.strides)
        scores = np.concatenate([o.reshape(-1) for o in outputs[:n]])
        keep = np.flatnonzero(scores > self.threshold)
        dist = np.concatenate([o.reshape(-1, 4) for o in outputs[n : 2 * n]])[keep] * self.scales[keep]
        kps = np.concatenate([o.reshape(-1, 10) for o in outputs[2 * n :]])[keep] * self.scales[keep]
        centres = self.centres[keep]
        boxes = np.concatenate([centres - dist[:, :2], centres + dist[:, 2:]], axis=1) / scale
        points = (centres[:, None, :] + kps.reshape(-1, 5, 2)) / scale
        order = nms(boxes, scores[keep], self.nms_iou)
        return boxes[order], scores[keep][order], points[order]

    def detect(self, image_bgr: np.ndarray) -> Result:
        blob, scale = self.preprocess(image_bgr)
        return self.postprocess(self.forward(blob), scale)


class PeerDetector:
    """A peer as a drop-in for :class:`~hrface.runtime.detector.Detector` in evaluations: ``detect(image)``
    returns :class:`~hrface.runtime.detector.Detections` in the photo's pixels. A photo whose longer side
    exceeds ``max_size`` is downscaled first (area interpolation), as hrface's detector does."""

    def __init__(self, name: str, detect: Callable[[np.ndarray], Result], max_size: int | None) -> None:
        self.name, self._detect, self.max_size = name, detect, max_size

    def detect(self, image_bgr: np.ndarray) -> Detections:
        height, width = image_bgr.shape[:2]
        scale = 1.0 if self.max_size is None else min(1.0, self.max_size / max(height, width))
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            image_bgr = cv2.resize(image_bgr, size, interpolation=cv2.INTER_AREA)
        boxes, scores, points = self._detect(image_bgr)
        return Detections(
            boxes=np.asarray(boxes, np.float32).reshape(-1, 4) / scale,
            scores=np.asarray(scores, np.float32).reshape(-1),
            keypoints=np.asarray(points, np.float32).reshape(-1, 5, 2) / scale,
        )


def yunet_detector(path: str | os.PathLike[str], max_size: int | None, threshold: float = 0.02) -> PeerDetector:
    """YuNet at each photo's own size (after the ``max_size`` cap); its input size follows the photo."""
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # OpenCV 5's new-engine notice
    yunet = YuNet(path, (320, 320), threshold)

    def detect(image_bgr: np.ndarray) -> Result:
        yunet.net.setInputSize((image_bgr.shape[1], image_bgr.shape[0]))
        return yunet.detect(image_bgr)

    return PeerDetector("YuNet", detect, max_size)


def scrfd_detector(path: str | os.PathLike[str], threshold: float = 0.02, threads: int | None = None) -> PeerDetector:
    """SCRFD-0.5GF: every photo letterboxed into its fixed 640 × 640 input, whatever the photo's size."""
    return PeerDetector("SCRFD-0.5GF", Scrfd(path, threads, threshold).detect, None)
