"""Model training (landmarks: :mod:`hrface.training.landmarks`; detector: :mod:`hrface.training.detection`).

Training needs the ``hrface[torch]`` extra; its configs and data sources do not.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    name: ".landmarks"
    for name in ("LandmarkTrainConfig", "LandmarkTrainDataset", "build_samples", "load_config", "train")
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import what defines ``name`` on first use (the trainers pull in torch; configs do not)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
