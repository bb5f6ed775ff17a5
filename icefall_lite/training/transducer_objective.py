"""The transducer's training objective: the pruned RNN-T loss with icefall's warm-up, or the exact packed loss.

Example::

    objective = TransducerObjective(sp, config)       # config.transducer_loss: "pruned" or "full"
    loss, stats = objective(model, batch, batch_idx_train, device)
"""

from typing import Any, Dict, Tuple

import sentencepiece as spm
import torch
from torch import Tensor, nn

from icefall_lite.model.transducer import combine_losses
from icefall_lite.training.metrics import LossStats
from icefall_lite.training.options import TrainConfig

SUBSAMPLING_FACTOR = 4
STAT_NAMES = {"pruned": ("loss", "simple_loss", "pruned_loss"), "full": ("loss", "transducer_loss")}


class TransducerObjective:
    """Tokenizes the batch's texts, runs the Transducer and weights its losses.

    --transducer-loss pruned: icefall's simple + pruned losses, weighted by `combine_losses` (warm-up over
    --warm-step batches). full: the exact RNN-T loss on the packed joiner output, alone.
    """

    def __init__(self, sp: spm.SentencePieceProcessor, config: TrainConfig) -> None:
        self.sp = sp
        self.config = config
        self.stat_names = STAT_NAMES[config.transducer_loss]

    def __call__(
        self, model: nn.Module, batch: Dict[str, Any], batch_idx_train: int, device: torch.device
    ) -> Tuple[Tensor, LossStats]:
        """Args: batch: the data module's batch, inputs (N, T, 80) float. Returns () float loss and its stats."""
        config = self.config
        features = batch["inputs"].to(device)
        feature_lens = batch["supervisions"]["num_frames"].to(device)
        token_ids = self.sp.encode(batch["supervisions"]["text"])
        losses = model(
            features, feature_lens, token_ids, prune_range=config.prune_range, am_scale=config.am_scale,
            lm_scale=config.lm_scale, loss=config.transducer_loss,
        )
        if config.transducer_loss == "full":
            loss = losses["transducer_loss"]
        else:
            loss = combine_losses(
                losses["simple_loss"], losses["pruned_loss"], batch_idx_train, config.warm_step, config.simple_loss_scale
            )
        sums = {"loss": loss.detach().item(), **{name: value.detach().item() for name, value in losses.items()}}
        frames = float((feature_lens // SUBSAMPLING_FACTOR).sum())
        return loss, LossStats(sums, frames=frames, utterances=float(features.size(0)))
