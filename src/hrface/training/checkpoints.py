"""Training checkpoints: the run's progress, the global RNG states, and atomic ``last.pt`` /
``best.pt`` / ``model.safetensors`` files read back with ``torch.load(weights_only=True)``.

``last.pt`` and ``best.pt`` hold the model, optimizer and scheduler state dicts, the progress
(:class:`TrainState`), the RNG states and the config as a plain dict — tensors and plain Python
values only — and, for a run that averages its weights (:mod:`.averaging`), the average (``average``:
what :func:`hrface.models.checkpoint.read_state_dict` then reads from the file).  ``model.safetensors``
holds the published state_dict (the average's, if any) and string metadata naming the architecture, for
:func:`hrface.models.registry.create_model`.
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError, one_line
from ..io.files import atomic_write_bytes
from ..models.checkpoint import load_weights
from .averaging import WeightAverage, published_module

LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
BEST_WEIGHTS = "model.safetensors"


@dataclass
class TrainState:
    """Progress of a run: ``epoch`` is the epoch in progress (0-based; = epochs when finished).

    ``loss_sum`` / ``loss_count`` (and ``part_sums`` for named loss parts) are the running
    sample-weighted sums of the epoch in progress; ``best_metric`` is the lowest validation metric
    so far (the trainer decides which), reached at 1-based ``best_epoch``.
    """

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    loss_sum: float = 0.0
    loss_count: int = 0
    best_metric: float = math.inf
    best_epoch: int = -1
    history: list[dict[str, Any]] = field(default_factory=list)
    part_sums: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainState:
        """Inverse of :func:`dataclasses.asdict`; reads older landmark checkpoints (``best_nme``)."""
        data = dict(data)
        if "best_nme" in data:
            data["best_metric"] = data.pop("best_nme")
        return cls(**data)

    def next_epoch(self) -> None:
        """Move on to the next epoch: count the one in progress as done and reset the running sums."""
        self.epoch, self.step_in_epoch, self.loss_sum, self.loss_count = self.epoch + 1, 0, 0.0, 0
        self.part_sums = {}

    def train_means(self) -> dict[str, float]:
        """``{'train_loss': …, 'train_<part>': …}``: the epoch's sample-weighted mean losses."""
        n = max(self.loss_count, 1)
        return {"train_loss": self.loss_sum / n, **{f"train_{k}": v / n for k, v in self.part_sums.items()}}


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
    config: dict[str, Any],
    weights_metadata: dict[str, str],
    best: bool,
    average: WeightAverage | None = None,
) -> None:
    """Write ``out/last.pt`` (and, if ``best``, first ``best.pt`` and ``model.safetensors`` with
    ``weights_metadata``) atomically; ``config`` is the run's config as a plain dict.  With ``average``
    the checkpoints hold it as well and ``model.safetensors`` holds its weights."""
    from safetensors.torch import save as safetensors_bytes

    checkpoint = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "state": asdict(state),
        "rng": rng_states(),
        "config": config,
    }
    if average is not None:
        checkpoint["average"] = average.state_dict()
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    payload = buffer.getvalue()
    if best:
        published = published_module(model, average).state_dict()
        weights = {k: v.detach().cpu().contiguous() for k, v in published.items()}
        atomic_write_bytes(out / BEST_WEIGHTS, safetensors_bytes(weights, metadata=weights_metadata))
        atomic_write_bytes(out / BEST_CHECKPOINT, payload)
    atomic_write_bytes(out / LAST_CHECKPOINT, payload)


def load_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    average: WeightAverage | None = None,
) -> TrainState:
    """Restore model, optimizer, scheduler, RNG states and ``average`` from a :func:`save_checkpoint`
    file (read with ``weights_only=True``); returns the run's progress.  A run that did not average
    its weights before starts ``average`` from the restored model."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint to resume from; start the run without resume")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        state = TrainState.from_dict(checkpoint["state"])
    except Exception as exc:  # unreadable file, or not one of ours
        raise CheckpointError(f"{path}: not a readable training checkpoint ({one_line(exc, 160)})") from None
    load_weights(model, checkpoint["model"], source=str(path))
    if average is not None:
        average.load_state_dict(checkpoint.get("average", model.state_dict()))
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    set_rng_states(checkpoint["rng"])
    return state
