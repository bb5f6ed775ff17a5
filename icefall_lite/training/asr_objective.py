"""The ASR model's training objective: the transducer's losses (pruned with icefall's warm-up, or the exact packed
loss), plus the CTC and attention-decoder losses of the heads the model has, weighted as icefall's zipformer does.

Example::

    check_loss_scales(model.config, config)          # train.py does it before starting
    objective = AsrObjective(sp, config, model.config)
    loss, stats = objective(model, batch, batch_idx_train, device)
"""

from typing import Any, Dict, Tuple

import sentencepiece as spm
import torch
from torch import Tensor, nn

from icefall_lite.model.config import TransducerConfig
from icefall_lite.model.transducer import combine_losses
from icefall_lite.training.metrics import LossStats
from icefall_lite.training.options import TrainConfig

SUBSAMPLING_FACTOR = 4
TRANSDUCER_STAT_NAMES = {"pruned": ("simple_loss", "pruned_loss"), "full": ("transducer_loss",)}


def check_loss_scales(model_config: TransducerConfig, config: TrainConfig) -> None:
    """icefall's rules: CTC alone has scale 1; CTC with the attention decoder and no transducer, scales summing
    to 1. Raises ValueError naming the options."""
    if model_config.use_transducer or not model_config.use_ctc:
        return
    if not model_config.use_attention_decoder and config.ctc_loss_scale != 1.0:
        raise ValueError(
            f"with --use-transducer 0 and --use-attention-decoder 0 the CTC loss is the only loss: "
            f"--ctc-loss-scale must be 1, got {config.ctc_loss_scale}"
        )
    total = config.ctc_loss_scale + config.attention_decoder_loss_scale
    if model_config.use_attention_decoder and abs(total - 1.0) > 1e-6:
        raise ValueError(
            f"with --use-transducer 0, --ctc-loss-scale ({config.ctc_loss_scale}) and "
            f"--attention-decoder-loss-scale ({config.attention_decoder_loss_scale}) must sum to 1, got {total:g}"
        )


class AsrObjective:
    """Tokenizes the batch's texts, runs the model and weights its losses.

    loss = transducer part + ctc_loss_scale * ctc_loss + attention_decoder_loss_scale * attention_decoder_loss,
    the transducer part being icefall's warm-up weighting of the simple and pruned losses (`combine_losses`), or
    the exact loss alone with --transducer-loss full.
    """

    def __init__(self, sp: spm.SentencePieceProcessor, config: TrainConfig, model_config: TransducerConfig) -> None:
        self.sp = sp
        self.config = config
        names = TRANSDUCER_STAT_NAMES[config.transducer_loss] if model_config.use_transducer else ()
        names += ("ctc_loss",) if model_config.use_ctc else ()
        names += ("attention_decoder_loss",) if model_config.use_attention_decoder else ()
        self.stat_names = ("loss",) + names

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
        loss = self._weighted_sum(losses, batch_idx_train)
        sums = {"loss": loss.detach().item(), **{name: value.detach().item() for name, value in losses.items()}}
        frames = float((feature_lens // SUBSAMPLING_FACTOR).sum())
        return loss, LossStats(sums, frames=frames, utterances=float(features.size(0)))

    def _weighted_sum(self, losses: Dict[str, Tensor], batch_idx_train: int) -> Tensor:
        config = self.config
        terms = []
        if "transducer_loss" in losses:
            terms.append(losses["transducer_loss"])
        if "pruned_loss" in losses:
            terms.append(
                combine_losses(
                    losses["simple_loss"], losses["pruned_loss"], batch_idx_train, config.warm_step,
                    config.simple_loss_scale,
                )
            )
        if "ctc_loss" in losses:
            terms.append(config.ctc_loss_scale * losses["ctc_loss"])
        if "attention_decoder_loss" in losses:
            terms.append(config.attention_decoder_loss_scale * losses["attention_decoder_loss"])
        return torch.stack(terms).sum()
