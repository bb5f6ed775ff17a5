"""The speaker model's training objective: cross-entropy over the training speakers, with the AM-softmax margin
warmed up linearly from 0 to --margin over --margin-warmup-batches.

Statistics are per crop (LossStats' "frames" count the crops, one per utterance): ``loss`` is the mean cross-entropy and
``error`` the top-1 classification error rate of the batch's crops.

Example::

    >>> objective = SpeakerObjective(SpeakerLossConfig(margin=0.2, margin_warmup_batches=1000))
    >>> loss, stats = objective(model, batch, batch_idx_train=500, device=torch.device("cpu"))   # margin 0.1
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Dict, Tuple

import torch
from torch import Tensor, nn

from icefall_lite.cli import positive_int
from icefall_lite.model.warmup import linear_warmup
from icefall_lite.training.metrics import LossStats


@dataclass(frozen=True)
class SpeakerLossConfig:
    margin: float = 0.2
    margin_warmup_batches: int = 500

    def margin_at(self, batch_idx_train: int) -> float:
        """The margin of batch `batch_idx_train`: 0 at batch 0, --margin from --margin-warmup-batches on."""
        return linear_warmup(batch_idx_train, 0.0, float(self.margin_warmup_batches), 0.0, self.margin)

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("speaker loss options")
        group.add_argument("--margin", type=float, default=0.2, help="AM-softmax margin m after warm-up (default 0.2)")
        group.add_argument(
            "--margin-warmup-batches", type=positive_int, default=500,
            help="batches over which the margin grows linearly from 0 to --margin (default 500)",
        )

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "SpeakerLossConfig":
        if not 0.0 <= args.margin < 1.0:
            raise ValueError(f"--margin must be in [0, 1), got {args.margin}")
        return cls(margin=args.margin, margin_warmup_batches=args.margin_warmup_batches)


class SpeakerObjective:
    """Runs the SpeakerModel on a SpeakerDataset batch; the Trainer's Objective."""

    stat_names = ("loss", "error")
    stat_unit = "crops"
    find_unused_parameters = False

    def __init__(self, config: SpeakerLossConfig) -> None:
        self.config = config

    def __call__(
        self, model: nn.Module, batch: Dict[str, Any], batch_idx_train: int, device: torch.device
    ) -> Tuple[Tensor, LossStats]:
        """batch: inputs (N, T, 80) float, supervisions num_frames (N,), speaker_index (N,) in [0, num_speakers).
        Returns the summed cross-entropy () float and its stats."""
        supervisions = batch["supervisions"]
        targets = supervisions["speaker_index"].to(device)
        if bool((targets < 0).any()):
            unknown = [cut.id for cut, t in zip(supervisions["cut"], targets.tolist()) if t < 0]
            raise ValueError(f"cuts of speakers not in the training speaker list: {unknown[:5]}")
        loss, errors = model(
            batch["inputs"].to(device), supervisions["num_frames"].to(device), targets,
            self.config.margin_at(batch_idx_train),
        )
        utterances = float(targets.numel())
        sums = {"loss": loss.detach().item(), "error": float(errors)}
        return loss, LossStats(sums, frames=utterances, utterances=utterances, unit=self.stat_unit)
