"""Training loop of RetinaFace: SGD + step schedule, multibox loss, validation loss, atomic
checkpoints and exact resume (the shared machinery is :mod:`hrface.training.common`).

Files in ``config.output_dir``: ``last.pt`` / ``best.pt`` (full training state), ``model.safetensors``
(weights of the epoch with the highest validation AP, with the detector's configuration as metadata,
:func:`trained_config`: ``arch``, ``backbone``, ``mean``, ``std``, ``max_size``, ``train_size``; loadable with
:func:`hrface.models.registry.create_model` and :class:`hrface.Detector`),
``metrics.csv`` (:data:`METRIC_FIELDS`) and ``tensorboard/``.

On CUDA the model runs in channels-last layout under bfloat16 autocast (the loss, prior matching and
decoding in float32) with pinned-memory loader workers; on the CPU everything stays float32.

Exact resume: the image order of epoch ``e`` is drawn from ``(seed, e)`` and each image's
augmentation from ``(seed, e, index)`` (:class:`~.dataset.DetectionTrainDataset`); RetinaFace has no
dropout.  A resumed run therefore replays the uninterrupted one bitwise on CPU (same thread count).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import nn

from ...data.detection.samples import DetectionSample
from ...errors import ConfigError
from ...evaluation.detection import evaluate_detections
from ...models.checkpoint import ArchSpec, load_weights, read_state_dict
from ...models.config import ModelConfig
from ...ops.priors import prior_boxes
from ...runtime.detector import Detector
from ..common import autocast, epoch_loader, start_training, to_device
from ..yaml_config import config_to_dict
from .augment import Faces
from .config import SELECT_METRICS, DetectionTrainConfig
from .dataset import DetectionTrainDataset, detection_collate
from .loss import DetectionLoss, multibox_loss

__all__ = ["METRIC_FIELDS", "evaluate", "load_backbone_weights", "targets_loss", "train_detector", "trained_config"]

_PARTS = ("loss_loc", "loss_cls", "loss_landm")
_DETECTION_METRICS = ("val_ap", "val_recall", "val_keypoint_nme")
METRIC_FIELDS = (
    "epoch",
    "train_loss",
    *(f"train_{p}" for p in _PARTS),
    "val_loss",
    *(f"val_{p}" for p in _PARTS),
    *_DETECTION_METRICS,
    "lr",
    "seconds",
)
"""Columns of ``metrics.csv``: total and part losses (parts unweighted; total = 2 loc + cls + landm with
the reference weight) averaged per image over the epoch's training batches and over the validation
set, and the validation detection metrics of :func:`evaluate`."""

VAL_SCORE_THRESHOLD = 0.02  # detections kept for AP, as the reference WIDER FACE evaluation

CLASSIFIER_PREFIX = "fc."


def recommended_max_size(image_size: int) -> int:
    """The longer photo side (pixels) a detector trained at ``image_size`` should see at inference:
    1.5 × ``image_size``, i.e. a 3:2 photo whose short side is scaled to the training size, as whole
    photos are seen in training (random square crops of 0.3–1.0 of the short side, resized to
    ``image_size``). Recorded as the weights' ``max_size`` metadata (see :class:`~hrface.Detector`)."""
    return round(1.5 * image_size)


def trained_config(config: DetectionTrainConfig) -> ModelConfig:
    """The configuration of the detector a run trains, saved with its weights (``model.safetensors``): the
    backbone, the input mean (:data:`~hrface.models.config.DETECTOR_MEAN`), the training size and the photo
    size it is made for (:func:`recommended_max_size`)."""
    arch = ArchSpec("retinaface", {"backbone": config.model.backbone})
    return ModelConfig(arch, max_size=recommended_max_size(config.image_size), train_size=config.image_size)


def load_backbone_weights(model: nn.Module, path: str | os.PathLike[str]) -> None:
    """Load an ImageNet backbone checkpoint into ``model.body`` (a RetinaFace's backbone), strictly.

    Accepts the reference's ``{'state_dict': …}`` files with ``module.`` prefixes; the ImageNet
    classifier (``fc.*``) is dropped.  :class:`~hrface.errors.CheckpointError` names missing or
    mis-shaped keys (e.g. ResNet50 weights for a MobileNet backbone).
    """
    state = read_state_dict(path)
    body = {k: v for k, v in state.items() if not k.startswith(CLASSIFIER_PREFIX)}
    load_weights(model.body, body, source=os.fspath(path))


