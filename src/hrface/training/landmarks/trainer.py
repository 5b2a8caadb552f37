"""Training loop of the HRNet landmark model: Adam + step schedule, heatmap MSE, NME validation,
atomic checkpoints and exact resume.

Files in ``config.output_dir``:

- ``last.pt``: model, optimizer, scheduler, progress (epoch, step within the epoch, global step,
  running train-loss sums), best metric, metrics history, RNG states and the config — written
  after every epoch (and when ``max_steps`` stops a run mid-epoch);
- ``best.pt`` (same content) and ``model.safetensors`` (model state_dict only, loadable with
  :func:`hrface.models.registry.create_model`) for the epoch with the lowest validation NME;
- ``metrics.csv``: one row per epoch (``epoch, train_loss, val_loss, val_nme, lr, seconds``);
- ``tensorboard/`` when :mod:`torch.utils.tensorboard` is importable.

Every file is written to a temporary file and moved into place (:mod:`hrface.io.files`), so an
interrupted run never leaves a truncated checkpoint.

Exact resume: nothing in an epoch depends on hidden RNG state — the sample order of epoch ``e`` is a
permutation drawn from a generator seeded with ``(seed, e)`` and each sample's augmentation from
``(seed, e, index)``; the model has no dropout.  Restoring model, optimizer and scheduler state and
skipping the batches already done therefore replays the run exactly (bitwise on CPU with the same
thread count); the global RNG states are saved and restored as well, for completeness.
"""

from __future__ import annotations

import csv
import io
import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from ...data.landmarks.samples import LandmarkSample
from ...errors import CheckpointError, ConfigError, one_line
from ...evaluation.landmarks import normalised_errors
from ...io.files import atomic_write_bytes, atomic_write_text
from ...landmarks.crop import invert_affine
from ...landmarks.heatmaps import heatmaps_to_image
from ...landmarks.layouts import LandmarkLayout, get_layout
from ...models.checkpoint import ArchSpec, load_weights
from ...models.registry import build_model
from ...runtime.device import resolve_device
from .config import LandmarkTrainConfig, config_to_dict
from .dataset import LandmarkTrainDataset

LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
BEST_WEIGHTS = "model.safetensors"
METRICS_CSV = "metrics.csv"
METRIC_FIELDS = ("epoch", "train_loss", "val_loss", "val_nme", "lr", "seconds")


def heatmap_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted MSE: mean over (N, K, H, W) of ``weight[n, k] * (pred - target)²``."""
    return ((pred.float() - target) ** 2 * weight[:, :, None, None]).mean()


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
class TrainState:
    """Progress of a run: ``epoch`` is the epoch in progress (0-based; = epochs when finished)."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    loss_sum: float = 0.0
    loss_count: int = 0
    best_nme: float = math.inf
    best_epoch: int = -1
    history: list[dict[str, Any]] = field(default_factory=list)


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
            the latest epoch counts as best).
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
    k = config.model.num_landmarks
    layout = get_layout(k)
    out = Path(config.output_dir)
    device = resolve_device(config.device)
    _seed_all(config.seed)
    model = build_model(ArchSpec("hrnet", {"width": config.model.width, "num_landmarks": k})).to(device)
    optimizer = _build_optimizer(config, model)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=list(config.schedule.lr_steps), gamma=config.schedule.lr_factor
    )
    state = TrainState()
    if resume:
        state = load_checkpoint(out / LAST_CHECKPOINT, model, optimizer, scheduler)
    elif (out / LAST_CHECKPOINT).exists():
        raise ConfigError(f"{out / LAST_CHECKPOINT} exists; resume that run or choose another output_dir")
    out.mkdir(parents=True, exist_ok=True)
    train_set = LandmarkTrainDataset(train_samples, k, True, config)
    val_set = LandmarkTrainDataset(val_samples, k, False, config)
    writer = _summary_writer(out)
    show = progress and sys.stderr.isatty()
    try:
        while state.epoch < config.schedule.epochs and (max_steps is None or state.global_step < max_steps):
            started = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            if not _train_epoch(model, optimizer, train_set, state, config, device, max_steps, show):
                save_checkpoint(out, model, optimizer, scheduler, state, config, best=False)
                break
            val_loss, val_nme = (
                evaluate(model, val_set, layout, config, device) if _evaluates(config, state) else (None, None)
            )
            row = {
                "epoch": state.epoch + 1,
                "train_loss": state.loss_sum / max(state.loss_count, 1),
                "val_loss": val_loss,
                "val_nme": val_nme,
                "lr": lr,
                "seconds": time.perf_counter() - started,
            }
            state.history.append(row)
            improved = not val_samples or (val_nme is not None and val_nme < state.best_nme)
            if improved:
                state.best_nme = val_nme if val_nme is not None else state.best_nme
                state.best_epoch = state.epoch + 1
            scheduler.step()
            state.epoch, state.step_in_epoch, state.loss_sum, state.loss_count = state.epoch + 1, 0, 0.0, 0
            save_checkpoint(out, model, optimizer, scheduler, state, config, best=improved)
            write_metrics(out / METRICS_CSV, state.history)
            if writer is not None:
                for key in METRIC_FIELDS[1:]:
                    if row[key] is not None:
                        writer.add_scalar(key, row[key], row["epoch"])
                writer.flush()
    finally:
        if writer is not None:
            writer.close()
    return {
        "epoch": state.epoch,
        "global_step": state.global_step,
        "finished": state.epoch >= config.schedule.epochs,
        "best_nme": state.best_nme,
        "best_epoch": state.best_epoch,
        "history": state.history,
        "output_dir": str(out),
    }


