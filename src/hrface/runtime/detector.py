"""Face detection with RetinaFace: pre-processing, forward pass, decoding and NMS."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..errors import ConfigError
from ..io.image import to_bgr
from ..landmarks.heatmaps import as_numpy
from ..ops import decode_boxes, decode_landmarks, nms, prior_boxes
from .backends import create_runner
from .faces import Face
from .inputs import image_batch
from .large_faces import COARSE_SCORE_FACTOR, CoarsePass, merge_passes

DEFAULT_DETECTOR = "hrface_retinaface_mnet025_300w_v3"  # shipped in the package (model card beside the file)
log = logging.getLogger("hrface")

DEFAULT_MAX_SIZE = 1920  # longer image side (pixels) above which photos are downscaled, unless the model says
MaxSize = int | str | None  # pixels, "auto" (the model's own size, else DEFAULT_MAX_SIZE) or None (original)
DEFAULT_THRESHOLD = 0.5  # minimum face score, unless the model records its own (score_threshold metadata)
Threshold = float | str  # a score in [0, 1] or "auto" (the model's own threshold, else DEFAULT_THRESHOLD)


def parse_max_size(text: str) -> MaxSize:
    """A ``max_size`` written as text (the ``--max-size`` option, the server's ``max_size`` query): 'auto' →
    'auto', 'none' → None, else a whole number of pixels (at least 32); anything else raises ``ValueError``."""
    if text.lower() in ("auto", "none"):
        return None if text.lower() == "none" else "auto"
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"expected a number of pixels, 'auto' or 'none', got {text!r}") from None
    if value < 32:
        raise ValueError(f"must be at least 32 pixels, got {value}")
    return value


LINEAR_DOWNSCALE = 0.5  # downscaling by a factor at least this uses bilinear interpolation, below it area


def downscale_interpolation(scale: float) -> int:
    """OpenCV interpolation for downscaling an image by ``scale`` (< 1) before detection.

    Bilinear down to half size, area averaging below: OpenCV's area resize at a non-integer factor near 1
    costs 9× the bilinear one (1,024 → 960 px: 7.4 against 0.8 ms), and on the held-out photos and the
    small-face test the detections are the same (recall 100 % and 86.7 % both; README, "Performance").
    Below half size bilinear would skip pixels (aliasing); area averages them.
    """
    return cv2.INTER_LINEAR if scale >= LINEAR_DOWNSCALE else cv2.INTER_AREA


@dataclass
class Detections:
    """Raw detections of one image in original-image pixels: boxes (N, 4) xyxy, scores (N,), keypoints (N, 5, 2)."""

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray

    def select(self, keep: np.ndarray) -> Detections:
        """The detections where the boolean (N,) ``keep`` is true, in order."""
        return Detections(self.boxes[keep], self.scores[keep], self.keypoints[keep])

    def to_faces(self) -> list[Face]:
        rows = zip(self.boxes, self.scores, self.keypoints, strict=True)
        return [Face(box=box, score=float(score), keypoints=points) for box, score, points in rows]


class Detector:
    """RetinaFace face detector.

    Args:
        model: registry name, checkpoint path, ``.onnx`` file (from ``hrface export``), or a ready
            :class:`~hrface.models.retinaface.RetinaFace`.
        threshold: minimum face score of a returned detection; ``"auto"`` takes the threshold the model's
            weights record as ``score_threshold`` (the shipped detector's is chosen on its precision and recall:
            its model card), else :data:`DEFAULT_THRESHOLD` (0.5).
        min_face: smallest box side (pixels of the original image, ``min(x2 - x1, y2 - y1)``) of a returned
            detection; 0 keeps all.
        nms_iou: IoU above which the lower-scoring of two detections is suppressed.
        max_size: images whose longer side exceeds this many pixels are downscaled (:func:`downscale_interpolation`)
            before detection; results are mapped back to original pixels. ``None`` keeps the original
            size; ``"auto"`` takes the size the model was trained for when its weights record one
            (hrface's own detector: 960), else :data:`DEFAULT_MAX_SIZE`.
        top_k: at most this many candidates (best scores) enter NMS; ``keep_top_k``: at most this many leave it.
        device: 'cpu', or 'cuda', 'cuda:N', 'auto' (onnxruntime-gpu's CUDA provider, or ``hrface[torch]`` with a
            CUDA torch; :mod:`hrface.runtime.device`) or a ``torch.device``.
        backend: 'torch', 'onnxruntime' or 'auto' (see :mod:`hrface.runtime.backends`); the pre- and
            post-processing are the same for all.
        threads: intra-op threads of the backend (None: its default).
        batch_size: images per forward pass in :meth:`detect_batch`.
        large_faces: when the network input's shorter side exceeds 1.2 × the model's training input side
            (768 px for the published 640), also detect on the photo downscaled to a shorter side of the
            training size: faces larger than 0.8 × that size (at most 512 px, the largest prior) come from
            there, and the first pass's larger detections must be found there too (:mod:`.large_faces`).

    NMS uses the reference's inclusive-pixel area convention (``+1``) so results match the published
    pipeline. Calling a Detector returns a list of :class:`Face` without landmarks.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | Any = DEFAULT_DETECTOR,
        *,
        threshold: Threshold = "auto",
        nms_iou: float = 0.4,
        max_size: MaxSize = "auto",
        top_k: int = 5000,
        keep_top_k: int = 750,
        device: Any = "cpu",
        backend: str = "auto",
        threads: int | None = None,
        batch_size: int = 8,
        large_faces: bool = True,
        min_face: float = 0.0,
    ) -> None:
        if isinstance(min_face, bool) or not isinstance(min_face, (int, float)) or not 0 <= min_face < float("inf"):
            raise ConfigError(f"min_face must be a number of pixels >= 0, got {min_face!r}")
        if threshold != "auto" and (isinstance(threshold, (str, bool)) or not 0.0 <= threshold <= 1.0):
            raise ConfigError(f"threshold must be 'auto' or in [0, 1], got {threshold!r}")
        if not 0.0 < nms_iou <= 1.0:
            raise ConfigError(f"nms_iou must be in (0, 1], got {nms_iou}")
        if max_size is not None and max_size != "auto" and (not isinstance(max_size, int) or max_size < 32):
            raise ConfigError(f"max_size must be 'auto', None or at least 32 pixels, got {max_size!r}")
        self.runner = create_runner(model, "retinaface", backend=backend, device=device, threads=threads)
        self.device = self.runner.device
        self.model = self.runner.module  # the nn.Module, or None for an .onnx file
        self.mean, self.std = self.runner.info.mean, self.runner.info.std  # the model's input normalisation (BGR)
        if threshold == "auto":
            threshold = self.runner.info.score_threshold or DEFAULT_THRESHOLD
        self.threshold = float(threshold)
        self.nms_iou = nms_iou
        if max_size == "auto":
            max_size = self.runner.info.max_size or DEFAULT_MAX_SIZE
        self.max_size: int | None = max_size
        self.top_k = top_k
        self.keep_top_k = keep_top_k
        self.batch_size = max(1, int(batch_size))
        self.large_faces = bool(large_faces)
        self.min_face = float(min_face)
        self.coarse_pass = CoarsePass.for_train_size(self.runner.info.train_size)
        self.made_for = self.runner.info.max_size or DEFAULT_MAX_SIZE  # the longer input side (px) it is made for
        self._warned_large = False

    @property
    def backend(self) -> str:
        """The backend that runs the forward pass: 'torch' or 'onnxruntime'."""
        return self.runner.backend

    def __call__(self, image: Any, rgb: bool = False) -> list[Face]:
        """Detect faces in a path, ndarray (BGR unless ``rgb``) or PIL image."""
        return self.detect(image, rgb).to_faces()

    def input_scale(self, height: int, width: int) -> float:
        """Factor by which an image of this size is resized before the network (1.0 = original size)."""
        longest = max(height, width)
        if self.max_size is None or longest <= self.max_size:
            return 1.0
        return self.max_size / longest

    def resize(self, image_bgr: np.ndarray) -> tuple[np.ndarray, float]:
        """The image as the network sees it (downscaled above ``max_size``; see
        :func:`downscale_interpolation`) and the factor h/H."""
        scale = self.input_scale(*image_bgr.shape[:2])
        if scale != 1.0:
            h, w = image_bgr.shape[:2]
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            image_bgr = cv2.resize(image_bgr, size, interpolation=downscale_interpolation(scale))
        return image_bgr, scale

    def to_batch(self, images_bgr: Sequence[np.ndarray]) -> np.ndarray:
        """Same-size BGR uint8 images (h, w, 3) → float32 batch (N, 3, h, w) minus the model's mean (divided by its
        std, which is 1 for RetinaFace).

        One OpenCV subtraction per colour plane, written in place: the same values as NumPy's
        ``stack → transpose → astype → subtract``, 9× faster on a 960 × 720 image (0.8 against 7.2 ms)."""
        h, w = images_bgr[0].shape[:2]
        batch = np.empty((len(images_bgr), 3, h, w), np.float32)
        for planes, image in zip(batch, images_bgr, strict=True):
            for plane, channel, mean in zip(planes, cv2.split(image), self.mean, strict=True):
                cv2.subtract(channel, mean, dst=plane, dtype=cv2.CV_32F)
        if any(std != 1.0 for std in self.std):
            batch /= np.asarray(self.std, np.float32).reshape(1, 3, 1, 1)
        return batch

    def preprocess(self, image_bgr: np.ndarray) -> tuple[np.ndarray, float]:
        """BGR uint8 (H, W, 3) → mean-subtracted float batch (1, 3, h, w) and the resize factor h/H."""
        resized, scale = self.resize(image_bgr)
        return self.to_batch([resized]), scale

    def detect(self, image: Any, rgb: bool = False) -> Detections:
        """Detections of one image in its original pixel coordinates: a path, an array (BGR uint8 (H, W, 3),
        or anything else :func:`~hrface.io.image.to_bgr` accepts; RGB with ``rgb``) or a PIL image."""
        return self.detect_batch([to_bgr(image, rgb=rgb, copy=False)])[0]

    def detect_batch(self, images: Sequence[Any], rgb: bool = False) -> list[Detections]:
        """Detections of several images (each as :meth:`detect` takes it), in input order.

        Every image is converted before any work starts (a bad one raises an error naming its index).
        Images whose network input has the same size go through the network together, ``batch_size``
        at a time; images of other sizes form their own batches (no padding), so each result equals
        that of :meth:`detect` on the image alone.
        """
        images_bgr = image_batch(images, rgb)
        resized = [self.resize(image) for image in images_bgr]
        self._warn_if_too_large(resized)
        results = self._detect_resized(resized)
        if self.large_faces:
            results = self._add_coarse_pass(images_bgr, resized, results)
        if self.min_face > 0:
            results = [r.select(np.minimum(*(r.boxes[:, 2:] - r.boxes[:, :2]).T) >= self.min_face) for r in results]
        return results

    def _add_coarse_pass(
        self, images_bgr: Sequence[np.ndarray], resized: Sequence[tuple[np.ndarray, float]], results: list[Detections]
    ) -> list[Detections]:
        """``results`` with the coarse large-face pass merged in, for the photos that need one (:mod:`.large_faces`)."""
        coarse: dict[int, tuple[np.ndarray, float]] = {}
        for i, (image, (_, scale)) in enumerate(zip(images_bgr, resized, strict=True)):
            factor = self.coarse_pass.scale(*image.shape[:2], scale)
            if factor is not None:
                coarse[i] = (self.coarse_input(image, factor), factor)
        low = self.threshold * COARSE_SCORE_FACTOR
        for i, found in zip(coarse, self._detect_resized(list(coarse.values()), low), strict=True):
            fine = results[i]
            merged = merge_passes(
                (fine.boxes, fine.scores, fine.keypoints),
                (found.boxes, found.scores, found.keypoints),
                resized[i][1],
                coarse[i][1],
                self.threshold,
                self.keep_top_k,
                self.coarse_pass.largest_face,
            )
            results[i] = Detections(*merged)
        return results

    def coarse_input(self, image_bgr: np.ndarray, factor: float) -> np.ndarray:
        """The photo downscaled by ``factor`` for the coarse large-face pass (:mod:`.large_faces`)."""
        h, w = image_bgr.shape[:2]
        size = (max(1, round(w * factor)), max(1, round(h * factor)))
        return cv2.resize(image_bgr, size, interpolation=downscale_interpolation(factor))

    def _warn_if_too_large(self, resized: Sequence[tuple[np.ndarray, float]]) -> None:
        """Log one warning per detector when a network input's longer side exceeds twice the size the model is
        made for (``max_size`` None or large on a large photo): the priors stop at 512 px, and smooth,
        blown-up regions come out as false faces there (:mod:`.large_faces`)."""
        if self._warned_large:
            return
        longest = max((max(image.shape[:2]) for image, _ in resized), default=0)
        if longest > 2 * self.made_for:
            self._warned_large = True
            log.warning(
                "detecting on a %d-px input, more than twice the %d px this detector is made for: faces larger than "
                "its priors and false faces are likely; use max_size 'auto' (--max-size auto, the default) or less",
                longest,
                self.made_for,
            )

    def _detect_resized(
        self, resized: Sequence[tuple[np.ndarray, float]], threshold: float | None = None
    ) -> list[Detections]:
        """Detections of network-size images ``(image, scale)``, mapped back by ``scale``; same-size images
        go through the network together. ``threshold`` replaces the detector's own score threshold."""
        groups: dict[tuple[int, int], list[int]] = {}
        for index, (image, _) in enumerate(resized):
            groups.setdefault(image.shape[:2], []).append(index)
        results: list[Detections | None] = [None] * len(resized)
        for (h, w), indices in groups.items():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                loc, logits, landm = self.runner(self.to_batch([resized[i][0] for i in chunk]))
                for row, i in enumerate(chunk):
                    results[i] = self.postprocess(loc[row], logits[row], landm[row], (h, w), resized[i][1], threshold)
        return results  # type: ignore[return-value]

    def postprocess(
        self,
        loc: np.ndarray,
        logits: np.ndarray,
        landm: np.ndarray,
        input_hw: tuple[int, int],
        scale: float = 1.0,
        threshold: float | None = None,
    ) -> Detections:
        """Raw outputs of one image (P, 4), (P, 2), (P, 10) for an input of ``input_hw`` → detections.

        Scores above ``threshold`` are kept, the best ``top_k`` go through NMS, ``keep_top_k`` survive;
        coordinates are divided by ``scale`` to return to the original image. ``threshold`` replaces
        ``self.threshold`` when given.
        """
        h, w = int(input_hw[0]), int(input_hw[1])
        loc, landm = as_numpy(loc).astype(np.float32, copy=False), as_numpy(landm).astype(np.float32, copy=False)
        logits = as_numpy(logits).astype(np.float32, copy=False)
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))  # softmax over (background, face)
        scores = shifted[:, 1] / shifted.sum(axis=-1)
        candidates = np.flatnonzero(scores > (self.threshold if threshold is None else threshold))
        if candidates.size > self.top_k:
            candidates = candidates[np.argsort(-scores[candidates], kind="stable")[: self.top_k]]
        priors = prior_boxes(h, w)[candidates]
        size = np.array([w, h], dtype=np.float32)
        boxes = decode_boxes(loc[candidates], priors) * np.tile(size, 2) / np.float32(scale)
        points = decode_landmarks(landm[candidates], priors) * size / np.float32(scale)
        scores = scores[candidates]
        keep = nms(boxes, scores, self.nms_iou, offset=1.0)[: self.keep_top_k]
        return Detections(boxes=boxes[keep], scores=scores[keep], keypoints=points[keep])
