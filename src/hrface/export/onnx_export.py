"""Export of RetinaFace and HRNet to ONNX, with the metadata the runtime needs to rebuild pre/post-processing.

The graph holds the network only (no prior decoding, NMS or heatmap decoding): those stay in
:mod:`hrface.runtime`, shared by the torch and ONNX Runtime backends. BatchNorm is folded into the
convolutions before export (:func:`~hrface.export.fold.fold_batchnorm`).

Graph interface (float32, NCHW):

- RetinaFace: ``input`` (N, 3, H, W) mean-subtracted BGR → ``loc`` (N, P, 4), ``logits`` (N, P, 2),
  ``landm`` (N, P, 10); N, H and W are dynamic (P follows from H and W).
- HRNet: ``input`` (N, 3, S, S) normalised RGB → ``heatmaps`` (N, K, S/4, S/4); N is dynamic, S is the
  crop side the model was trained at (``hrface.input_size``).

The ``hrface.*`` metadata is the model's configuration (:mod:`hrface.models.config`: what
:func:`hrface.models.registry.create_model` gave the model, with the settings it carries as attributes) and
the export's own entries (:mod:`hrface.models.onnx_metadata`).

The TorchScript-based exporter (``dynamo=False``) is used: torch 2.13's default dynamo exporter needs the
extra ``onnxscript`` package and took ~7× longer for RetinaFace, for an equivalent graph.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..extras import require
from ..io.files import atomic_write_bytes
from ..models.config import DESCRIPTIVE_KEYS, ModelConfig
from ..models.onnx_metadata import EXPORT_FORMAT, HALF_SUFFIX, META_PREFIX, STATE_DICT_WEIGHTS
from .fold import fold_batchnorm

OPSET = 17
DETECTOR_OUTPUTS = ("loc", "logits", "landm")
LANDMARK_OUTPUTS = ("heatmaps",)


def model_kind(model: nn.Module) -> str:
    """'retinaface' or 'hrnet' for hrface's models; :class:`ConfigError` otherwise."""
    from ..models.hrnet import HRNet
    from ..models.retinaface import RetinaFace

    if isinstance(model, RetinaFace):
        return "retinaface"
    if isinstance(model, HRNet):
        return "hrnet"
    raise ConfigError(f"cannot export a {type(model).__name__} to ONNX; pass a RetinaFace or HRNet model")


def model_metadata(model: nn.Module) -> dict[str, str]:
    """The ``hrface.*`` metadata of an hrface model: its configuration
    (:meth:`~hrface.models.config.ModelConfig.of_module`), the export format, the precision and the weights' hash."""
    kind = model_kind(model)
    meta = {"format": EXPORT_FORMAT, "precision": "fp32", "weights_sha256": state_dict_sha256(model)}
    meta |= ModelConfig.of_module(model, kind).metadata(onnx=True)
    return {META_PREFIX + key: value for key, value in meta.items()}


