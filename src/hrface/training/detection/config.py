"""Configuration of RetinaFace training, loaded from YAML.

A YAML file holds a (possibly partial) nested mapping of :class:`DetectionTrainConfig`'s fields;
missing fields keep their defaults — the reference Pytorch_Retinaface MobileNet-0.25 recipe — and an
unknown key raises :class:`~hrface.errors.ConfigError` naming it (machinery shared with the landmark
trainer: :mod:`hrface.training.yaml_config`).  Relative paths in the file (``data.*.path``,
``data.*.image_root``, ``data.split_file``, ``model.backbone_weights``, ``output_dir``) are resolved
against the directory of the YAML file.

Reference recipe (``cfg_mnet`` / ``train.py``): 640 × 640 inputs, batch 32, SGD lr 1e-3, momentum
0.9, weight decay 5e-4, 250 epochs with the lr × 0.1 after epochs 190 and 220 (its warm-up is
disabled: ``warmup_epoch = -1``), ImageNet-initialised backbone, loss with matching IoU 0.35, 7
hard negatives per positive and box-loss weight 2.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...models.retinaface.model import BACKBONES
from ..yaml_config import (
    OptimizerConfig,
    ScheduleConfig,
    SourceSpec,
    config_from_mapping,
    load_yaml_config,
    raise_failed,
    resolve_path,
    training_checks,
)
from .loss import LOC_WEIGHT, NEG_POS_RATIO
from .matching import IGNORE_BELOW, MATCH_THRESHOLD
from .teacher import CACHE_MIN_SCORE, DEFAULT_MATCH_IOU, DEFAULT_THRESHOLD

__all__ = [
    "DetectionAugmentConfig",
    "DetectionDataConfig",
    "DetectionLossConfig",
    "DetectionModelConfig",
    "DetectionOptimizerConfig",
    "DetectionScheduleConfig",
    "DetectionTrainConfig",
    "detection_config_from_dict",
    "load_detection_config",
]


@dataclass
class DetectionDataConfig:
    """Training / validation images.

    Source formats: ``retinaface`` (a ``label.txt`` of the reference; ``image_root`` defaults to its
    folder) or any landmark format of :data:`hrface.training.landmarks.SAMPLE_READERS` (``300w``,
    ``csv``, ``wflw``, ``cofw``), whose faces become detection boxes and 5 keypoints
    (:func:`hrface.data.detection.detection_samples_from_landmarks`).

    ``val`` sources, when given, are the validation set.  Otherwise the faces of the landmark-format
    ``train`` sources are split by photo exactly as the landmark trainer splits them
    (``split_file`` read if it exists, else written; ``val_fraction``, ``split_seed``), so that a
    detector and a landmark model sharing the split file hold out the same photos; ``retinaface``
    train sources are then all training data.

    ``teacher``: a detector name or checkpoint path (e.g. the published WIDER FACE MobileNet-0.25). It
    runs once over the training photos; its detections scoring at least ``teacher_threshold`` whose IoU
    with every annotated face is below ``teacher_match_iou`` become extra training faces with a box and
    no keypoints (:mod:`.teacher`). Its detections are cached in ``teacher_cache`` (JSON) when given.
    Validation photos keep their annotation only.

    ``negatives``: folders of face-free images (searched recursively; e.g. the ``hrface mine-negatives``
    output), added to the training images as images without faces, each ``negative_repeat`` times: an item
    of one is a random square of it (the reference augmentation), and ``augmentation.background_prob`` lays
    them under mosaics and zoom-outs. Mosaic cells then hold photos with faces only: face-free images shrunk into
    cells took most cells and cost small faces (small-face recall at 960 px 88.4 → 85.3 % in the first run);
    ``augmentation.negative_cell_prob`` puts a face-free image in each other cell of a mosaic with that
    probability.

    ``image_cache_mb``: keep up to this many megabytes of decoded training photos in memory (0: off), read
    once before training and shared with the loader workers (fork), instead of decoding every photo each
    time it is drawn (a 4 × 4 mosaic draws 16).  Items are unchanged, bit for bit.
    """

    train: list[SourceSpec] = field(default_factory=list)
    val: list[SourceSpec] = field(default_factory=list)
    split_file: str | None = None
    val_fraction: float = 0.2
    split_seed: int = 0
    teacher: str | None = None
    teacher_threshold: float = DEFAULT_THRESHOLD
    teacher_match_iou: float = DEFAULT_MATCH_IOU
    teacher_cache: str | None = None
    negatives: list[str] = field(default_factory=list)
    negative_repeat: int = 1
    image_cache_mb: int = 0


@dataclass
class DetectionAugmentConfig:
    """Small-face augmentation on top of the reference one (all off by default: ``mosaic_prob`` and
    ``zoom_out_prob`` 0 train exactly as before, item for item).

    Each training item is, with probability ``mosaic_prob``, a mosaic: a square canvas of ``image_size``
    cut into ``g × g`` cells (``g`` drawn from ``mosaic_grids``), holding the item's photo and
    ``g² − 1`` others drawn from the training set; with probability ``zoom_out_prob`` its photo alone on
    the canvas (zoom-out); else the reference augmentation (:mod:`.augment`). In both canvas layouts
    each photo is scaled so that one of its faces (drawn at random) is ``face_size`` pixels on the canvas
    (log-uniform in [low, high], as √(width × height) of its box; never enlarged), and the part that fits
    its cell is pasted at a random place on a mean-coloured background (:mod:`.mosaic`). Faces under
    ``min_face`` pixels on the canvas are dropped (background). The photos and every random choice come
    from the item's ``(seed, epoch, index)`` generator, so exact resume still holds. With probability
    ``background_prob`` a canvas starts from a face-free training image (``data.negatives``) resized to fill
    it instead of the mean colour, so the photos' surroundings are not always flat.
    """

    mosaic_prob: float = 0.0
    mosaic_grids: list[int] = field(default_factory=lambda: [2, 3, 4])
    zoom_out_prob: float = 0.0
    face_size: list[float] = field(default_factory=lambda: [10.0, 100.0])
    min_face: float = 8.0
    background_prob: float = 0.0
    negative_cell_prob: float = 0.0

    def checks(self) -> list[tuple[bool, str]]:
        """``(ok, message)`` checks of the section."""
        low_high = len(self.face_size) == 2 and 0 < self.face_size[0] <= self.face_size[1]
        return [
            (
                min(self.mosaic_prob, self.zoom_out_prob) >= 0 and self.mosaic_prob + self.zoom_out_prob <= 1,
                "augmentation.mosaic_prob and zoom_out_prob must be non-negative with a sum of at most 1",
            ),
            (bool(self.mosaic_grids) and min(self.mosaic_grids) >= 1, "augmentation.mosaic_grids: whole numbers >= 1"),
            (low_high, f"augmentation.face_size must be [low, high] pixels with 0 < low <= high, got {self.face_size}"),
            (self.min_face >= 0, "augmentation.min_face must be non-negative"),
            (0 <= self.background_prob <= 1, "augmentation.background_prob must be in [0, 1]"),
            (0 <= self.negative_cell_prob <= 1, "augmentation.negative_cell_prob must be in [0, 1]"),
        ]


# Which epoch's weights a run keeps: metric → higher is better (None: the last epoch).
SELECT_METRICS: dict[str, bool | None] = {"val_ap": True, "val_keypoint_nme": False, "last": None}


@dataclass
class DetectionModelConfig:
    """``backbone``: 'mobilenet0.25' or 'resnet50'.  ``backbone_weights``: optional ImageNet
    checkpoint of the backbone alone (e.g. ``mobilenetV1X0.25_pretrain.tar``; a ``state_dict`` /
    ``module.`` wrapper and the ``fc`` classifier are accepted), loaded into the backbone before
    training; null trains from scratch.  ``weights``: optional checkpoint of a whole RetinaFace of the
    same backbone to start from (fine-tuning; loaded strictly), instead of ``backbone_weights``."""

    backbone: str = "mobilenet0.25"
    backbone_weights: str | None = None
    weights: str | None = None


@dataclass
class DetectionOptimizerConfig(OptimizerConfig):
    """The reference's SGD: lr 1e-3, momentum 0.9, weight decay 5e-4."""

    name: str = "sgd"
    lr: float = 1e-3
    weight_decay: float = 5e-4
    momentum: float = 0.9


