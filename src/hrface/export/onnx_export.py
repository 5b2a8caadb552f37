"""Export of RetinaFace and HRNet to ONNX, with the metadata the runtime needs to rebuild pre/post-processing.

The graph holds the network only (no prior decoding, NMS or heatmap decoding): those stay in
:mod:`hrface.runtime`, shared by the torch and ONNX Runtime backends. BatchNorm is folded into the
convolutions before export (:func:`~hrface.export.fold.fold_batchnorm`).

Graph interface (float32, NCHW):

- RetinaFace: ``input`` (N, 3, H, W) mean-subtracted BGR → ``loc`` (N, P, 4), ``logits`` (N, P, 2),
  ``landm`` (N, P, 10); N, H and W are dynamic (P follows from H and W).
- HRNet: ``input`` (N, 3, S, S) normalised RGB → ``heatmaps`` (N, K, S/4, S/4); N is dynamic, S is the
  crop side the model was trained at (``hrface.input_size``).

``metadata_props`` keys: ``hrface.kind`` ('retinaface' | 'hrnet'), ``hrface.options`` (JSON of the
architecture options), ``hrface.input_size`` (HRNet), ``hrface.num_landmarks`` (HRNet),
``hrface.max_size`` (a RetinaFace trained for a given image size),
``hrface.precision`` ('fp32' | 'int8'), ``hrface.weights_sha256``, ``hrface.format``.

The TorchScript-based exporter (``dynamo=False``) is used: torch 2.13's default dynamo exporter needs the
extra ``onnxscript`` package and took ~7× longer for RetinaFace, for an equivalent graph.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError
from ..io.files import atomic_write_bytes
from .fold import fold_batchnorm

EXPORT_FORMAT = "1"  # bump when the graph interface or the export recipe changes (re-exports cached files)
OPSET = 17
META_PREFIX = "hrface."
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
    """The ``hrface.*`` metadata of an hrface model (kind, architecture options, input size, weight hash)."""
    kind = model_kind(model)
    meta = {"kind": kind, "format": EXPORT_FORMAT, "precision": "fp32", "weights_sha256": state_dict_sha256(model)}
    if kind == "retinaface":
        meta["options"] = json.dumps({"backbone": model.backbone_name})
        if getattr(model, "max_size", None):
            meta["max_size"] = str(int(model.max_size))
    else:
        meta["options"] = json.dumps({"width": int(model.width), "num_landmarks": int(model.num_landmarks)})
        meta["input_size"] = str(int(model.input_size))
        meta["num_landmarks"] = str(int(model.num_landmarks))
    return {META_PREFIX + key: value for key, value in meta.items()}


def state_dict_sha256(model: nn.Module) -> str:
    """SHA-256 over the names, shapes, dtypes and bytes of a model's state_dict (its weights' identity)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def export_onnx(model: nn.Module, path: str | os.PathLike[str], *, opset: int = OPSET) -> Path:
    """Write ``model`` (RetinaFace or HRNet, any weights) as an ONNX file, atomically; returns the path.

    The file gets the ``hrface.*`` metadata described in the module doc. Needs the ``onnx`` package.
    """
    atomic_write_bytes(path, export_onnx_bytes(model, opset=opset))
    return Path(path)


def export_onnx_bytes(model: nn.Module, *, opset: int = OPSET) -> bytes:
    """The serialised ONNX model of :func:`export_onnx` (BatchNorm folded, metadata set)."""
    onnx = import_onnx()
    kind = model_kind(model)
    folded = fold_batchnorm(model).cpu().float()
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
            _trace_to_onnx(folded, sample, buffer, outputs, axes, opset)
        finally:
            torch.set_num_threads(threads)
    proto = onnx.load_from_string(buffer.getvalue())
    set_metadata(proto, model_metadata(model))
    return proto.SerializeToString()


def _trace_to_onnx(
    model: nn.Module, sample: torch.Tensor, buffer: io.BytesIO, outputs: tuple[str, ...], axes: dict, opset: int
) -> None:
    torch.onnx.export(
        model,
        (sample,),
        buffer,
        dynamo=False,
        input_names=["input"],
        output_names=list(outputs),
        dynamic_axes=axes,
        opset_version=opset,
        do_constant_folding=True,
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


def hrface_metadata(props: dict[str, str]) -> dict[str, str]:
    """The ``hrface.*`` entries of an ONNX model's metadata map, without the prefix."""
    return {k[len(META_PREFIX) :]: v for k, v in props.items() if k.startswith(META_PREFIX)}


def import_onnx():  # noqa: ANN202 - the onnx module
    try:
        import onnx
    except ImportError:
        raise ConfigError(
            "ONNX export needs the onnx package; pip install onnx onnxruntime"
        ) from None
    return onnx
