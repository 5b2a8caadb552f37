"""Static INT8 quantisation of an exported model with ONNX Runtime (QDQ format, per-channel weights).

Activations are calibrated on real inputs prepared by the runtime's own pre-processing
(:mod:`hrface.runtime.calibration`: detector inputs at the size the detector sees them, face crops as the
landmark model sees them), from the photos of :func:`calibration_images`.

Activations are uint8 (asymmetric), weights int8 (symmetric, per output channel) in 7 bits (``reduce_range``),
MinMax calibration.  x86 CPUs without VNNI (AVX2 and AVX-512 before Cascade Lake, AMD before Zen 4) multiply
uint8 by int8 with an instruction that saturates its 16-bit pair sums; 7-bit weights keep those sums in range.
Measured on an AVX2-only AMD EPYC (Zen 3) with the shipped 160-px landmark model: full 8-bit weights moved
the points by 1.95 px on 160-px crops, 7-bit weights by 0.31 px, at 0.55× the float32 time; CPUs with VNNI
do not saturate and lose nothing from the 7-bit weights that the measurements could see.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..io.files import atomic_write_bytes, iter_image_files
from ..io.image import read_image
from .onnx_export import import_onnx, set_metadata


def calibration_images(
    folder: str | os.PathLike[str], limit: int = 32, split: str | os.PathLike[str] | None = None
) -> list[np.ndarray]:
    """The first ``limit`` BGR images of ``folder`` (searched recursively, sorted).

    With ``split`` (a split file of :mod:`hrface.data.landmarks.split`), ``folder`` is a 300W-style folder and
    only the images of the split's training photos are used, so that calibration never sees a validation face.
    """
    if split is None:
        paths = list(iter_image_files([Path(folder)]))
    else:
        from ..data.landmarks.split import split_images

        paths = split_images([folder], split, "train")
    if not paths:
        raise ConfigError(f"{folder}: no images found for INT8 calibration; pass a folder of photos with faces")
    return [read_image(p) for p in paths[:limit]]


def quantize_int8(
    fp32_model: str | os.PathLike[str], output: str | os.PathLike[str], inputs: Iterable[np.ndarray]
) -> Path:
    """Write the static INT8 (QDQ, per-channel) version of an hrface ONNX model; returns its path.

    ``inputs`` are calibration batches for the model's single input. The output keeps the fp32 model's
    ``hrface.*`` metadata with ``hrface.precision`` = 'int8'.
    """
    onnx = import_onnx()
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self, batches: Iterable[np.ndarray]) -> None:
            self._batches = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._batches, None)
            return None if batch is None else {"input": np.ascontiguousarray(batch, dtype=np.float32)}

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quantized = Path(tmp) / "int8.onnx"
        quant_pre_process(os.fspath(fp32_model), os.fspath(prepared), skip_symbolic_shape=True)
        quantize_static(
            prepared,
            quantized,
            Reader(inputs),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            reduce_range=True,  # 7-bit weights: no saturation on CPUs without VNNI (module doc)
        )
        proto = onnx.load(os.fspath(quantized))
    original = onnx.load(os.fspath(fp32_model), load_external_data=False)
    set_metadata(proto, {e.key: e.value for e in original.metadata_props} | {"hrface.precision": "int8"})
    atomic_write_bytes(output, proto.SerializeToString())
    return Path(output)