def state_dict_sha256(model: nn.Module) -> str:
    """SHA-256 over the names, shapes, dtypes and bytes of a model's state_dict (its weights' identity); the
    BatchNorm batch counters (``num_batches_tracked``, which do not change the outputs) are left out."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def export_onnx(model: nn.Module, path: str | os.PathLike[str], *, opset: int = OPSET, compact: bool = False) -> Path:
    """Write ``model`` (RetinaFace or HRNet, any weights) as an ONNX file, atomically; returns the path.

    The file gets the ``hrface.*`` metadata of :mod:`hrface.models.onnx_metadata`. Needs the ``onnx``
    package.  ``compact``: the form shipped inside the package (:func:`export_onnx_bytes`).
    """
    atomic_write_bytes(path, export_onnx_bytes(model, opset=opset, compact=compact))
    return Path(path)


def cached_export(
    model: nn.Module, folder: str | os.PathLike[str], before: Callable[[Path], None] | None = None, export: bool = True
) -> Path:
    """The file of ``model``'s fp32 ONNX export in the cache ``folder``: ``KIND-HASH16.onnx``, the hash over the
    weights, the configuration's settings and the export format version (:func:`model_metadata`, without what only
    describes the model: its name, licence, provenance, metrics), so that a changed checkpoint gets a new file.
    With ``export``, the model is exported there (atomically) when the file is not there yet, after
    ``before(path)`` (a check or an announcement) is called.

    This is how the runtime reaches the exporter for the first-use export of a checkpoint
    (:func:`hrface.runtime.backends.cached_onnx`): its one import from a floor above it."""
    meta = model_metadata(model)
    settings = {key: value for key, value in meta.items() if key.removeprefix(META_PREFIX) not in DESCRIPTIVE_KEYS}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    path = Path(os.fspath(folder)) / f"{meta[META_PREFIX + 'kind']}-{digest}.onnx"
    if export and not path.is_file():
        if before is not None:
            before(path)
        export_onnx(model, path)
    return path


def export_onnx_bytes(model: nn.Module, *, opset: int = OPSET, compact: bool = False) -> bytes:
    """The serialised ONNX model of :func:`export_onnx`.

    By default BatchNorm is folded into the convolutions (float32 weights).  With ``compact`` (the
    shipped models' form) the BatchNorm layers stay in the graph, the initializers keep the state_dict's
    key names (so :func:`hrface.models.checkpoint.read_state_dict` reads the weights back for PyTorch),
    and every float tensor that float16 holds exactly (all of them for weights read from a half-precision
    checkpoint) is stored in float16 and cast back to float32 by the graph: half the file, the same values
    as the PyTorch model.  ONNX
    Runtime folds the casts and the BatchNorms when it loads the graph (optimisation level 'basic' or
    higher), so both forms run the same.
    """
    onnx = import_onnx()
    kind = model_kind(model)
    network = model.cpu().float().eval() if compact else fold_batchnorm(model).cpu().float()
    if kind == "retinaface":
        sample = torch.zeros(1, 3, 64, 96)
        outputs = DETECTOR_OUTPUTS
        axes = {"input": {0: "batch", 2: "height", 3: "width"}} | {n: {0: "batch", 1: "priors"} for n in outputs}
    else:
        size = int(model.input_size)
        sample = torch.zeros(1, 3, size, size)
        outputs = LANDMARK_OUTPUTS
        axes = {"input": {0: "batch"}, "heatmaps": {0: "batch"}}
    buffer = io.BytesIO()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tracing a tiny sample gains nothing from threads, and suffers on a busy CPU
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        try:
            _trace_to_onnx(network, sample, buffer, outputs, axes, opset, keep_batchnorm=compact)
        finally:
            torch.set_num_threads(threads)
    proto = onnx.load_from_string(buffer.getvalue())
    meta = model_metadata(model)
    if compact:
        _drop_initializer_inputs(proto)
        store_exact_float16(proto)
        meta[META_PREFIX + "weights"] = STATE_DICT_WEIGHTS
    set_metadata(proto, meta)
    return proto.SerializeToString()


def _drop_initializer_inputs(proto: object) -> None:
    """Remove the weights from the graph's inputs (a compact export keeps them there while tracing, see
    :func:`_trace_to_onnx`), so that ONNX Runtime treats them as constants and folds them."""
    weights = {tensor.name for tensor in proto.graph.initializer}
    inputs = [value for value in proto.graph.input if value.name not in weights]
    del proto.graph.input[:]
    proto.graph.input.extend(inputs)


def store_exact_float16(proto: object) -> int:
    """Store each float32 initializer of an ``onnx.ModelProto`` that float16 represents exactly as float16,
    with a ``Cast`` node at the head of the graph that restores the float32 tensor under its old name.
    Returns how many initializers were converted (the others stay float32)."""
    onnx = import_onnx()
    from onnx import numpy_helper

    casts, kept = [], []
    for tensor in proto.graph.initializer:
        values = numpy_helper.to_array(tensor)
        with np.errstate(over="ignore"):  # a value beyond float16 becomes inf and fails the check below
            half = values.astype(np.float16) if values.dtype == np.float32 else None
        if half is None or not np.array_equal(half.astype(np.float32), values):
            kept.append(tensor)
            continue
        stored = f"{tensor.name}{HALF_SUFFIX}"
        kept.append(numpy_helper.from_array(half, stored))
        casts.append(onnx.helper.make_node("Cast", [stored], [tensor.name], to=onnx.TensorProto.FLOAT))
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(kept)
    nodes = casts + list(proto.graph.node)
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    return len(casts)


def _trace_to_onnx(
    model: nn.Module,
    sample: torch.Tensor,
    buffer: io.BytesIO,
    outputs: tuple[str, ...],
    axes: dict,
    opset: int,
    keep_batchnorm: bool = False,
) -> None:
    # In the exporter's EVAL mode it fuses BatchNorm into the convolutions itself; PRESERVE exports the
    # eval-mode model's BatchNorm nodes as they are (with their running statistics).  The exporter also
    # merges initializers of equal value (e.g. two zero biases) unless they are graph inputs: kept as inputs
    # while tracing, every state_dict key keeps its own initializer (the inputs are removed afterwards).
    mode = torch.onnx.TrainingMode.PRESERVE if keep_batchnorm else torch.onnx.TrainingMode.EVAL
    torch.onnx.export(
        model,
        (sample,),
        buffer,
        dynamo=False,
        input_names=["input"],
        output_names=list(outputs),
        dynamic_axes=axes,
        opset_version=opset,
        do_constant_folding=not keep_batchnorm,
        keep_initializers_as_inputs=keep_batchnorm,
        training=mode,
    )


def set_metadata(proto: object, values: dict[str, str]) -> None:
    """Set (add or replace) string ``metadata_props`` of an ``onnx.ModelProto``."""
    existing = {entry.key: entry for entry in proto.metadata_props}
    for key, value in values.items():
        if key in existing:
            existing[key].value = value
        else:
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value


def import_onnx():  # noqa: ANN202 - the onnx module
    return require("onnx", "torch", "ONNX export")