@dataclass
class DetectionScheduleConfig(ScheduleConfig):
    """The reference MobileNet-0.25 schedule: 250 epochs, lr × 0.1 after epochs 190 and 220."""

    epochs: int = 250
    lr_steps: list[int] = field(default_factory=lambda: [190, 220])
    lr_factor: float = 0.1


@dataclass
class DetectionLossConfig:
    """Multibox loss parameters (:mod:`hrface.training.detection.loss`): prior matching IoU, the IoU
    below which a face's best prior is too poor to use it, hard negatives per positive, box- and
    keypoint-loss weights."""

    match_threshold: float = MATCH_THRESHOLD
    ignore_below: float = IGNORE_BELOW
    neg_pos_ratio: int = NEG_POS_RATIO
    loc_weight: float = LOC_WEIGHT
    landm_weight: float = 1.0


@dataclass
class DetectionTrainConfig:
    """Everything a detector training run depends on.

    ``image_size``: side of the square network input (pixels; a multiple of 32 keeps every pyramid
    level whole).  ``device``: 'auto', 'cpu', 'cuda', 'cuda:N'; ``precision``: 'auto' (bfloat16
    autocast on CUDA, float32 elsewhere), 'bf16' (on any device) or 'fp32'.  Validation (loss and detection AP on
    the validation images, without augmentation) runs every ``eval_every`` epochs and after the last;
    ``select`` picks the epoch whose weights are kept (``best.pt``, ``model.safetensors``): ``val_ap``
    (highest validation AP), ``val_keypoint_nme`` (lowest keypoint error) or ``last`` (the final epoch,
    as the reference's ``*_Final.pth``).  ``ema_decay``: keep an exponential moving average of the weights with
    this decay per step (0: off) and validate, select and publish it instead of the last step's weights
    (:mod:`~hrface.training.averaging`).  ``threads``: torch's intra-op threads in the training process
    (0: torch's default; see :func:`~hrface.training.common.set_training_threads`).
    """

    data: DetectionDataConfig = field(default_factory=DetectionDataConfig)
    model: DetectionModelConfig = field(default_factory=DetectionModelConfig)
    image_size: int = 640
    augmentation: DetectionAugmentConfig = field(default_factory=DetectionAugmentConfig)
    optimizer: DetectionOptimizerConfig = field(default_factory=DetectionOptimizerConfig)
    schedule: DetectionScheduleConfig = field(default_factory=DetectionScheduleConfig)
    loss: DetectionLossConfig = field(default_factory=DetectionLossConfig)
    batch_size: int = 32
    workers: int = 4
    threads: int = 0
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    output_dir: str = "runs/retinaface"
    eval_every: int = 1
    select: str = "val_ap"
    ema_decay: float = 0.0

    def __post_init__(self) -> None:
        c = self
        raise_failed(
            [
                (
                    c.model.backbone in BACKBONES,
                    f"model.backbone must be one of {', '.join(sorted(BACKBONES))}, got {c.model.backbone!r}",
                ),
                (c.image_size >= 32, f"image_size must be at least 32 pixels, got {c.image_size}"),
                (0 < c.loss.match_threshold <= 1, "loss.match_threshold must be in (0, 1]"),
                (0 <= c.loss.ignore_below <= 1, "loss.ignore_below must be in [0, 1]"),
                (
                    c.loss.neg_pos_ratio >= 0 and c.loss.loc_weight >= 0 and c.loss.landm_weight >= 0,
                    "loss weights must be non-negative",
                ),
                (c.select in SELECT_METRICS, f"select must be one of {', '.join(SELECT_METRICS)}, got {c.select!r}"),
                (
                    not (c.model.weights and c.model.backbone_weights),
                    "model.weights and model.backbone_weights both set; keep one",
                ),
                *training_checks(c),
                *c.augmentation.checks(),
                (0 <= c.data.val_fraction < 1, "data.val_fraction must be in [0, 1)"),
                (
                    CACHE_MIN_SCORE <= c.data.teacher_threshold <= 1,
                    f"data.teacher_threshold must be in [{CACHE_MIN_SCORE}, 1] (the cache keeps scores from "
                    f"{CACHE_MIN_SCORE}), got {c.data.teacher_threshold}",
                ),
                (0 < c.data.teacher_match_iou <= 1, "data.teacher_match_iou must be in (0, 1]"),
                (c.data.negative_repeat >= 1, "data.negative_repeat must be a whole number >= 1"),
                (c.data.image_cache_mb >= 0, "data.image_cache_mb must be a number of megabytes (0 = off)"),
            ]
        )


def detection_config_from_dict(
    data: dict[str, Any] | None, base_dir: str | os.PathLike[str] | None = None
) -> DetectionTrainConfig:
    """The config of a nested mapping (defaults for missing keys), relative paths resolved against
    ``base_dir`` when given; :class:`ConfigError` names an unknown or mistyped key."""
    paths = ("data.split_file", "data.teacher_cache", "model.backbone_weights", "model.weights", "output_dir")
    config = config_from_mapping(DetectionTrainConfig, data, base_dir, paths, sources=("data.train", "data.val"))
    if base_dir is not None:
        config.data.negatives = [resolve_path(base_dir, folder) for folder in config.data.negatives]
    teacher = config.data.teacher
    if base_dir is not None and teacher and Path(teacher).suffix:  # a checkpoint path, not a registry name
        config.data.teacher = resolve_path(base_dir, teacher)
    return config


def load_detection_config(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> DetectionTrainConfig:
    """Read a YAML detector training config (see the module doc) with ``'KEY=VALUE'`` overrides;
    :class:`ConfigError` with a one-line message."""
    return load_yaml_config(path, detection_config_from_dict, overrides)
