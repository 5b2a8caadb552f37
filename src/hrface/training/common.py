"""What the trainers share: the set-up of a run (:func:`start_training`: device, threads, seeding, the model and
its initial weights, optimizer and schedule, weight average, resume), the per-epoch sample order and training
steps (:meth:`TrainingRun.epoch_trainer`), the metrics CSV, and the epoch loop with its checkpoints
(:mod:`.checkpoints`) and exact resume (:meth:`TrainingRun.run`).  A trainer adds its datasets, its loss and its
validation.

Files a run writes in its output folder:

- ``last.pt``: model, optimizer, scheduler, progress (:class:`TrainState`), RNG states and the
  config — after every epoch (and when ``max_steps`` stops a run mid-epoch);
- ``best.pt`` (same content) and ``model.safetensors`` (model state_dict with the trainer's
  metadata, loadable with :func:`hrface.models.registry.create_model`) for the best epoch; with a
  weight average (:mod:`.averaging`) the checkpoints hold it too, and ``model.safetensors`` holds it
  instead of the live weights;
- ``metrics.csv``: one row per epoch, the trainer's columns;
- ``tensorboard/`` when :mod:`torch.utils.tensorboard` is importable.

Every file is written to a temporary file and moved into place (:mod:`hrface.io.files`), so an
interrupted run never leaves a truncated file.  Checkpoints hold tensors and plain Python values
only and are read back with ``torch.load(weights_only=True)``.

Exact resume rests on one rule the trainers follow: nothing in an epoch depends on hidden RNG state
— the sample order of epoch ``e`` comes from ``(seed, e)`` (:class:`EpochSampler`) and each sample's
augmentation from ``(seed, e, index)`` — so restoring model, optimizer and scheduler and skipping the
batches already done replays the run bitwise (on CPU with the same thread count).
"""

from __future__ import annotations

import csv
import io
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from ..errors import ConfigError
from ..io.files import atomic_write_text
from ..models.arch import ArchSpec
from ..models.registry import build_model
from ..runtime.device import resolve_device
from .averaging import WeightAverage, published_module
from .checkpoints import LAST_CHECKPOINT, TrainState, load_checkpoint, save_checkpoint

METRICS_CSV = "metrics.csv"

Metrics = dict[str, float | None]
LossFn = Callable[[Any], tuple[torch.Tensor, int, dict[str, float]]]
"""``batch → (loss to back-propagate, number of samples, {part name: value})``."""


class EpochSampler(Sampler[int]):
    """The shuffled sample order of one epoch — a function of ``(seed, epoch)`` only — minus its
    first ``skip`` entries (to resume inside an epoch)."""

    def __init__(self, num_samples: int, seed: int, epoch: int, skip: int = 0) -> None:
        words = np.random.SeedSequence([seed, epoch], spawn_key=(1,)).generate_state(2, np.uint32)
        generator = torch.Generator().manual_seed(int(words[0]) << 31 | int(words[1]) >> 1)
        self.order = torch.randperm(num_samples, generator=generator).tolist()[skip:]

    def __iter__(self):
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)


@dataclass
class EpochLoop:
    """What :func:`run_epochs` needs of a trainer.

    Attributes:
        out: output folder.
        model / optimizer / scheduler: the scheduler is stepped once per epoch.
        config: the run's config as a plain dict (stored in checkpoints).
        weights_metadata: string metadata of ``model.safetensors`` (``arch`` and its options).
        epochs: epochs of the whole run; ``eval_every``: validate every that many epochs (and after the last).
        metric_fields: the metrics CSV columns (first ``epoch``); rows get None for missing keys.
        best_key: the validation metric whose minimum (maximum with ``higher_is_better``) is the best
            epoch; None: the last finished epoch is the best.
        has_validation: without validation data every finished epoch counts as best.
        train_epoch: runs the rest of epoch ``state.epoch``; False if ``max_steps`` stopped it early.
        validate: the validation metrics of the current model (keys of ``metric_fields``).
        average: the run's weight average, if any (saved with the checkpoints; its weights are the
            published ones, so ``validate`` should score it).
    """

    out: Path
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    config: dict[str, Any]
    weights_metadata: dict[str, str]
    epochs: int
    eval_every: int
    metric_fields: Sequence[str]
    best_key: str | None
    has_validation: bool
    train_epoch: Callable[[], bool]
    validate: Callable[[], Metrics]
    higher_is_better: bool = False
    average: WeightAverage | None = None


