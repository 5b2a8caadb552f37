"""Runners: the forward pass of a model on one backend (ONNX Runtime or PyTorch eager).

Pre- and post-processing live in :class:`~hrface.runtime.detector.Detector` and
:class:`~hrface.runtime.landmarker.Landmarker`, in NumPy, and are the same for every backend; a runner
only maps a float32 NumPy batch (N, C, H, W) to the model's raw outputs (a tuple of float32 NumPy
arrays: RetinaFace ``loc, logits, landm``; HRNet ``heatmaps``).

Backends:
- ``"onnxruntime"``: an ONNX Runtime CPU session (graph optimisation level ALL), created once.  The
  shipped models come as ready ONNX files inside the package (``hrface/weights/NAME.onnx``), so the base
  install (no torch) runs them as they are.  Any other model given by name, checkpoint or ``nn.Module``
  is exported on first use into ``weights_home()/onnx`` (this needs the ``hrface[torch]`` extra), under a
  name keyed by the SHA-256 of its weights, so a changed checkpoint re-exports; the export is announced
  on the ``hrface`` logger with its place, and a cached file that no longer loads is exported again.
  An ``.onnx`` file is loaded as it is (and always runs on ONNX Runtime, whatever the backend argument);
- ``"torch"``: the ``nn.Module`` in eval mode under ``torch.inference_mode`` (``hrface[torch]``);
- ``"openvino"``: the same ONNX file (shipped, given, or the cached export) compiled by OpenVINO for this CPU
  (``hrface[openvino]``; :mod:`hrface.runtime.openvino_runner`);
- ``"auto"`` (the default): onnxruntime for a model given by name or file, on the CPU, or on a GPU when
  ONNX Runtime has its CUDA execution provider (``pip install onnxruntime-gpu``; no torch needed); torch on a
  GPU otherwise, and for a live ``nn.Module`` (a model being trained or edited runs as it is, with no export).

On a GPU a shipped INT8 graph is replaced by its float32 original (its config's ``float_model``): integer
arithmetic is a CPU optimisation.

Every runner knows its model's configuration as ``runner.info`` (:class:`~hrface.models.config.ModelConfig`):
read from an ONNX file's ``hrface.*`` metadata, or from a PyTorch model
(:meth:`~hrface.models.config.ModelConfig.of_module`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..errors import CheckpointError, ConfigError, one_line
from ..extras import require
from ..io.files import check_model_file, check_writable_folder
from ..landmarks.heatmaps import as_numpy
from ..models.config import MetadataError, ModelConfig
from ..models.onnx_metadata import hrface_metadata
from ..models.registry import float_model, named_onnx, weights_home
from .device import CUDA_PROVIDER, ort_cuda_available, ort_providers, resolve_device
from .model_check import check_outputs

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger("hrface")

BACKENDS = ("auto", "torch", "onnxruntime", "openvino")
ORT_OPTIMIZATION = ("disable", "basic", "extended", "all")


class Runner(Protocol):
    """A forward pass: float32 batch (N, C, H, W) → tuple of float32 raw output arrays."""

    backend: str
    device: str  # 'cpu', 'cuda:0', …
    info: ModelConfig  # the model's configuration: kind, sizes, normalisation, sigma, thresholds
    module: nn.Module | None  # the PyTorch model where one was built or given

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, ...]: ...


class TorchRunner:
    """PyTorch eager forward. ``threads`` sets torch's (process-wide) intra-op thread count."""

    backend = "torch"

    def __init__(self, module: nn.Module, info: ModelConfig, device: str, threads: int | None = None) -> None:
        import torch

        if threads:
            torch.set_num_threads(int(threads))
        self.device = device
        self.module = module.to(device).eval()
        self.info = info

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        import torch

        array = np.asarray(batch, dtype=np.float32)
        if min(array.strides, default=0) < 0:  # torch.from_numpy takes no negative strides
            array = np.ascontiguousarray(array)
        # The batch keeps its memory layout (the landmarker's is channels-last, as it was before the NumPy
        # runtime): the convolutions then round as they did, and a contiguous copy is saved.
        with torch.inference_mode():
            out = self.module(torch.from_numpy(array).to(self.device))
        outputs = tuple(out) if isinstance(out, tuple | list) else (out,)
        return tuple(as_numpy(o).astype(np.float32, copy=False) for o in outputs)