def _evaluates(config: LandmarkTrainConfig, state: TrainState) -> bool:
    done = state.epoch + 1
    return done % config.eval_every == 0 or done == config.schedule.epochs


def _train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    dataset: LandmarkTrainDataset,
    state: TrainState,
    config: LandmarkTrainConfig,
    device: torch.device,
    max_steps: int | None,
    show: bool,
) -> bool:
    """Run the rest of epoch ``state.epoch``; False if ``max_steps`` stopped it before its end."""
    dataset.set_epoch(state.epoch)
    sampler = EpochSampler(len(dataset), config.seed, state.epoch, skip=state.step_in_epoch * config.batch_size)
    loader = _loader(dataset, config, device, sampler)
    model.train()
    bar = tqdm(loader, total=len(loader), disable=not show, desc=f"epoch {state.epoch + 1}/{config.schedule.epochs}")
    for batch in bar:
        if max_steps is not None and state.global_step >= max_steps:
            bar.close()
            return False
        pred = model(batch["image"].to(device, non_blocking=True))
        loss = heatmap_loss(pred, batch["heatmaps"].to(device), batch["target_weight"].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        n = len(batch["index"])
        state.step_in_epoch, state.global_step = state.step_in_epoch + 1, state.global_step + 1
        state.loss_sum, state.loss_count = state.loss_sum + loss.item() * n, state.loss_count + n
        bar.set_postfix(loss=f"{state.loss_sum / state.loss_count:.3g}", refresh=False)
    return True


def _loader(
    dataset: LandmarkTrainDataset, config: LandmarkTrainConfig, device: torch.device, sampler: Sampler[int] | None
) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=config.workers,
        pin_memory=device.type == "cuda",
        drop_last=False,
    )


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
    for batch in _loader(dataset, config, device, None):
        pred = model(batch["image"].to(device)).float()
        loss_sum += heatmap_loss(pred, batch["heatmaps"].to(device), batch["target_weight"].to(device)).item() * len(
            pred
        )
        to_image = invert_affine(batch["matrix"].numpy())
        points, _ = heatmaps_to_image(pred, to_image, config.input_size, "dark", dataset.sigma)
        gt = np.stack([dataset.samples[i].points for i in batch["index"].tolist()]).astype(np.float64)
        nmes.append(normalised_errors(points, gt, "inter-ocular", layout))
    model.train()
    return loss_sum / len(dataset), float(np.mean(np.concatenate(nmes)))


def _build_optimizer(config: LandmarkTrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    opt = config.optimizer
    if opt.name == "adam":
        return torch.optim.Adam(model.parameters(), lr=opt.lr, weight_decay=opt.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=opt.lr, momentum=opt.momentum, weight_decay=opt.weight_decay)


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def _summary_writer(out: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard not installed: scalars go to metrics.csv only
        return None
    return SummaryWriter(str(out / "tensorboard"))


# --- checkpoints --------------------------------------------------------------------------------------


def rng_states() -> dict[str, Any]:
    """The global RNG states as tensors and plain Python values (loadable with ``weights_only``)."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    version, words, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": version, "state": list(words), "gauss_next": gauss_next},
    }


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what :func:`rng_states` returned (CUDA states only if the device count matches)."""
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
    n = states["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    p = states["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))


def save_checkpoint(
    out: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: TrainState,
    config: LandmarkTrainConfig,
    best: bool,
) -> None:
    """Write ``last.pt`` (and, if ``best``, first ``best.pt`` and ``model.safetensors``) atomically."""
    from safetensors.torch import save as safetensors_bytes

    checkpoint = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "state": asdict(state),
        "rng": rng_states(),
        "config": config_to_dict(config),
    }
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    payload = buffer.getvalue()
    if best:
        weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        meta = {
            "arch": "hrnet",
            "width": str(config.model.width),
            "num_landmarks": str(config.model.num_landmarks),
            "input_size": str(config.input_size),
        }
        atomic_write_bytes(out / BEST_WEIGHTS, safetensors_bytes(weights, metadata=meta))
        atomic_write_bytes(out / BEST_CHECKPOINT, payload)
    atomic_write_bytes(out / LAST_CHECKPOINT, payload)


def load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any) -> TrainState:
    """Restore model, optimizer, scheduler and RNG states from a :func:`save_checkpoint` file
    (read with ``weights_only=True``); returns the run's progress."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint to resume from; start the run without resume")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        state = TrainState(**checkpoint["state"])
    except Exception as exc:  # unreadable file, or not one of ours
        raise CheckpointError(f"{path}: not a readable training checkpoint ({one_line(exc, 160)})") from None
    load_weights(model, checkpoint["model"], source=str(path))
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    set_rng_states(checkpoint["rng"])
    return state


def write_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rewrite the whole metrics CSV atomically (empty cells for metrics not computed)."""
    text = io.StringIO()
    w = csv.DictWriter(text, fieldnames=METRIC_FIELDS, lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: "" if row[k] is None else row[k] for k in METRIC_FIELDS})
    atomic_write_text(path, text.getvalue())
