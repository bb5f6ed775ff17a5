"""What a task gives the training loop: its loss on a batch and the statistics to log.

The Trainer owns devices, precision, the guarded optimizer step, averaging, checkpoints, validation and logs; an
objective only turns a batch into a loss. A new task (CTC / attention decoder, speaker classification) is a new
objective, not a new loop.

Example::

    class MyObjective:
        stat_names = ("loss", "ce_loss")
        stat_unit = "frames"
        find_unused_parameters = False
        def __call__(self, model, batch, batch_idx_train, device):
            ce = ...                                      # () float, summed over utterances
            return ce, LossStats({"loss": ce.item(), "ce_loss": ce.item()}, frames=..., utterances=...)
"""

from typing import Any, Dict, Protocol, Tuple

import torch
from torch import Tensor, nn

from icefall_lite.training.metrics import LossStats


class Objective(Protocol):
    """A task's loss. `stat_names` lists the names of the LossStats it returns, "loss" (the one optimized) first;
    `stat_unit` is what their `frames` count ("frames", "crops"); `find_unused_parameters` tells DDP whether some
    parameters may get no gradient in a step (layer drop, optional heads)."""

    stat_names: Tuple[str, ...]
    stat_unit: str
    find_unused_parameters: bool

    def __call__(
        self, model: nn.Module, batch: Dict[str, Any], batch_idx_train: int, device: torch.device
    ) -> Tuple[Tensor, LossStats]:
        """The batch's loss () float (summed over utterances, for backward) and its statistics.

        `model` may be wrapped in DistributedDataParallel: call it, do not reach into it. Training runs the call
        under the trainer's autocast when --use-fp16 is on.
        """
        ...
