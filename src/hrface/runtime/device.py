"""Choosing the device for inference: the CPU (no torch needed) or a CUDA device (``hrface[torch]``)."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..extras import require


def resolve_device(device: Any) -> str:
    """The device as a string ('cpu', 'cuda:0', …).

    ``None``/'cpu' → 'cpu' (without importing torch); 'cuda'/'cuda:N' when available; 'auto' → CUDA if
    available, else the CPU; a ``torch.device`` is accepted as it is.
    """
    if device is None or str(device) == "cpu":
        return "cpu"
    torch = require("torch", "torch", f"device {str(device)!r}")
    if isinstance(device, torch.device):
        return str(device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {device!r}; use 'cpu', 'cuda', 'cuda:N' or 'auto'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available; use device='cpu'")
    return str(dev)