def train_detector(
    config: DetectionTrainConfig,
    train_samples: list[DetectionSample],
    val_samples: list[DetectionSample],
    resume: bool = False,
    max_steps: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train RetinaFace as ``config`` says, writing the run's files to ``config.output_dir``.

    ``val_samples`` may be empty (no validation; every epoch is then the best).  ``resume`` continues
    ``output_dir/last.pt`` exactly (else an existing run there is refused); ``max_steps`` stops after
    that many optimizer steps in all, resumably; ``progress`` draws a tqdm bar on a terminal.

    Returns:
        ``dict(epoch, global_step, finished, best_metric, best_epoch, history, output_dir)``: epochs
        completed, optimizer steps, whether all epochs are done, the ``config.select`` metric of the
        kept epoch (NaN for ``last``) and its 1-based epoch, the metrics rows.
    """
    if not train_samples:
        raise ConfigError("no training images")

    def initial_weights(model: nn.Module) -> None:
        if config.model.backbone_weights:
            load_backbone_weights(model, config.model.backbone_weights)
        if config.model.weights:
            load_weights(model, read_state_dict(config.model.weights), source=config.model.weights)

    run = start_training(config, trained_config(config).arch, resume, progress, initial_weights)
    model, device = run.model, run.device
    cache_bytes = config.data.image_cache_mb * 2**20
    train_set = DetectionTrainDataset(
        train_samples, config.image_size, True, config.seed, config.augmentation, cache_bytes
    )
    val_set = DetectionTrainDataset(val_samples, config.image_size, train=False, seed=config.seed)
    priors = torch.from_numpy(prior_boxes(config.image_size, config.image_size)).to(device)

    def loss_fn(batch: tuple[torch.Tensor, list[torch.Tensor]]) -> tuple[torch.Tensor, int, dict[str, float]]:
        images, targets = batch
        with autocast(device, config.precision):
            outputs = model(to_device(images, device))
        loss = targets_loss(outputs, targets, priors, config, device)
        return loss.total, len(images), loss.parts()

    best_key = None if config.select == "last" else config.select
    result = run.run(
        config_dict=config_to_dict(config),
        weights_metadata=trained_config(config).metadata(),
        metric_fields=METRIC_FIELDS,
        best_key=best_key,
        has_validation=bool(val_samples),
        train_epoch=run.epoch_trainer(train_set, loss_fn, max_steps, detection_collate),
        validate=lambda: evaluate(run.scored, val_set, priors, config, device),
        max_steps=max_steps,
        higher_is_better=bool(SELECT_METRICS[config.select]),
    )
    if best_key is None:
        result["best_metric"] = float("nan")  # the last epoch is kept, whatever its metrics
    return result


def targets_loss(
    outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    targets: list[torch.Tensor],
    priors: torch.Tensor,
    config: DetectionTrainConfig,
    device: torch.device,
) -> DetectionLoss:
    """The multibox loss of the network outputs ``(loc, logits, landm)`` of a batch and its per-image
    target rows (M_i, 15), with the loss parameters of ``config``."""
    c = config.loss
    return multibox_loss(
        *outputs,
        priors,
        [t.to(device) for t in targets],
        threshold=c.match_threshold,
        ignore_below=c.ignore_below,
        neg_pos_ratio=c.neg_pos_ratio,
        loc_weight=c.loc_weight,
        landm_weight=c.landm_weight,
    )


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: DetectionTrainDataset,
    priors: torch.Tensor,
    config: DetectionTrainConfig,
    device: torch.device,
) -> dict[str, float | None]:
    """Validation metrics of ``dataset`` (no augmentation, model in eval mode); None where undefined
    (all for an empty dataset; e.g. the keypoint error when no face is found).

    - ``val_loss`` and ``val_loss_loc / _cls / _landm``: each batch's loss weighted by its images;
    - ``val_ap``, ``val_recall``, ``val_keypoint_nme``: :func:`hrface.evaluation.detection.evaluate_detections`
      (AP at IoU 0.5, recall at score 0.5, keypoint error / inter-ocular distance) of the detections
      (the :class:`~hrface.runtime.detector.Detector` post-processing: score > 0.02, NMS 0.4) against
      the annotated faces, both in network-input pixels.
    """
    keys = ("val_loss", *(f"val_{p}" for p in _PARTS))
    if len(dataset) == 0:
        return dict.fromkeys((*keys, *_DETECTION_METRICS))
    detector = Detector(model, threshold=VAL_SCORE_THRESHOLD, max_size=None, device=device)
    model.eval()
    sums = dict.fromkeys(keys, 0.0)
    detections, faces = [], []
    side = config.image_size
    for batch in epoch_loader(dataset, config.batch_size, config.workers, device, None, detection_collate):
        images, targets = batch
        with autocast(device, config.precision):
            loc, logits, landm = (out.float() for out in model(to_device(images, device)))
        loss = targets_loss((loc, logits, landm), targets, priors, config, device)
        n = len(images)
        sums["val_loss"] += loss.total.item() * n
        for key, value in loss.parts().items():
            sums[f"val_{key}"] += value * n
        with np.errstate(over="ignore", invalid="ignore"):  # an early model may decode infinite boxes: NMS drops them
            detections += [detector.postprocess(loc[i], logits[i], landm[i], (side, side)) for i in range(n)]
        faces += [_faces_of_rows(rows.numpy(), side) for rows in targets]
    model.train()
    found = evaluate_detections(detections, faces).to_dict()  # NaN (undefined) → None
    return {
        **{key: value / len(dataset) for key, value in sums.items()},
        **{key: found[key.removeprefix("val_")] for key in _DETECTION_METRICS},
    }


def _faces_of_rows(rows: np.ndarray, side: int) -> Faces:
    """Target rows (M, 15) normalised → faces in pixels of a ``side`` × ``side`` input."""
    return Faces(rows[:, :4] * side, rows[:, 4:14].reshape(-1, 5, 2) * side, rows[:, 14] > 0)
