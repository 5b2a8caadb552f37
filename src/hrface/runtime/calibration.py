"""What the runtime gives an INT8 export (:mod:`hrface.export.quantize`): calibration inputs prepared by its own
pre-processing, and how far a quantised model's outputs move from its float32 original.

- detector: calibration images at the size the detector sees them (``Detector.resize`` + ``to_batch``);
- landmark model: face crops cut around the faces a detector finds in the calibration images
  (``Landmarker.crop`` + ``preprocess``), so the crops look like those at inference.

``hrface export --int8`` quantises on these inputs, then refuses a landmark model whose points move too far
(:func:`point_shift`) and reports the largest output difference (:func:`int8_output_error`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from ..errors import ConfigError
from ..models.config import ModelConfig
from .backends import OrtRunner, info_from_metadata
from .detector import Detector
from .landmarker import Landmarker


def detector_batches(detector_source: object, images: Sequence[np.ndarray]) -> Iterator[np.ndarray]:
    """Detector inputs (1, 3, h, w) float32 for ``images``, prepared as :class:`~hrface.Detector` does."""
    detector = Detector(detector_source, threshold=0.5)
    for image in images:
        yield detector.to_batch([detector.resize(image)[0]])


def landmark_batches(
    landmark_source: object, detector_source: object, images: Sequence[np.ndarray], batch: int = 8
) -> Iterator[np.ndarray]:
    """Landmark-model inputs (≤ batch, 3, S, S) float32: crops around the detected faces of ``images``."""
    detector = Detector(detector_source, threshold=0.5)
    landmarker = Landmarker(landmark_source)
    crops = [landmarker.crop(image, detector.detect(image).boxes)[0] for image in images]
    all_crops = np.concatenate([c for c in crops if len(c)]) if any(len(c) for c in crops) else None
    if all_crops is None:
        raise ConfigError("no faces found in the calibration images; pass photos with faces")
    for start in range(0, len(all_crops), batch):
        yield landmarker.preprocess(all_crops[start : start + batch])


def int8_output_error(
    fp32_model: str | os.PathLike[str], int8_model: str | os.PathLike[str], inputs: Iterable[np.ndarray]
) -> float:
    """Largest absolute difference between the INT8 and fp32 models' outputs over ``inputs``, as a
    fraction of each output's fp32 value range (max − min); the worst output counts."""
    ref, test = OrtRunner(fp32_model), OrtRunner(int8_model)
    worst = 0.0
    for batch in inputs:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        for a, b in zip(ref(x), test(x), strict=True):
            span = float(a.max() - a.min()) or 1.0
            worst = max(worst, float(np.abs(a - b).max()) / span)
    return worst


def point_shift(
    fp32_model: str | os.PathLike[str], int8_model: str | os.PathLike[str], batch: np.ndarray
) -> np.ndarray:
    """Distances (N·K,) in crop pixels between the DARK-decoded points of an HRNet's fp32 and INT8 heatmaps (both
    decoded with the Gaussian σ of the fp32 model's configuration)."""
    from ..landmarks.heatmaps import decode_heatmaps

    (ref,), config = _run_outputs(fp32_model, batch)
    (test,), _ = _run_outputs(int8_model, batch)
    sigma = config.sigma
    a, _ = decode_heatmaps(ref, "dark", sigma)
    b, _ = decode_heatmaps(test, "dark", sigma)
    return np.linalg.norm(a - b, axis=-1).reshape(-1) * batch.shape[-1] / ref.shape[-1]


def _run_outputs(path: str | os.PathLike[str], batch: np.ndarray) -> tuple[list[np.ndarray], ModelConfig]:
    """The outputs of the ONNX model at ``path`` for ``batch``, and its configuration."""
    import onnxruntime as ort

    session = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    config = info_from_metadata(session.get_modelmeta().custom_metadata_map, os.fspath(path))
    return session.run(None, {"input": batch}), config
