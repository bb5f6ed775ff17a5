"""The ASR model's training objective: the transducer's losses (pruned with icefall's warm-up, or the exact packed
loss), plus the CTC and attention-decoder losses of the heads the model has, weighted as icefall's zipformer does.

Example::

    AsrLossConfig.add_arguments(parser)               # --bpe-model, --prune-range, --ctc-loss-scale, ...
    config = AsrLossConfig.from_args(args)
    check_loss_scales(model.config, config)          # train.py does it before starting
    objective = AsrObjective(sp, config, model.config)
    loss, stats = objective(model, batch, batch_idx_train, device)
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Tuple

import sentencepiece as spm
import torch
from torch import Tensor, nn

from icefall_lite.model.config import TransducerConfig
from icefall_lite.model.transducer import combine_losses
from icefall_lite.training.metrics import LossStats
from icefall_lite.training.options import add_config_arguments, config_from_args

SUBSAMPLING_FACTOR = 4
TRANSDUCER_STAT_NAMES = {"pruned": ("simple_loss", "pruned_loss"), "full": ("transducer_loss",)}


@dataclass(frozen=True)
class AsrLossConfig:
    """The ASR objective's options, icefall's names and defaults (section 5.1 of the spec)."""

    bpe_model: Path = Path("data/lang_bpe_500/bpe.model")
    transducer_loss: str = "pruned"
    prune_range: int = 5
    lm_scale: float = 0.25
    am_scale: float = 0.0
    simple_loss_scale: float = 0.5
    warm_step: int = 2000
    ctc_loss_scale: float = 0.2
    attention_decoder_loss_scale: float = 0.8

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        add_config_arguments(
            parser.add_argument_group("ASR loss options"), AsrLossConfig, _HELP,
            positive_ints={"prune_range"}, choices={"transducer_loss": tuple(TRANSDUCER_STAT_NAMES)},
        )

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> AsrLossConfig:
        return config_from_args(cls, args)


_HELP = {
    "bpe_model": "sentencepiece model of the BPE units",
    "transducer_loss": "pruned: icefall's simple + pruned RNN-T losses; full: the exact RNN-T loss on packed "
    "logits (icefall_lite.transducer_loss; no simple loss, no pruning)",
    "prune_range": "symbols per frame kept by the pruned RNN-T loss",
    "lm_scale": "weight of the LM-only term in the smoothed simple loss",
    "am_scale": "weight of the AM-only term in the smoothed simple loss",
    "simple_loss_scale": "weight of the simple loss after warm-up",
    "warm_step": "batches over which the loss weights move from (1.0, 0.1) to (simple_loss_scale, 1.0)",
    "ctc_loss_scale": "weight of the CTC loss (--use-ctc 1); 1 when it is the only loss",
    "attention_decoder_loss_scale": "weight of the attention-decoder loss (--use-attention-decoder 1); without the "
    "transducer, it and --ctc-loss-scale must sum to 1",
}


def check_loss_scales(model_config: TransducerConfig, config: AsrLossConfig) -> None:
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

    stat_unit = "frames"
    # The Zipformer's layer drop skips whole layers in some steps: their parameters get no gradient then.
    find_unused_parameters = True

    def __init__(self, sp: spm.SentencePieceProcessor, config: AsrLossConfig, model_config: TransducerConfig) -> None:
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
