"""The forward pass on OpenVINO's CPU plugin (``backend="openvino"``, the ``hrface[openvino]`` extra).

OpenVINO reads the same ONNX files as ONNX Runtime (the shipped float and INT8 graphs, ``hrface export``
output) and compiles them for this CPU once per model, with dynamic batch (and, for a detector, dynamic height
and width). Side by side with ONNX Runtime on a 2-core AMD EPYC (Zen 3, AVX2), 2 threads: the landmark model
in 0.78× the time in INT8 (23.9 against 30.8 ms per face) and 0.80× in float32; the detector in the same
time (README, "Performance"). Pre- and post-processing are hrface's own NumPy code, as for every backend.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from ..errors import CheckpointError, one_line
from ..extras import require


class OpenVinoRunner:
    """An OpenVINO compiled model over an ONNX file; ``threads`` inference threads (None: OpenVINO's choice).

    ``info``: the model's configuration (:class:`~hrface.models.config.ModelConfig`), read from its hrface metadata
    by the caller with ONNX Runtime (a base dependency; OpenVINO does not expose the metadata).  Each calling
    thread gets its own inference request, so one runner serves several threads at once.
    """

    backend = "openvino"
    device = "cpu"
    module = None

    def __init__(self, path: str | os.PathLike[str], info: Any, threads: int | None = None) -> None:
        ov = require("openvino", "openvino", "backend='openvino'")
        self.path = os.fspath(path)
        self.info = info
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        try:
            core = ov.Core()
            self.compiled = core.compile_model(core.read_model(self.path), "CPU", config)
        except Exception as exc:  # OpenVINO raises its own exception types for models it cannot compile
            raise CheckpointError(f"{self.path}: OpenVINO cannot compile this model ({one_line(exc, 160)})") from None
        self._local = threading.local()

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        results = request.infer({0: np.ascontiguousarray(batch, dtype=np.float32)})
        return tuple(np.array(results[output], dtype=np.float32) for output in self.compiled.outputs)
