"""Choosing the device for inference: the CPU, or a CUDA GPU through ONNX Runtime's CUDA execution provider
(the ``onnxruntime-gpu`` package, no torch) or through PyTorch (``hrface[torch]`` with a CUDA build).

Device strings are 'cpu' and 'cuda:N'. Which backend runs a model on a GPU is decided in
:func:`hrface.runtime.backends.resolve_backend`: ONNX Runtime when its CUDA provider is there (the shipped
models are ONNX graphs), else PyTorch.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import ConfigError
from ..extras import available, require

CUDA_PROVIDER = "CUDAExecutionProvider"


def ort_cuda_available() -> bool:
    """Whether the installed ONNX Runtime has the CUDA execution provider (``pip install onnxruntime-gpu``)."""
    if not available("onnxruntime"):
        return False
    return CUDA_PROVIDER in importlib.import_module("onnxruntime").get_available_providers()


def torch_cuda_available() -> bool:
    """Whether torch is installed with a usable CUDA device (without importing torch when it is not installed)."""
    return available("torch") and bool(importlib.import_module("torch").cuda.is_available())


def ort_providers(device: str) -> list[Any]:
    """ONNX Runtime execution providers for a device string: the CPU provider alone for 'cpu'; for 'cuda:N' the
    CUDA provider on GPU N, with the CPU provider for any operator it lacks."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    return [(CUDA_PROVIDER, {"device_id": index}), "CPUExecutionProvider"]


def resolve_device(device: Any, *, for_torch: bool = False) -> str:
    """The device as a string ('cpu', 'cuda:0', …).

    ``None``/'cpu' → 'cpu' (without importing torch); 'cuda'/'cuda:N' when ONNX Runtime's CUDA provider or a
    CUDA build of torch is there (``for_torch``: torch's alone, as training needs); 'auto' → CUDA when
    available, else the CPU; a ``torch.device`` is accepted as it is. A CUDA device that cannot be used is a
    one-line :class:`ConfigError` that says what to install.
    """
    if device is None or str(device) == "cpu":
        return "cpu"
    if not isinstance(device, str) and available("torch"):
        torch = importlib.import_module("torch")
        if isinstance(device, torch.device):
            return str(device)
    text = str(device)
    ort_ok = not for_torch and ort_cuda_available()
    if text == "auto":
        return "cuda:0" if ort_ok or torch_cuda_available() else "cpu"
    kind, _, index = text.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise ConfigError(f"unknown device {device!r}; use 'cpu', 'cuda', 'cuda:N' or 'auto'")
    if ort_ok or torch_cuda_available():
        return f"cuda:{index or 0}"
    if for_torch:
        require("torch", "torch", f"device {text!r}")
        raise ConfigError(f"device {text!r} requested but this torch has no usable CUDA device; use device='cpu'")
    raise ConfigError(
        f"device {text!r} requested but CUDA is not available here (no CUDA execution provider in onnxruntime, "
        f'no CUDA build of torch): pip install onnxruntime-gpu (no torch needed) or pip install "hrface[torch]" '
        "with a CUDA torch, on a machine with an NVIDIA GPU; or use device='cpu'"
    )