@dataclass
class TrainingRun:
    """A run set up from its config by :func:`start_training`.

    Attributes:
        config: the trainer's config (its ``seed``, ``batch_size``, ``workers``, ``schedule``, ``output_dir`` and
            ``eval_every`` are read here).
        device: where the model trains.
        model / optimizer / scheduler / state / average: the live model, its optimizer and per-epoch schedule,
            the run's progress and its weight average (None without ``ema_decay``).
        scored: the weights the run validates and publishes (the average's, else the live model's).
        show: whether to draw progress bars.
    """

    config: Any
    device: torch.device
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    state: TrainState
    average: WeightAverage | None
    scored: nn.Module
    show: bool

    def epoch_trainer(
        self,
        dataset: Any,
        loss_fn: LossFn,
        max_steps: int | None,
        collate_fn: Callable[[list[Any]], Any] | None = None,
    ) -> Callable[[], bool]:
        """The loop's ``train_epoch``: the rest of epoch ``state.epoch`` over ``dataset`` (which has
        ``set_epoch``), in the epoch's order (:class:`EpochSampler`, the batches already done skipped), one
        optimizer step per batch (:func:`train_steps`; BatchNorm frozen in the schedule's last epochs)."""
        config, state = self.config, self.state

        def train_epoch() -> bool:
            dataset.set_epoch(state.epoch)
            skip = state.step_in_epoch * config.batch_size
            sampler = EpochSampler(len(dataset), config.seed, state.epoch, skip=skip)
            loader = epoch_loader(dataset, config.batch_size, config.workers, self.device, sampler, collate_fn)
            description = f"epoch {state.epoch + 1}/{config.schedule.epochs}"
            frozen = frozen_bn_epoch(state.epoch, config.schedule)
            return train_steps(
                self.model,
                self.optimizer,
                loader,
                state,
                loss_fn,
                max_steps,
                description,
                self.show,
                frozen,
                self.average,
            )

        return train_epoch

    def run(
        self,
        *,
        config_dict: dict[str, Any],
        weights_metadata: dict[str, str],
        metric_fields: Sequence[str],
        best_key: str | None,
        has_validation: bool,
        train_epoch: Callable[[], bool],
        validate: Callable[[], Metrics],
        max_steps: int | None,
        higher_is_better: bool = False,
    ) -> dict[str, Any]:
        """Train until the schedule's epochs are done or ``max_steps`` optimizer steps have been made
        (:func:`run_epochs`; the arguments as :class:`EpochLoop` names them, ``config_dict`` stored in the
        checkpoints) and return :func:`run_result`."""
        out = Path(self.config.output_dir)
        loop = EpochLoop(
            out=out,
            model=self.model,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            config=config_dict,
            weights_metadata=weights_metadata,
            epochs=self.config.schedule.epochs,
            eval_every=self.config.eval_every,
            metric_fields=metric_fields,
            best_key=best_key,
            has_validation=has_validation,
            train_epoch=train_epoch,
            validate=validate,
            higher_is_better=higher_is_better,
            average=self.average,
        )
        run_epochs(loop, self.state, max_steps)
        return run_result(self.state, self.config.schedule.epochs, out)


def start_training(
    config: Any,
    arch: ArchSpec,
    resume: bool,
    progress: bool,
    initial_weights: Callable[[nn.Module], None] | None = None,
) -> TrainingRun:
    """Set up a run of ``config`` (its ``device``, ``threads``, ``seed`` and the sections :func:`start_run` reads):
    torch's threads, every global generator seeded, a model of ``arch`` whose starting weights
    ``initial_weights(model)`` loads (unless the run resumes: it then takes every weight from ``last.pt``), on the
    device (channels-last on CUDA), with its optimizer, schedule, progress and weight average (:func:`start_run`).
    ``progress``: draw progress bars on a terminal."""
    device = torch.device(resolve_device(config.device, for_torch=True))
    set_training_threads(config.threads)
    seed_all(config.seed)
    model = build_model(arch)
    if initial_weights is not None and not resume:
        initial_weights(model)
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer, scheduler, state, average = start_run(model, config, resume)
    scored = published_module(model, average)
    return TrainingRun(config, device, model, optimizer, scheduler, state, average, scored, show_progress(progress))


