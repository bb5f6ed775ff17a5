"""Loss bookkeeping: named sums over utterances, reported per frame as icefall does.

A training objective names its statistics once (`stat_names`, "loss" first); every LossStats of a run then
carries those names, so that the sums of all ranks line up when they are added over DDP.

Example::

    >>> tot = LossStats.zeros(("loss", "simple_loss", "pruned_loss"))
    >>> tot = tot.decayed(1 - 1 / 200) + batch_stats
    >>> tot.per_frame()   # {"loss": ..., "simple_loss": ..., "pruned_loss": ...}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, Mapping

import torch


@dataclass(frozen=True)
class LossStats:
    """Named loss sums over utterances, with the number of frames and utterances they cover. `unit` names what
    `frames` counts in the logs: "frames" (encoder frames, ASR) or e.g. "crops" (one per utterance, speaker)."""

    sums: Mapping[str, float] = field(default_factory=dict)
    frames: float = 0.0
    utterances: float = 0.0
    unit: str = "frames"

    @classmethod
    def zeros(cls, names: Iterable[str], unit: str = "frames") -> "LossStats":
        return cls({name: 0.0 for name in names}, unit=unit)

    def __add__(self, other: "LossStats") -> "LossStats":
        names = list(self.sums) + [name for name in other.sums if name not in self.sums]
        sums = {name: self.sums.get(name, 0.0) + other.sums.get(name, 0.0) for name in names}
        return LossStats(sums, self.frames + other.frames, self.utterances + other.utterances, self.unit)

    def decayed(self, factor: float) -> "LossStats":
        """Every sum multiplied by `factor`: icefall's running total forgets old batches this way."""
        sums = {name: value * factor for name, value in self.sums.items()}
        return LossStats(sums, self.frames * factor, self.utterances * factor, self.unit)

    def per_frame(self) -> Dict[str, float]:
        """Every named sum divided by the number of frames."""
        frames = max(self.frames, 1.0)
        return {name: value / frames for name, value in self.sums.items()}

    def to_tensor(self) -> torch.Tensor:
        """(len(sums) + 2,) float64: the sums in name order, then frames and utterances (for summing over ranks)."""
        return torch.tensor([*self.sums.values(), self.frames, self.utterances], dtype=torch.float64)

    def with_values(self, values: torch.Tensor) -> "LossStats":
        """The same names with the values of `to_tensor`'s layout (e.g. after summing over ranks)."""
        numbers = values.tolist()
        return LossStats(dict(zip(self.sums, numbers)), numbers[-2], numbers[-1], self.unit)

    def __str__(self) -> str:
        numbers = ", ".join(f"{name}={value:.4g}" for name, value in self.per_frame().items())
        return f"[{numbers}, over {self.frames:.0f} {self.unit}]"
