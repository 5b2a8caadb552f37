"""Choosing the torch device for inference."""

from __future__ import annotations

import torch

from ..errors import ConfigError


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/'cpu' → CPU; 'cuda'/'cuda:N' when available; 'auto' → CUDA if available, else CPU."""
    if device is None:
        return torch.device("cpu")
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"unknown device {device!r}; use 'cpu', 'cuda', 'cuda:N' or 'auto'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available; use device='cpu'")
    return dev
