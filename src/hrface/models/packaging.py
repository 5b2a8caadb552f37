"""Compact release files: any supported checkpoint → a half-precision ``.safetensors`` with metadata.

The project's own weights ship inside the package this way (float16 halves the file; the runtime
loads it into float32 models, see :func:`hrface.models.registry.create_model`).  The metadata keeps
what is not in the tensors: the architecture and, for landmark models, the training crop size.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from ..io.files import atomic_write_bytes
from .checkpoint import infer_architecture, read_metadata, read_state_dict


def pack_weights(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    half: bool = True,
    metadata: dict[str, str] | None = None,
) -> str:
    """Write the state_dict of checkpoint ``src`` to ``dst`` (``.safetensors``), atomically.

    Floating-point tensors are stored as float16 when ``half``, except those with values beyond
    float16's range (e.g. the first BatchNorm's ``running_var`` of a detector fed 0–255 pixels), which
    stay float32; BatchNorm's ``num_batches_tracked`` and other integer tensors keep their dtype.  The
    file's metadata is the source's metadata (a trained ``model.safetensors`` has ``input_size`` or
    ``max_size``), the architecture read from the keys, and ``metadata`` on top.
    Returns the sha256 of the written file.
    """
    from safetensors.torch import save as safetensors_bytes

    state = read_state_dict(src)
    arch = infer_architecture(state, source=os.fspath(src))
    meta = {**read_metadata(src), "arch": arch.kind, **{k: str(v) for k, v in arch.options.items()}}
    meta.update(metadata or {})
    tensors = {k: _packed(v, half).contiguous() for k, v in state.items()}
    payload = safetensors_bytes(tensors, metadata=meta)
    atomic_write_bytes(Path(dst), payload)
    return hashlib.sha256(payload).hexdigest()


def _packed(tensor: torch.Tensor, half: bool) -> torch.Tensor:
    """float16 if ``half`` and every value fits float16's range, float32 for other floats, else as is."""
    if not tensor.is_floating_point():
        return tensor
    fits = tensor.numel() == 0 or float(tensor.abs().max()) <= torch.finfo(torch.float16).max
    return tensor.to(torch.float16 if half and fits else torch.float32)
