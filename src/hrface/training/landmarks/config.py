"""Configuration of landmark-model training, loaded from YAML, and the hook that turns it into samples.

A YAML file holds a (possibly partial) nested mapping of :class:`LandmarkTrainConfig`'s fields;
missing fields keep their defaults (the reference HRNet-Facial-Landmark-Detection recipe), an
unknown key raises :class:`~hrface.errors.ConfigError` naming it.  Relative paths in the file
(``data.*.path``, ``data.*.image_root``, ``data.split_file``, ``output_dir``) are resolved against
the directory of the YAML file, so a run does not depend on the working directory.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import ConfigError, one_line
from ...landmarks.crop import DEFAULT_CROP_SIZE, DEFAULT_HEATMAP_SIZE
from ...runtime.landmarker import heatmap_sigma


@dataclass
class SourceSpec:
    """One annotation source: ``format`` (a key of :data:`SAMPLE_READERS`), its ``path`` (folder or
    file), optionally the folder its image paths are relative to, and reader-specific ``options``
    (e.g. ``{one_based: true}``), passed on by the registered reader."""

    format: str
    path: str
    image_root: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


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
    """

    train: list[SourceSpec] = field(default_factory=list)
    val: list[SourceSpec] = field(default_factory=list)
    split_file: str | None = None
    val_fraction: float = 0.2
    split_seed: int = 0
    detector: str | None = None
    detector_threshold: float = 0.3
    box_cache: str | None = None


@dataclass
class ModelConfig:
    """HRNetV2 width (18 = HRNetV2-W18) and number of landmarks (68, 98, 29 or 19: a known layout)."""

    width: int = 18
    num_landmarks: int = 68


@dataclass
class AugmentationConfig:
    """Training augmentation (reference values): crop side × U(1 - scale_factor, 1 + scale_factor),
    rotation U(-rotation, rotation) degrees with probability ``rotation_prob``, horizontal flip p 0.5."""

    scale_factor: float = 0.25
    rotation: float = 30.0
    rotation_prob: float = 0.6
    flip: bool = True


@dataclass
class OptimizerConfig:
    """``name`` 'adam' or 'sgd' (``momentum`` only for SGD)."""

    name: str = "adam"
    lr: float = 1e-4
    weight_decay: float = 0.0
    momentum: float = 0.0


@dataclass
class ScheduleConfig:
    """Epochs and the step schedule: the lr is multiplied by ``lr_factor`` at each epoch in ``lr_steps``."""

    epochs: int = 60
    lr_steps: list[int] = field(default_factory=lambda: [30, 50])
    lr_factor: float = 0.1


@dataclass
class LandmarkTrainConfig:
    """Everything a training run depends on.

    Sizes are pixels: the model sees ``input_size``² crops and outputs ``heatmap_size``² maps
    (HRNet: ``heatmap_size = input_size / 4``).  ``sigma`` is the targets' Gaussian σ in heatmap
    pixels (None: :func:`~hrface.runtime.landmarker.heatmap_sigma`).  ``device``: 'auto', 'cpu',
    'cuda', 'cuda:N'.  Validation runs every ``eval_every`` epochs (and after the last).
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
    seed: int = 0
    device: str = "auto"
    output_dir: str = "runs/landmarks"
    eval_every: int = 1

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def target_sigma(self) -> float:
        """The heatmap Gaussian σ actually used (heatmap pixels)."""
        return float(self.sigma) if self.sigma is not None else heatmap_sigma(self.model.num_landmarks)


def _validate(c: LandmarkTrainConfig) -> None:
    checks = [
        (c.input_size > 0 and c.heatmap_size > 0, "input_size and heatmap_size must be positive"),
        (
            c.input_size == 4 * c.heatmap_size,
            f"heatmap_size must be input_size / 4 for HRNet, got {c.input_size} and {c.heatmap_size}",
        ),
        (c.sigma is None or c.sigma > 0, "sigma must be positive or null"),
        (c.model.width > 0 and c.model.num_landmarks > 0, "model.width and model.num_landmarks must be positive"),
        (0 <= c.augmentation.scale_factor < 1, "augmentation.scale_factor must be in [0, 1)"),
        (0 <= c.augmentation.rotation_prob <= 1, "augmentation.rotation_prob must be in [0, 1]"),
        (c.optimizer.name in ("adam", "sgd"), f"optimizer.name must be 'adam' or 'sgd', got {c.optimizer.name!r}"),
        (c.optimizer.lr > 0, "optimizer.lr must be positive"),
        (c.schedule.epochs > 0, "schedule.epochs must be positive"),
        (
            c.batch_size > 0 and c.workers >= 0 and c.seed >= 0 and c.eval_every > 0,
            "batch_size and eval_every must be positive, workers and seed non-negative",
        ),
        (0 <= c.data.val_fraction < 1, "data.val_fraction must be in [0, 1)"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"invalid training config: {message}")


def config_from_dict(
    data: dict[str, Any] | None, base_dir: str | os.PathLike[str] | None = None
) -> LandmarkTrainConfig:
    """Build a config from a nested mapping (defaults for missing keys); relative paths are resolved
    against ``base_dir`` when given.  Raises :class:`ConfigError` naming an unknown or mistyped key."""
    config = _build(LandmarkTrainConfig, data or {}, "")
    if base_dir is not None:
        base = Path(base_dir)

        def resolve(p: str | None) -> str | None:
            return None if p is None else os.path.normpath(base / Path(p).expanduser())

        for spec in (*config.data.train, *config.data.val):
            spec.path = resolve(spec.path) or spec.path
            spec.image_root = resolve(spec.image_root)
        config.data.split_file = resolve(config.data.split_file)
        config.data.box_cache = resolve(config.data.box_cache)
        if config.data.detector and Path(base / config.data.detector).suffix:  # a path, not a registry name
            config.data.detector = resolve(config.data.detector)
        config.output_dir = resolve(config.output_dir) or config.output_dir
    return config


def config_to_dict(config: LandmarkTrainConfig) -> dict[str, Any]:
    """Plain nested dict (str / int / float / bool / None / list / dict only: safe for ``weights_only``)."""
    return dataclasses.asdict(config)


def load_config(path: str | os.PathLike[str]) -> LandmarkTrainConfig:
    """Read a YAML training config (see the module doc); :class:`ConfigError` with a one-line message."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the config file ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({one_line(exc)})") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{p}: the config must be a mapping of keys, got {type(data).__name__}")
    try:
        return config_from_dict(data, base_dir=p.resolve().parent)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


def _build(cls: type, data: Any, where: str) -> Any:
    """Recursively build dataclass ``cls`` from a mapping, checking keys and value types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in names]
    if unknown:
        raise ConfigError(f"unknown config key {where}{unknown[0]!r}; known keys here: {', '.join(sorted(names))}")
    required = [
        f.name
        for f in dataclasses.fields(cls)
        if f.init
        and f.name not in data
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if required:
        raise ConfigError(f"config key {where}{required[0]!r} is required")
    kwargs = {k: _convert(hints[k], v, f"{where}{k}") for k, v in data.items()}
    return cls(**kwargs)


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, where)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, f"{where}.")
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key {where!r} must be a mapping, got {value!r}")
        return dict(value)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"config key {where!r} must be a list, got {value!r}")
        return [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        str: isinstance(value, str),
    }.get(tp, True)
    if not ok:
        raise ConfigError(f"config key {where!r} must be {tp.__name__}, got {value!r}")
    return float(value) if tp is float else value