class OrtRunner:
    """ONNX Runtime session over an ONNX file (path) or serialised model (bytes), created once.

    Args:
        model: path or bytes of an ONNX model exported by :mod:`hrface.export`.
        threads: intra-op threads (None: ONNX Runtime's default, one per physical core).
        optimization: graph optimisation level, one of :data:`ORT_OPTIMIZATION`.
        device: 'cpu', or 'cuda:N' with ONNX Runtime's CUDA execution provider
            (:func:`~hrface.runtime.device.ort_providers`).
    """

    backend = "onnxruntime"
    module = None

    def __init__(
        self,
        model: str | os.PathLike[str] | bytes,
        threads: int | None = None,
        optimization: str = "all",
        device: str = "cpu",
    ) -> None:
        ort = import_onnxruntime()
        options = session_options(threads, optimization)
        source = model if isinstance(model, bytes) else os.fspath(model)
        self.path = None if isinstance(model, bytes) else source  # the file, for tools that read the graph
        self.device = device
        try:
            self.session = ort.InferenceSession(source, options, providers=ort_providers(device))
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable models
            where = "ONNX model" if isinstance(model, bytes) else str(model)
            raise CheckpointError(f"{where}: not a loadable ONNX model ({one_line(exc, 160)})") from None
        if device != "cpu" and CUDA_PROVIDER not in self.session.get_providers():
            raise ConfigError(f"ONNX Runtime could not start its CUDA provider on {device}; use device='cpu'")
        self.input_name = self.session.get_inputs()[0].name
        self.info = info_from_metadata(self.session.get_modelmeta().custom_metadata_map, str(model)[:200])

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        array = np.ascontiguousarray(as_numpy(batch), dtype=np.float32)
        return tuple(self.session.run(None, {self.input_name: array}))


def session_options(threads: int | None = None, optimization: str = "all") -> Any:
    """ONNX Runtime ``SessionOptions``: ``threads`` intra-op threads (None: its default), one inter-op
    thread, sequential execution, graph optimisation ``optimization`` (one of :data:`ORT_OPTIMIZATION`),
    and no spin-waiting: by default the intra-op threads keep spinning after a run, which on a 2-core
    CPU took the cores from the decoding that follows (decode + NMS 4.1 ms instead of 0.9 ms)."""
    ort = import_onnxruntime()
    if optimization not in ORT_OPTIMIZATION:
        raise ConfigError(f"optimization must be one of {ORT_OPTIMIZATION}, got {optimization!r}")
    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[optimization]
    options.intra_op_num_threads = int(threads or 0)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def import_onnxruntime():  # noqa: ANN201 - the onnxruntime module
    """The ``onnxruntime`` module (a dependency of the base install)."""
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError("the onnxruntime package is missing; reinstall hrface (pip install hrface)") from None
    return onnxruntime


def resolve_backend(backend: str, device: str, source: Any) -> str:
    """'torch' or 'onnxruntime' for a requested ``backend`` on ``device`` (see the module doc for 'auto')."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "openvino":
        if device != "cpu":
            raise ConfigError("backend 'openvino' runs on the CPU here; use device='cpu'")
        return backend
    ort_here = device == "cpu" or ort_cuda_available()
    if _is_onnx_file(source):
        if not ort_here:
            raise ConfigError(
                f"{source}: an .onnx model runs with onnxruntime, which has no CUDA provider here; "
                "pip install onnxruntime-gpu, or use device='cpu'"
            )
        return "onnxruntime"  # whatever the backend asked for: only ONNX Runtime can run the file
    if backend == "auto":
        return "torch" if is_module(source) or not ort_here else "onnxruntime"
    if backend == "onnxruntime" and not ort_here:
        raise ConfigError(
            f"backend 'onnxruntime' on {device} needs its CUDA provider (pip install onnxruntime-gpu); "
            "use device='cpu' or backend='torch'"
        )
    return backend


def create_runner(
    source: Any,
    kind: str,
    *,
    backend: str = "auto",
    device: Any = "cpu",
    threads: int | None = None,
    optimization: str = "all",
) -> Runner:
    """A runner for a model given by registry name, checkpoint path, ``.onnx`` path or ``nn.Module``.

    ``kind`` is the expected model kind ('retinaface' or 'hrnet'); a model of another kind raises
    :class:`CheckpointError`. ``threads``: intra-op threads of the backend (None: its default).  A shipped
    model on ONNX Runtime, or an ``.onnx`` file, needs no torch; anything else needs ``hrface[torch]``.
    """
    _check_source(source, kind)
    if _is_onnx_file(source):
        check_model_file(source)  # missing, a folder, a FIFO (ONNX Runtime would wait on it forever): one line now
    dev = resolve_device(device)
    if dev != "cpu" and isinstance(source, str):
        source = float_model(source)  # INT8 pays on a CPU only
    chosen = resolve_backend(backend, dev, source)
    ready = source if _is_onnx_file(source) else named_onnx(source) if isinstance(source, str) else None
    if chosen == "openvino":
        from .openvino_runner import OpenVinoRunner

        path = (
            ready
            if ready is not None
            else cached_onnx(source if is_module(source) else load_module(source, kind, chosen), source)
        )
        runner: Runner = OpenVinoRunner(path, OrtRunner(path, threads=1, optimization="disable").info, threads)
    elif chosen == "onnxruntime" and ready is not None:
        runner = OrtRunner(ready, threads, optimization, dev)
    else:
        module = source if is_module(source) else load_module(source, kind, chosen)
        if chosen == "torch":
            runner = TorchRunner(module, info_from_module(module, kind), dev, threads)
        else:
            runner = cached_ort_runner(module, source, threads, optimization, dev)
    if runner.info.kind != kind:
        raise CheckpointError(f"{_describe(source)}: is a {runner.info.kind} model, expected {kind}")
    if runner.module is None:  # an ONNX graph: its outputs must be what its metadata says (one small inference)
        check_outputs(runner, kind, os.fspath(ready) if ready is not None else _describe(source))
    return runner


def load_module(source: str | os.PathLike[str], kind: str, backend: str) -> nn.Module:
    """The PyTorch model of a registry name or checkpoint path (needs the ``hrface[torch]`` extra)."""
    why = "backend='torch'" if backend == "torch" else f"loading {os.fspath(source)}"
    require("torch", "torch", why)
    from ..models.registry import create_model

    return create_model(source, expect=kind)


def is_module(obj: object) -> bool:
    """Whether ``obj`` is a ``torch.nn.Module`` (without importing torch when it is not loaded)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def info_from_module(module: nn.Module, kind: str) -> ModelConfig:
    """The configuration of a PyTorch model (any module with ``num_landmarks`` works as a landmark model)."""
    return ModelConfig.of_module(module, kind)


