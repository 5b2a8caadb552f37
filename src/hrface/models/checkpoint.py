"""Reading checkpoints safely, recognising their architecture, and loading them strictly.

Checkpoints are read with ``torch.load(weights_only=True)`` (no arbitrary unpickling), from
``.safetensors``, or from a compact ONNX export (the shipped models: their graph's initializers). The
reference repositories' wrappers are accepted: a ``{'state_dict': …}`` dict and a ``module.`` key prefix
(from ``nn.DataParallel``).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError, one_line
from ..extras import require
from ..io.files import check_model_file, not_a_file
from .arch import ArchSpec
from .config import CONFIG_KEYS
from .onnx_metadata import HALF_SUFFIX, STATE_DICT_WEIGHTS, hrface_metadata

StateDict = dict[str, torch.Tensor]


def read_state_dict(path: str | Path) -> StateDict:
    """Read a checkpoint file into a flat ``{key: tensor}`` dict on the CPU.

    Accepts ``.safetensors`` and PyTorch files (zip or legacy format) holding a state_dict, optionally
    wrapped in ``{'state_dict': …}`` and/or with a ``module.`` prefix. Raises :class:`CheckpointError`
    with a one-line message for a missing, unreadable, unsafe or non-checkpoint file.
    """
    path = Path(path)
    if not_a_file(path) is not None:
        check_model_file(path)  # a folder, a FIFO, a device: refused without opening it
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found; pass an existing .pth/.safetensors file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: checkpoint file is empty; download or copy it again")
    if path.suffix == ".safetensors":
        obj: Any = _read_safetensors(path)
    elif path.suffix.lower() == ".onnx":
        obj = _read_onnx(path)
    else:
        obj = _read_torch(path)
    return unwrap_state_dict(obj, source=str(path))


def read_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata of a ``.safetensors`` file (e.g. ``input_size`` of a trained landmark model), or the
    model configuration's entries of a compact ONNX file's ``hrface.*`` metadata (:mod:`hrface.models.config`);
    ``{}`` for other checkpoint formats or a file without metadata."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        meta = hrface_metadata({p.key: p.value for p in _load_onnx(path).metadata_props})
        return {key: meta[key] for key in CONFIG_KEYS if key in meta}
    if path.suffix != ".safetensors":
        return {}
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({one_line(exc, 120)})") from None


def _read_safetensors(path: Path) -> StateDict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({one_line(exc, 120)})") from None


def _load_onnx(path: Path) -> Any:
    onnx = require("onnx", "torch", f"reading the weights of {path}")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # onnx raises protobuf's own errors for a damaged file
        raise CheckpointError(f"{path}: not a readable ONNX file ({one_line(exc, 120)})") from None


def _read_onnx(path: Path) -> StateDict:
    """The state_dict held by a compact ONNX export (``hrface export --compact``, the shipped models' form):
    its initializers under their key names, float16 ones back in float32; BatchNorm batch counters, which
    the graph does not hold, are set to 0."""
    from onnx import numpy_helper

    proto = _load_onnx(path)
    meta = hrface_metadata({p.key: p.value for p in proto.metadata_props})
    if meta.get("weights") != STATE_DICT_WEIGHTS:
        raise CheckpointError(
            f"{path}: an ONNX graph whose weights cannot be read back as a checkpoint (BatchNorm folded); pass the "
            "checkpoint it was exported from, or a file from 'hrface export --compact'"
        )
    tensors: StateDict = {}
    for initializer in proto.graph.initializer:
        values = numpy_helper.to_array(initializer)
        if values.dtype == np.float16:
            values = values.astype(np.float32)
        tensors[initializer.name.removesuffix(HALF_SUFFIX)] = torch.from_numpy(np.array(values))
    for key in [k for k in tensors if k.endswith(".running_mean")]:
        tensors.setdefault(key.removesuffix("running_mean") + "num_batches_tracked", torch.tensor(0))
    return tensors


def _read_torch(path: Path) -> Any:
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" in str(exc):
            raise CheckpointError(
                f"{path}: checkpoint holds Python objects other than tensors and was refused for safety "
                "(weights_only); re-save its state_dict() as a plain .pth or .safetensors file"
            ) from None
        raise CheckpointError(f"{path}: not a PyTorch or safetensors checkpoint (unreadable pickle data)") from None
    except Exception as exc:  # torch.load raises many types (IndexError, RuntimeError, …) on arbitrary bytes
        raise CheckpointError(f"{path}: not a PyTorch or safetensors checkpoint ({one_line(exc, 120)})") from None


def unwrap_state_dict(obj: Any, source: str = "checkpoint") -> StateDict:
    """Flat state_dict from a loaded checkpoint object: unwraps ``average`` (the weight average of an hrface
    training checkpoint, its published weights) or else ``state_dict``/``model``, and strips ``module.``."""
    for wrapper in ("average", "state_dict", "model", "model_state"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
            break
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{source}: does not contain a state_dict (a dict of tensors)")
    tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{source}: does not contain a state_dict (a dict of tensors)")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module.") :]: v for k, v in tensors.items()}
    return tensors


def infer_architecture(state_dict: StateDict, source: str = "checkpoint") -> ArchSpec:
    """Recognise a RetinaFace or HRNet face-landmark state_dict and its options from its keys and shapes."""
    keys = state_dict.keys()
    if "ClassHead.0.conv1x1.weight" in state_dict:
        if "body.stage1.0.0.weight" in state_dict:
            return ArchSpec("retinaface", {"backbone": "mobilenet0.25"})
        if "body.layer1.0.conv1.weight" in state_dict:
            return ArchSpec("retinaface", {"backbone": "resnet50"})
        raise CheckpointError(f"{source}: RetinaFace checkpoint with an unknown backbone")
    if "transition1.0.0.weight" in state_dict and "head.3.weight" in state_dict:
        width = int(state_dict["transition1.0.0.weight"].shape[0])
        num_landmarks = int(state_dict["head.3.weight"].shape[0])
        return ArchSpec("hrnet", {"width": width, "num_landmarks": num_landmarks})
    sample = ", ".join(list(keys)[:3])
    raise CheckpointError(
        f"{source}: not a RetinaFace or HRNet face-landmark checkpoint (first keys: {sample}); "
        "pass a checkpoint of one of those models"
    )


def check_finite(state_dict: StateDict, source: str = "checkpoint") -> None:
    """Refuse weights that hold NaN or infinite values (a damaged file, or a training run that diverged):
    such a model loads and runs, but silently finds nothing."""
    bad = [k for k, t in state_dict.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise CheckpointError(
            f"{source}: {len(bad)} of {len(state_dict)} weight tensors hold NaN or infinite values (first: {bad[0]}); "
            "the checkpoint is damaged or comes from a training run that diverged; use another checkpoint"
        )


def load_weights(model: nn.Module, state_dict: StateDict, source: str = "checkpoint") -> None:
    """Strictly copy ``state_dict`` into ``model``; one-line error naming missing, unexpected and mis-shaped keys."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    misshaped = [
        f"{k} {tuple(state_dict[k].shape)}≠{tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)):
        if items:
            shown = ", ".join(items[:3]) + (f", … ({len(items)} in all)" if len(items) > 3 else "")
            problems.append(f"{label} keys: {shown}")
    if problems:
        raise CheckpointError(f"{source}: does not match {type(model).__name__}: " + "; ".join(problems))
    model.load_state_dict(state_dict, strict=True)
