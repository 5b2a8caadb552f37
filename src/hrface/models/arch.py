"""What a model is, independent of its weights (no torch needed to describe one)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ArchSpec:
    """What a checkpoint is: ``kind`` 'retinaface' (with ``backbone``) or 'hrnet' (``width``, ``num_landmarks``)."""

    kind: str
    options: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.options.items())
        return f"{self.kind}({opts})"
