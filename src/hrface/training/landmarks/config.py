"""Configuration of landmark-model training, loaded from YAML, and the hook that turns it into samples.

A YAML file holds a (possibly partial) nested mapping of :class:`LandmarkTrainConfig`'s fields;
missing fields keep their defaults (the reference HRNet-Facial-Landmark-Detection recipe), an
unknown key raises :class:`~hrface.errors.ConfigError` naming it.  Relative paths in the file
(``data.*.path``, ``data.*.image_root``, ``data.split_file``, ``output_dir``) are resolved against
the directory of the YAML file, so a run does not depend on the working directory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...landmarks.crop import DEFAULT_CROP_SIZE, DEFAULT_HEATMAP_SIZE
from ...models.config import heatmap_sigma
from ..yaml_config import (
    OptimizerConfig,
    ScheduleConfig,
    SourceSpec,
    config_from_mapping,
    config_to_dict,
    load_yaml_config,
    raise_failed,
    resolve_path,
    training_checks,
)

__all__ = [
    "AugmentationConfig",
    "DataConfig",
    "LandmarkTrainConfig",
    "ModelConfig",
    "OptimizerConfig",
    "ScheduleConfig",
    "SourceSpec",
    "config_from_dict",
    "config_to_dict",
    "load_config",
]


@dataclass
class DataConfig:
    """Training / validation samples.

    ``val`` sources, when given, are the validation set.  Otherwise about ``val_fraction`` of the
    faces of the ``train`` sources is held out by whole photos, per subset, drawn with ``split_seed``
    (:func:`hrface.data.landmarks.split_by_photo`); with ``split_file`` the split is read from that
    JSON file (:func:`~hrface.data.landmarks.load_split`) if it exists, else written there.

    With ``detector`` (a detector name or checkpoint), every face's crop box is replaced by the box
    of the detection that matches it (:mod:`hrface.data.landmarks.detector_boxes`), so that training
    crops are made exactly as inference crops; the boxes are cached in ``box_cache`` (JSON) if given.

    ``repeat`` oversamples training faces by subset (the source folder's name, e.g. ``{afw: 2}``: each
    AFW training face is seen twice per epoch) and ``yaw_repeat`` by annotated head yaw (``{20: 2}``: each
    face turned 20° or more is seen twice; :func:`~.sources.oversample`); validation faces are never repeated.
    """

    train: list[SourceSpec] = field(default_factory=list)
    val: list[SourceSpec] = field(default_factory=list)
    split_file: str | None = None
    val_fraction: float = 0.2
    split_seed: int = 0
    detector: str | None = None
    detector_threshold: float = 0.3
    box_cache: str | None = None
    repeat: dict[str, int] = field(default_factory=dict)
    yaw_repeat: dict[float, int] = field(default_factory=dict)


@dataclass
class ModelConfig:
    """HRNetV2 width (18 = HRNetV2-W18) and number of landmarks (68, 98, 29 or 19: a known layout).
    ``weights``: optional registry name or checkpoint of a landmark model of the same architecture to
    start from (loaded strictly; a resumed run takes its weights from ``last.pt`` instead)."""

    width: int = 18
    num_landmarks: int = 68
    weights: str | None = None


@dataclass
class AugmentationConfig:
    """Training augmentation.  Geometry (reference values): crop side × U(1 - scale_factor,
    1 + scale_factor), rotation U(-rotation, rotation) degrees with probability ``rotation_prob``,
    horizontal flip p 0.5; ``box_shift``: the crop centre moves by U(-box_shift, box_shift) × the crop
    side in x and in y (a detector's box noise; 0 = off).  Appearance (all off by default; see
    :mod:`.appearance`): ``color`` strength, ``blur_prob``, ``jpeg_prob``, ``occlusion_prob``."""

    scale_factor: float = 0.25
    rotation: float = 30.0
    rotation_prob: float = 0.6
    flip: bool = True
    box_shift: float = 0.0
    color: float = 0.0
    blur_prob: float = 0.0
    jpeg_prob: float = 0.0
    occlusion_prob: float = 0.0


@dataclass
class LandmarkTrainConfig:
    """Everything a training run depends on.

    Sizes are pixels: the model sees ``input_size``² crops and outputs ``heatmap_size``² maps
    (HRNet: ``heatmap_size = input_size / 4``).  ``sigma`` is the targets' Gaussian σ in heatmap
    pixels (None: :func:`~hrface.models.config.heatmap_sigma`).  ``device``: 'auto', 'cpu',
    'cuda', 'cuda:N'; ``precision``: 'auto' (bfloat16 autocast on CUDA, float32 elsewhere), 'bf16'
    (bfloat16 autocast on any device, e.g. a CPU with AVX-512 BF16) or 'fp32'.  Validation runs every
    ``eval_every`` epochs (and after the last).  ``loss``:
    'mse' (the reference heatmap MSE) or 'awing' (Adaptive Wing, :func:`~.losses.adaptive_wing_loss`).
    ``pack``: optional face pack (``hrface pack-faces``) to read training and validation crops from
    instead of the photos (for a small, self-contained working tree, e.g. on a GPU machine).
    ``precise_bn``: before each validation, recompute the BatchNorm statistics over the plain
    (unaugmented) crops of this many training faces (0: keep the running averages;
    :func:`~hrface.training.common.recalibrate_batchnorm`).
    ``ema_decay``: keep an exponential moving average of the weights with this decay per step (e.g.
    0.998, about the last 500 steps; 0: off) and validate and publish it instead of the last step's
    weights (:mod:`~hrface.training.averaging`).  ``threads``: torch's intra-op threads in the training
    process (0: torch's default; see :func:`~hrface.training.common.set_training_threads`).
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    input_size: int = DEFAULT_CROP_SIZE
    heatmap_size: int = DEFAULT_HEATMAP_SIZE
    sigma: float | None = None
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    batch_size: int = 16
    workers: int = 2
    threads: int = 0
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    output_dir: str = "runs/landmarks"
    eval_every: int = 1
    loss: str = "mse"
    pack: str | None = None
    precise_bn: int = 0
    ema_decay: float = 0.0

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def target_sigma(self) -> float:
        """The heatmap Gaussian σ actually used (heatmap pixels)."""
        return float(self.sigma) if self.sigma is not None else heatmap_sigma(self.model.num_landmarks)


def _validate(c: LandmarkTrainConfig) -> None:
    raise_failed(
        [
            (c.input_size > 0 and c.heatmap_size > 0, "input_size and heatmap_size must be positive"),
            (
                c.input_size == 4 * c.heatmap_size,
                f"heatmap_size must be input_size / 4 for HRNet, got {c.input_size} and {c.heatmap_size}",
            ),
            (c.sigma is None or c.sigma > 0, "sigma must be positive or null"),
            (c.model.width > 0 and c.model.num_landmarks > 0, "model.width and model.num_landmarks must be positive"),
            (0 <= c.augmentation.scale_factor < 1, "augmentation.scale_factor must be in [0, 1)"),
            (0 <= c.augmentation.rotation_prob <= 1, "augmentation.rotation_prob must be in [0, 1]"),
            (0 <= c.augmentation.box_shift < 0.5, "augmentation.box_shift must be in [0, 0.5)"),
            (0 <= c.augmentation.color < 1, "augmentation.color must be in [0, 1)"),
            *[
                (0 <= getattr(c.augmentation, name) <= 1, f"augmentation.{name} must be in [0, 1]")
                for name in ("blur_prob", "jpeg_prob", "occlusion_prob")
            ],
            (c.loss in ("mse", "awing"), f"loss must be 'mse' or 'awing', got {c.loss!r}"),
            (c.precise_bn >= 0, "precise_bn must be a number of faces (0 = off)"),
            *training_checks(c),
            (0 <= c.data.val_fraction < 1, "data.val_fraction must be in [0, 1)"),
        ]
    )


def config_from_dict(
    data: dict[str, Any] | None, base_dir: str | os.PathLike[str] | None = None
) -> LandmarkTrainConfig:
    """Build a config from a nested mapping (defaults for missing keys); relative paths are resolved
    against ``base_dir`` when given.  Raises :class:`ConfigError` naming an unknown or mistyped key."""
    paths = ("data.split_file", "data.box_cache", "output_dir", "pack")
    config = config_from_mapping(LandmarkTrainConfig, data, base_dir, paths, sources=("data.train", "data.val"))
    detector = config.data.detector
    if base_dir is not None and detector and Path(Path(base_dir) / detector).suffix:  # a path, not a registry name
        config.data.detector = resolve_path(base_dir, detector)
    weights = config.model.weights
    if base_dir is not None and weights and Path(weights).suffix:
        config.model.weights = resolve_path(base_dir, weights)
    return config


def load_config(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> LandmarkTrainConfig:
    """Read a YAML training config (see the module doc) with ``'KEY=VALUE'`` overrides
    (:func:`~hrface.training.yaml_config.load_yaml_config`); :class:`ConfigError` with a one-line message."""
    return load_yaml_config(path, config_from_dict, overrides)