def run_epochs(loop: EpochLoop, state: TrainState, max_steps: int | None) -> None:
    """Train epoch after epoch until ``loop.epochs`` are done or ``max_steps`` optimizer steps have
    been made, validating, checkpointing and logging after every epoch (module doc)."""
    writer = summary_writer(loop.out)
    try:
        while state.epoch < loop.epochs and (max_steps is None or state.global_step < max_steps):
            started = time.perf_counter()
            lr = loop.optimizer.param_groups[0]["lr"]
            if not loop.train_epoch():
                _save(loop, state, best=False)
                break
            done = state.epoch + 1
            evaluates = done % loop.eval_every == 0 or done == loop.epochs
            row: dict[str, Any] = dict.fromkeys(loop.metric_fields)
            row.update(epoch=done, **state.train_means(), **(loop.validate() if evaluates else {}))
            row.update(lr=lr, seconds=time.perf_counter() - started)
            state.history.append(row)
            metric = row.get(loop.best_key) if loop.best_key else None
            latest = not loop.has_validation or loop.best_key is None
            improved = latest or (metric is not None and _better(loop, metric, state))
            if improved:
                state.best_metric = metric if metric is not None else state.best_metric
                state.best_epoch = done
            loop.scheduler.step()
            state.next_epoch()
            _save(loop, state, best=improved)
            write_metrics(loop.out / METRICS_CSV, state.history, loop.metric_fields)
            if writer is not None:
                for key in loop.metric_fields[1:]:
                    if row.get(key) is not None:
                        writer.add_scalar(key, row[key], done)
                writer.flush()
    finally:
        if writer is not None:
            writer.close()


def _better(loop: EpochLoop, metric: float, state: TrainState) -> bool:
    """Whether ``metric`` beats the best so far (NaN never does)."""
    sign = -1.0 if loop.higher_is_better else 1.0
    best = sign * state.best_metric if state.best_epoch >= 0 else math.inf
    return sign * metric < best


def _save(loop: EpochLoop, state: TrainState, best: bool) -> None:
    save_checkpoint(
        loop.out,
        loop.model,
        loop.optimizer,
        loop.scheduler,
        state,
        loop.config,
        loop.weights_metadata,
        best,
        loop.average,
    )


def run_result(state: TrainState, epochs: int, out: Path) -> dict[str, Any]:
    """``dict(epoch, global_step, finished, best_metric, best_epoch, history, output_dir)``."""
    return {
        "epoch": state.epoch,
        "global_step": state.global_step,
        "finished": state.epoch >= epochs,
        "best_metric": state.best_metric,
        "best_epoch": state.best_epoch,
        "history": state.history,
        "output_dir": str(out),
    }


