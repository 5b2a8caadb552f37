"""Face detection with RetinaFace: pre-processing, forward pass, decoding and NMS."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..io.image import to_bgr
from ..models.registry import create_model
from ..ops import decode_boxes, decode_landmarks, nms, prior_boxes
from .device import resolve_device
from .faces import Face

BGR_MEAN = (104.0, 117.0, 123.0)  # subtracted from BGR pixels, as in the reference training
DEFAULT_DETECTOR = "retinaface_mnet025"


@dataclass
class Detections:
    """Raw detections of one image in original-image pixels: boxes (N, 4) xyxy, scores (N,), keypoints (N, 5, 2)."""

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray

    def to_faces(self) -> list[Face]:
        rows = zip(self.boxes, self.scores, self.keypoints, strict=True)
        return [Face(box=box, score=float(score), keypoints=points) for box, score, points in rows]


class Detector:
    """RetinaFace face detector.

    Args:
        model: registry name, checkpoint path, or a ready :class:`~hrface.models.retinaface.RetinaFace`.
        threshold: minimum face score of a returned detection.
        nms_iou: IoU above which the lower-scoring of two detections is suppressed.
        max_size: images whose longer side exceeds this many pixels are downscaled (area interpolation)
            before detection; results are mapped back to original pixels. ``None`` keeps the original size.
        top_k: at most this many candidates (best scores) enter NMS; ``keep_top_k``: at most this many leave it.
        device: 'cpu', 'cuda', 'cuda:N' or 'auto'.

    NMS uses the reference's inclusive-pixel area convention (``+1``) so results match the published
    pipeline. Calling a Detector returns a list of :class:`Face` without landmarks.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | nn.Module = DEFAULT_DETECTOR,
        *,
        threshold: float = 0.5,
        nms_iou: float = 0.4,
        max_size: int | None = 1920,
        top_k: int = 5000,
        keep_top_k: int = 750,
        device: str | torch.device | None = "cpu",
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"threshold must be in [0, 1], got {threshold}")
        if not 0.0 < nms_iou <= 1.0:
            raise ConfigError(f"nms_iou must be in (0, 1], got {nms_iou}")
        if max_size is not None and max_size < 32:
            raise ConfigError(f"max_size must be at least 32 pixels, got {max_size}")
        self.device = resolve_device(device)
        net = model if isinstance(model, nn.Module) else create_model(model, expect="retinaface")
        self.model = net.to(self.device).eval()
        self.threshold = threshold
        self.nms_iou = nms_iou
        self.max_size = max_size
        self.top_k = top_k
        self.keep_top_k = keep_top_k
        self._mean = torch.tensor(BGR_MEAN, device=self.device).view(1, 3, 1, 1)

    def __call__(self, image: Any, rgb: bool = False) -> list[Face]:
        """Detect faces in a path, ndarray (BGR unless ``rgb``) or PIL image."""
        return self.detect(to_bgr(image, rgb=rgb)).to_faces()

    def input_scale(self, height: int, width: int) -> float:
        """Factor by which an image of this size is resized before the network (1.0 = original size)."""
        longest = max(height, width)
        if self.max_size is None or longest <= self.max_size:
            return 1.0
        return self.max_size / longest

    def preprocess(self, image_bgr: np.ndarray) -> tuple[torch.Tensor, float]:
        """BGR uint8 (H, W, 3) → mean-subtracted float batch (1, 3, h, w) and the resize factor h/H."""
        scale = self.input_scale(*image_bgr.shape[:2])
        if scale != 1.0:
            h, w = image_bgr.shape[:2]
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            image_bgr = cv2.resize(image_bgr, size, interpolation=cv2.INTER_AREA)
        tensor = torch.from_numpy(np.ascontiguousarray(image_bgr.transpose(2, 0, 1))).to(self.device)
        tensor = tensor[None].float() - self._mean
        return tensor, scale

    @torch.inference_mode()
    def detect(self, image_bgr: np.ndarray) -> Detections:
        """Detections of one BGR uint8 (H, W, 3) image in its original pixel coordinates."""
        batch, scale = self.preprocess(image_bgr)
        loc, logits, landm = self.model(batch)
        return self.postprocess(loc[0], logits[0], landm[0], batch.shape[-2:], scale)

    def postprocess(
        self,
        loc: torch.Tensor,
        logits: torch.Tensor,
        landm: torch.Tensor,
        input_hw: tuple[int, int] | torch.Size,
        scale: float = 1.0,
    ) -> Detections:
        """Raw outputs of one image (P, 4), (P, 2), (P, 10) for an input of ``input_hw`` → detections.

        Scores above ``threshold`` are kept, the best ``top_k`` go through NMS, ``keep_top_k`` survive;
        coordinates are divided by ``scale`` to return to the original image.
        """
        h, w = int(input_hw[0]), int(input_hw[1])
        scores = torch.softmax(logits.float(), dim=-1)[:, 1]
        candidates = torch.nonzero(scores > self.threshold).squeeze(1)
        if candidates.numel() > self.top_k:
            candidates = candidates[torch.topk(scores[candidates], self.top_k).indices]
        priors = prior_boxes(h, w).to(loc.device)[candidates]
        size = torch.tensor([w, h], dtype=torch.float32, device=loc.device)
        boxes = decode_boxes(loc[candidates].float(), priors) * size.repeat(2) / scale
        points = decode_landmarks(landm[candidates].float(), priors) * size / scale
        scores = scores[candidates]
        keep = nms(boxes, scores, self.nms_iou, offset=1.0)[: self.keep_top_k]
        return Detections(
            boxes=boxes[keep].cpu().numpy(),
            scores=scores[keep].cpu().numpy(),
            keypoints=points[keep].cpu().numpy(),
        )
