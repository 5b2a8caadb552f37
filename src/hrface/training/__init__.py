"""Model training (landmarks: :mod:`hrface.training.landmarks`)."""

from .landmarks import LandmarkTrainConfig, LandmarkTrainDataset, build_samples, load_config, train

__all__ = ["LandmarkTrainConfig", "LandmarkTrainDataset", "build_samples", "load_config", "train"]