def info_from_metadata(props: dict[str, str], source: str) -> ModelConfig:
    """The configuration an ONNX model's ``hrface.*`` metadata records (:mod:`hrface.models.config`); a file
    written before a key existed gets the architecture's default for it.  One-line :class:`CheckpointError`
    for a file without that metadata, an unreadable value, or a value no model can have."""
    meta = hrface_metadata(props)
    if meta.get("kind") not in ("retinaface", "hrnet"):
        raise CheckpointError(f"{source}: ONNX model without hrface metadata; export it with 'hrface export'")
    if meta["kind"] == "hrnet" and not (meta.get("input_size") and meta.get("num_landmarks")):
        raise CheckpointError(f"{source}: landmark ONNX model without input_size / num_landmarks metadata")
    try:
        return ModelConfig.from_metadata(meta)
    except MetadataError as exc:
        if exc.unreadable:
            raise CheckpointError(f"{source}: unreadable hrface metadata in the ONNX model") from None
        fix = "re-export the model with 'hrface export', or correct its hrface.* metadata"
        raise CheckpointError(f"{source}: metadata {exc.key}={exc.value} {exc.what}; {fix}") from None


def _exporter() -> Callable[..., Path]:
    """:func:`hrface.export.onnx_export.cached_export`, imported when a checkpoint is first run on ONNX Runtime or
    OpenVINO: the runtime's one import from a floor above it (``tests/test_layering.py``).  It stays because
    ``FaceAnalyzer(detector="x.pth")`` runs on ONNX Runtime without an export step of its own; the exporter
    imports nothing from the runtime, so there is no circle, and it needs the ``hrface[torch]`` extra, as does
    loading the checkpoint that gets here."""
    from ..export.onnx_export import cached_export

    return cached_export


def onnx_cache_path(module: nn.Module) -> Path:
    """Where the fp32 ONNX export of ``module`` is cached: ``weights_home()/onnx/KIND-HASH16.onnx``.

    The hash covers the weights, the architecture metadata and the export format version.
    """
    return _exporter()(module, weights_home() / "onnx", export=False)


def cached_ort_runner(
    module: nn.Module, source: Any, threads: int | None, optimization: str, device: str = "cpu"
) -> OrtRunner:
    """An ONNX Runtime runner on the cached export of ``module``.  A cached file that no longer loads (cut
    short, damaged on disk) is deleted and exported again, once, instead of failing every later run."""
    path = cached_onnx(module, source)
    try:
        return OrtRunner(path, threads, optimization, device)
    except CheckpointError:
        log.warning("the cached ONNX export %s does not load; exporting it again", path)
        with contextlib.suppress(OSError):
            path.unlink()
        return OrtRunner(cached_onnx(module, source), threads, optimization, device)


def cached_onnx(module: nn.Module, source: Any = "model") -> Path:
    """Path of the cached ONNX export of ``module``, exporting it (atomically) if it is not there yet."""
    folder = weights_home() / "onnx"

    def before(path: Path) -> None:
        check_writable_folder(path.parent)  # before the export's seconds of work
        what = _describe(source)
        log.info("exporting %s to ONNX for onnxruntime (once; it takes a few seconds) into %s", what, path)

    try:
        return _exporter()(module, folder, before)
    except OSError as exc:
        raise ConfigError(
            f"{_describe(source)}: cannot write the ONNX export to {folder} ({one_line(exc, 100)}); "
            "set HRFACE_HOME to a writable folder or use backend='torch'"
        ) from None


def _check_source(source: object, kind: str) -> None:
    if not (isinstance(source, str | os.PathLike) or is_module(source)):
        what = {"retinaface": "detector", "hrnet": "landmark model"}.get(kind, "model")
        raise ConfigError(
            f"{what}: expected a model name, a checkpoint or .onnx path, or an nn.Module; got "
            f"{type(source).__qualname__ if source is not None else 'None'}"
        )


def _is_onnx_file(source: Any) -> bool:
    return isinstance(source, str | os.PathLike) and Path(os.fspath(source)).suffix.lower() == ".onnx"


def _describe(source: Any) -> str:
    return os.fspath(source) if isinstance(source, str | os.PathLike) else type(source).__name__
