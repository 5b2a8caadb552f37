"""Training of the HRNet landmark model: YAML config, augmented crops with heatmap targets, trainer."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AugmentationConfig": ".config",
    "DataConfig": ".config",
    "LandmarkTrainConfig": ".config",
    "ModelConfig": ".config",
    "OptimizerConfig": ".config",
    "ScheduleConfig": ".config",
    "SourceSpec": ".config",
    "config_from_dict": ".config",
    "config_to_dict": ".config",
    "load_config": ".config",
    "LandmarkTrainDataset": ".dataset",
    "SAMPLE_READERS": ".sources",
    "build_samples": ".sources",
    "read_source": ".sources",
    "evaluate": ".trainer",
    "heatmap_loss": ".trainer",
    "load_checkpoint": ".trainer",
    "save_checkpoint": ".trainer",
    "train": ".trainer",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` on first use (the trainer pulls in torch; configs do not)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
