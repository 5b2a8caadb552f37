"""An exponential moving average of a model's weights during training (as timm's ``ModelEmaV3``).

After every optimizer step the average moves towards the live weights::

    average = decay * average + (1 - decay) * weights

so it spans about ``1 / (1 - decay)`` steps (0.998: the last ~500 steps).  The average smooths the noise of
the last steps' updates; evaluating and publishing it instead of the last step's weights is a common cheap
gain for heatmap and detection models.  Buffers (BatchNorm running statistics and counters) are not
averaged but copied from the live model, so the average normalises with the statistics the model ends with
(exact when the statistics are frozen, see ``schedule.frozen_bn_epochs``).  The average starts as a copy of
the model, so a short run from random weights keeps a trace of them (``decay ** steps``).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["WeightAverage", "published_module"]


class WeightAverage:
    """The moving average of ``model``'s parameters; ``module`` is a frozen copy of the model holding it.

    Args:
        model: the model being trained (its parameters and buffers are read, never written).
        decay: in [0, 1); the weight of the old average at each :meth:`update`.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average one step towards ``model``'s parameters and copy its buffers."""
        for mine, theirs in zip(self.module.parameters(), model.parameters(), strict=True):
            mine.lerp_(theirs.detach(), 1.0 - self.decay)
        for mine, theirs in zip(self.module.buffers(), model.buffers(), strict=True):
            mine.copy_(theirs)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged weights as a model state_dict (keys as ``model.state_dict()``)."""
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_dict` returned (strict)."""
        self.module.load_state_dict(state)


def published_module(model: nn.Module, average: WeightAverage | None) -> nn.Module:
    """The module whose weights a run validates and publishes: the average's when the run keeps one."""
    return model if average is None else average.module
