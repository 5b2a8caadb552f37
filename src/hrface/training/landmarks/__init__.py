"""Training of the HRNet landmark model: YAML config, augmented crops with heatmap targets, trainer."""

from .config import (
    AugmentationConfig,
    DataConfig,
    LandmarkTrainConfig,
    ModelConfig,
    OptimizerConfig,
    ScheduleConfig,
    SourceSpec,
    config_from_dict,
    config_to_dict,
    load_config,
)
from .dataset import LandmarkTrainDataset
from .sources import SAMPLE_READERS, build_samples, read_source
from .trainer import evaluate, heatmap_loss, load_checkpoint, save_checkpoint, train

__all__ = [
    "SAMPLE_READERS",
    "AugmentationConfig",
    "DataConfig",
    "LandmarkTrainConfig",
    "LandmarkTrainDataset",
    "ModelConfig",
    "OptimizerConfig",
    "ScheduleConfig",
    "SourceSpec",
    "build_samples",
    "config_from_dict",
    "config_to_dict",
    "evaluate",
    "heatmap_loss",
    "load_checkpoint",
    "load_config",
    "read_source",
    "save_checkpoint",
    "train",
]
