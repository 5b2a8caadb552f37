"""Training loop of the HRNet landmark model: Adam + step schedule, heatmap MSE, NME validation,
atomic checkpoints and exact resume (the shared machinery is :mod:`hrface.training.common`).

On CUDA the model runs in channels-last layout under bfloat16 autocast (losses and decoding in
float32); on the CPU everything is float32, as before.

Files in ``config.output_dir``: ``last.pt`` / ``best.pt`` (full training state), ``model.safetensors``
(weights of the epoch with the lowest validation NME — the weight average's with ``ema_decay`` —, with the model's
configuration as metadata (:func:`trained_config`: crop size, heatmap σ, normalisation), loadable with
:func:`hrface.models.registry.create_model`), ``metrics.csv`` (``epoch, train_loss, val_loss,
val_nme, lr, seconds``) and ``tensorboard/``.

Exact resume: the sample order of epoch ``e`` is drawn from ``(seed, e)`` and each sample's
augmentation from ``(seed, e, index)``; the model has no dropout.  Restoring model, optimizer and
scheduler state and skipping the batches already done therefore replays the run exactly (bitwise on
CPU with the same thread count); the global RNG states are saved and restored as well.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ...data.landmarks.samples import LandmarkSample
from ...errors import ConfigError
from ...evaluation.landmarks import normalised_errors
from ...landmarks.crop import invert_affine
from ...landmarks.heatmaps import heatmaps_to_image
from ...landmarks.layouts import LandmarkLayout, get_layout
from ...models.checkpoint import ArchSpec, load_weights, read_state_dict
from ...models.config import ModelConfig
from ...models.registry import resolve_weights
from ..checkpoints import BEST_CHECKPOINT, BEST_WEIGHTS, LAST_CHECKPOINT, load_checkpoint, save_checkpoint
from ..common import (
    METRICS_CSV,
    EpochSampler,
    autocast,
    epoch_loader,
    recalibrate_batchnorm,
    start_training,
    to_device,
)
from .config import LandmarkTrainConfig, config_to_dict
from .dataset import LandmarkTrainDataset
from .losses import HEATMAP_LOSSES, mse_heatmap_loss
from .sources import oversample

__all__ = [
    "BEST_CHECKPOINT",
    "BEST_WEIGHTS",
    "LAST_CHECKPOINT",
    "METRICS_CSV",
    "METRIC_FIELDS",
    "EpochSampler",
    "evaluate",
    "heatmap_loss",
    "load_checkpoint",
    "save_checkpoint",
    "train",
    "trained_config",
]

METRIC_FIELDS = ("epoch", "train_loss", "val_loss", "val_nme", "lr", "seconds")


heatmap_loss = mse_heatmap_loss  # the validation loss of every run (comparable across training losses)


def trained_config(config: LandmarkTrainConfig) -> ModelConfig:
    """The configuration of the model a run trains, saved with its weights (``model.safetensors``): the
    architecture, the crop size and the heatmap σ of the targets (which the runtime decodes with), the
    normalisation of the inputs (:func:`~.dataset.normalize_crop`) and the crop enlargement (the default)."""
    arch = ArchSpec("hrnet", {"width": config.model.width, "num_landmarks": config.model.num_landmarks})
    return ModelConfig(arch, input_size=config.input_size, sigma=config.target_sigma)


def train(
    config: LandmarkTrainConfig,
    train_samples: list[LandmarkSample],
    val_samples: list[LandmarkSample],
    resume: bool = False,
    max_steps: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train an HRNet landmark model as ``config`` says and write its outputs to ``config.output_dir``.

    Args:
        config: the run's configuration.
        train_samples / val_samples: annotated faces (``val_samples`` may be empty: no validation,
            the latest epoch counts as best).  Training faces are oversampled by subset and head yaw as
            ``config.data.repeat`` and ``yaw_repeat`` say; validation faces never are.
        resume: continue from ``output_dir/last.pt`` (:class:`CheckpointError` if missing).  Without
            it an existing ``last.pt`` raises :class:`ConfigError` (no run is silently overwritten).
        max_steps: stop once this many optimizer steps have been made in total (counting those of
            resumed runs); the state is saved, so ``resume`` continues exactly where it stopped.
        progress: show a tqdm bar (only when stderr is a terminal).

    Returns:
        ``dict(epoch, global_step, finished, best_nme, best_epoch, history, output_dir)``;
        ``epoch`` = epochs completed, ``history`` the metrics rows.
    """
    if not train_samples:
        raise ConfigError("no training samples")
    train_samples = oversample(train_samples, config.data)
    k = config.model.num_landmarks
    layout = get_layout(k)

    def initial_weights(model: nn.Module) -> None:
        if config.model.weights:
            path, _ = resolve_weights(config.model.weights)
            load_weights(model, read_state_dict(path), source=str(path))

    run = start_training(config, trained_config(config).arch, resume, progress, initial_weights)
    model, device = run.model, run.device
    train_loss = HEATMAP_LOSSES[config.loss]
    train_set = LandmarkTrainDataset(train_samples, k, True, config)
    val_set = LandmarkTrainDataset(val_samples, k, False, config)

    def loss_fn(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int, dict[str, float]]:
        with autocast(device, config.precision):
            pred = model(to_device(batch["image"], device))
        loss = train_loss(pred, batch["heatmaps"].to(device), batch["target_weight"].to(device))
        return loss, len(batch["index"]), {}

    def validate() -> dict[str, float | None]:
        if config.precise_bn:
            step = max(1, len(train_samples) // config.precise_bn)  # evenly spread over the training faces
            calibration = LandmarkTrainDataset(train_samples[::step][: config.precise_bn], k, False, config)
            loader = epoch_loader(calibration, config.batch_size, config.workers, device, None)
            recalibrate_batchnorm(run.scored, (batch["image"] for batch in loader), device, config.precision)
        val_loss, val_nme = evaluate(run.scored, val_set, layout, config, device)
        return {"val_loss": val_loss, "val_nme": val_nme}

    result = run.run(
        config_dict=config_to_dict(config),
        weights_metadata=trained_config(config).metadata(),
        metric_fields=METRIC_FIELDS,
        best_key="val_nme",
        has_validation=bool(val_samples),
        train_epoch=run.epoch_trainer(train_set, loss_fn, max_steps),
        validate=validate,
        max_steps=max_steps,
    )
    result["best_nme"] = result.pop("best_metric")
    return result


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: LandmarkTrainDataset,
    layout: LandmarkLayout,
    config: LandmarkTrainConfig,
    device: torch.device,
) -> tuple[float | None, float | None]:
    """``(val_loss, mean inter-ocular NME as a fraction)`` of ``dataset`` (no augmentation);
    ``(None, None)`` if empty.

    Heatmaps are decoded with DARK, mapped to crop pixels and back to image pixels through the
    inverse crop matrix, and compared with the samples' ground-truth points.
    """
    if len(dataset) == 0:
        return None, None
    model.eval()
    loss_sum, nmes = 0.0, []
    for batch in epoch_loader(dataset, config.batch_size, config.workers, device, None):
        with autocast(device, config.precision):
            pred = model(to_device(batch["image"], device)).float()
        loss_sum += heatmap_loss(pred, batch["heatmaps"].to(device), batch["target_weight"].to(device)).item() * len(
            pred
        )
        to_image = invert_affine(batch["matrix"].numpy())
        points, _ = heatmaps_to_image(pred, to_image, config.input_size, "dark", dataset.sigma)
        gt = np.stack([dataset.samples[i].points for i in batch["index"].tolist()]).astype(np.float64)
        nmes.append(normalised_errors(points, gt, "inter-ocular", layout))
    model.train()
    return loss_sum / len(dataset), float(np.mean(np.concatenate(nmes)))