def train_steps(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: DataLoader,
    state: TrainState,
    loss_fn: LossFn,
    max_steps: int | None,
    description: str,
    show: bool,
    frozen_bn: bool = False,
    average: WeightAverage | None = None,
) -> bool:
    """One optimizer step per batch of ``loader``, updating ``state``'s counters and running sums;
    False if ``max_steps`` stopped before the loader's end.  ``frozen_bn``: BatchNorm layers stay in
    eval mode (:func:`set_training_mode`); ``average`` is updated after every step."""
    set_training_mode(model, frozen_bn)
    bar = tqdm(loader, total=len(loader), disable=not show, desc=description)
    for batch in bar:
        if max_steps is not None and state.global_step >= max_steps:
            bar.close()
            return False
        loss, n, parts = loss_fn(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if average is not None:
            average.update(model)
        state.step_in_epoch, state.global_step = state.step_in_epoch + 1, state.global_step + 1
        state.loss_sum, state.loss_count = state.loss_sum + loss.item() * n, state.loss_count + n
        for key, value in parts.items():
            state.part_sums[key] = state.part_sums.get(key, 0.0) + value * n
        bar.set_postfix(loss=f"{state.loss_sum / state.loss_count:.3g}", refresh=False)
    return True


def set_training_mode(model: nn.Module, frozen_bn: bool = False) -> None:
    """``model.train()``; with ``frozen_bn`` every BatchNorm stays in eval mode, so it normalises with
    its running statistics (not the batch's) and leaves them unchanged; its affine weights still learn.
    Training the last epochs so removes the gap between the batch statistics a network is trained with
    and the running ones it is evaluated with."""
    model.train()
    if frozen_bn:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()


def frozen_bn_epoch(epoch: int, schedule: Any) -> bool:
    """Whether 0-based ``epoch`` is one of ``schedule``'s last ``frozen_bn_epochs``."""
    return epoch >= schedule.epochs - schedule.frozen_bn_epochs


def uses_bf16(device: torch.device, precision: str = "auto") -> bool:
    """Whether a run computes in bfloat16: ``precision`` 'bf16' always, 'fp32' never, 'auto' on CUDA
    only (CPU runs then stay float32 and bitwise reproducible)."""
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def autocast(device: torch.device, precision: str = "auto") -> Any:
    """bfloat16 autocast where :func:`uses_bf16` says so (convolutions in bf16, reductions and losses in
    float32); a no-op otherwise.  On a CPU with AVX-512 BF16 a bf16 HRNet-W18 training step takes
    about 0.57× the time of a float32 step."""
    kind = "cuda" if device.type == "cuda" else "cpu"
    return torch.autocast(kind, dtype=torch.bfloat16, enabled=uses_bf16(device, precision))


def to_device(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch of (N, C, H, W) images on ``device``: non-blocking and channels-last on CUDA (matching a
    channels-last model), unchanged layout elsewhere."""
    if device.type != "cuda":
        return images.to(device)
    return images.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Any, device: torch.device, precision: str = "auto") -> None:
    """Replace every BatchNorm's running mean / variance by its exact average over ``batches`` (iterable
    of (N, C, H, W) input tensors) — "precise BN".  The running statistics a run keeps are an exponential
    average over its last, augmented, batches; evaluation and the saved weights use these instead.
    Deterministic for fixed batches; the model is left in eval mode."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches seen
    model.train()
    with autocast(device, precision):
        for images in batches:
            model(to_device(images, device))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.eval()


def epoch_loader(
    dataset: Dataset,
    batch_size: int,
    workers: int,
    device: torch.device,
    sampler: Sampler[int] | None,
    collate_fn: Callable[[list[Any]], Any] | None = None,
) -> DataLoader:
    """A DataLoader in ``sampler``'s order (None: dataset order), keeping the last partial batch."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        drop_last=False,
        collate_fn=collate_fn,
        persistent_workers=False,
        prefetch_factor=4 if workers > 0 else None,
    )


def build_optimizer(config: Any, model: nn.Module) -> torch.optim.Optimizer:
    """Adam or SGD over all parameters from an :class:`~.yaml_config.OptimizerConfig`."""
    if config.name == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def step_scheduler(optimizer: torch.optim.Optimizer, schedule: Any) -> torch.optim.lr_scheduler.MultiStepLR:
    """The per-epoch step schedule of a :class:`~.yaml_config.ScheduleConfig`."""
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(schedule.lr_steps), gamma=schedule.lr_factor)


def set_training_threads(threads: int) -> None:
    """Set torch's intra-op thread count for this process (0: leave torch's default, one per core).

    On a CPU whose cores the DataLoader workers share, fewer threads can train faster: an OpenMP thread
    whose core a busy worker holds makes the others spin at every barrier.  Measured on 2 cores with 1
    worker (detector, 320-px batches of 8): 0.35 s per step with 1 thread against 0.60 s with 2.
    """
    if threads > 0:
        torch.set_num_threads(threads)


def seed_all(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (all CUDA devices included)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def show_progress(progress: bool) -> bool:
    """Whether to draw a progress bar: asked for, and stderr is a terminal."""
    return progress and sys.stderr.isatty()


def summary_writer(out: Path) -> Any:
    """A TensorBoard writer into ``out/tensorboard``, or None when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard not installed: scalars go to metrics.csv only
        return None
    return SummaryWriter(str(out / "tensorboard"))


def start_run(
    model: nn.Module, config: Any, resume: bool
) -> tuple[torch.optim.Optimizer, Any, TrainState, WeightAverage | None]:
    """The optimizer and per-epoch step schedule of ``config`` (``optimizer``, ``schedule`` and
    ``output_dir`` sections) for ``model``, the run's progress, and its weight average when
    ``config.ema_decay`` > 0 (else None).

    With ``resume`` model, optimizer, scheduler, weight ``average`` and RNG states are restored from
    ``output_dir/last.pt`` (:class:`CheckpointError` if missing); without it an existing ``last.pt`` raises
    :class:`ConfigError`, so no run is silently overwritten.  Creates ``output_dir``.
    """
    out = Path(config.output_dir)
    optimizer = build_optimizer(config.optimizer, model)
    scheduler = step_scheduler(optimizer, config.schedule)
    average = WeightAverage(model, config.ema_decay) if config.ema_decay > 0 else None
    if resume:
        state = load_checkpoint(out / LAST_CHECKPOINT, model, optimizer, scheduler, average)
    elif (out / LAST_CHECKPOINT).exists():
        raise ConfigError(f"{out / LAST_CHECKPOINT} exists; resume that run or choose another output_dir")
    else:
        state = TrainState()
    out.mkdir(parents=True, exist_ok=True)
    return optimizer, scheduler, state, average


def write_metrics(path: Path, rows: list[dict[str, Any]], fields: Sequence[str]) -> None:
    """Rewrite the whole metrics CSV atomically (empty cells for metrics not computed)."""
    text = io.StringIO()
    w = csv.DictWriter(text, fieldnames=list(fields), lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: "" if row.get(k) is None else row[k] for k in fields})
    atomic_write_text(path, text.getvalue())
