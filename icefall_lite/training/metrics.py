"""Loss bookkeeping: sums over utterances, reported per encoder frame as icefall does.

Example::

    >>> tot = LossStats(); tot = tot.decayed(1 - 1 / 200) + batch_stats
    >>> tot.per_frame()   # {"loss": ..., "simple_loss": ..., "pruned_loss": ...}
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Dict

import torch


@dataclass(frozen=True)
class LossStats:
    """Loss sums over utterances, with the number of encoder frames and utterances they cover."""

    loss: float = 0.0
    simple_loss: float = 0.0
    pruned_loss: float = 0.0
    frames: float = 0.0
    utterances: float = 0.0

    def __add__(self, other: "LossStats") -> "LossStats":
        return LossStats(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def decayed(self, factor: float) -> "LossStats":
        """Every sum multiplied by `factor`: icefall's running total forgets old batches this way."""
        return LossStats(*(getattr(self, f.name) * factor for f in fields(self)))

    def per_frame(self) -> Dict[str, float]:
        """loss, simple_loss and pruned_loss divided by the number of frames."""
        frames = max(self.frames, 1.0)
        return {"loss": self.loss / frames, "simple_loss": self.simple_loss / frames, "pruned_loss": self.pruned_loss / frames}

    def to_tensor(self) -> torch.Tensor:
        """(5,) float64, in field order (for summing over DDP ranks)."""
        return torch.tensor([getattr(self, f.name) for f in fields(self)], dtype=torch.float64)

    @classmethod
    def from_tensor(cls, values: torch.Tensor) -> "LossStats":
        return cls(*values.tolist())

    def __str__(self) -> str:
        numbers = ", ".join(f"{name}={value:.4g}" for name, value in self.per_frame().items())
        return f"[{numbers}, over {self.frames:.0f} frames]"
