"""The transducer: Zipformer encoder + stateless decoder + joiner, trained with the pruned or the exact RNN-T loss.

Usage::

    model = Transducer(TransducerConfig(vocab_size=500))
    losses = model(x, x_lens, y=[[5, 7, 9], [3]])                  # {"simple_loss": ..., "pruned_loss": ...}
    loss = combine_losses(losses["simple_loss"], losses["pruned_loss"], batch_idx_train, warm_step=2000,
                          simple_loss_scale=0.5)
    loss = model(x, x_lens, y=[[5, 7, 9], [3]], loss="full")["transducer_loss"]   # exact loss, packed joiner
"""

from typing import Dict, List, Tuple

import torch
from torch import Tensor, nn

from icefall_lite.model.attention_decoder import AttentionDecoder, reverse_tokens
from icefall_lite.model.config import TransducerConfig
from icefall_lite.model.ctc import CtcHead, ctc_loss
from icefall_lite.model.decoder import Decoder
from icefall_lite.model.joiner import Joiner
from icefall_lite.model.scaling import ScaledLinear
from icefall_lite.model.zipformer import Zipformer
from icefall_lite.rnnt_loss import (
    do_rnnt_pruning,
    get_rnnt_prune_ranges,
    make_boundary,
    rnnt_loss_pruned,
    rnnt_loss_smoothed,
)
from icefall_lite.transducer_loss import chunked_transducer_loss

LOSS_TYPES = ("pruned", "full")
HEAD_OPTIONS = {  # head -> (its module, the option that adds it, what needs it)
    "transducer": ("joiner", "--use-transducer 1", "the transducer searches (decode.py, streaming_decode.py) need"),
    "ctc": ("ctc_output", "--use-ctc 1", "CTC decoding needs"),
    "attention_decoder": ("attention_decoder", "--use-attention-decoder 1", "attention-decoder rescoring needs"),
}


class MissingHeadError(ValueError):
    """A decoding method needs a head that the model was not built with."""


def require_head(model: nn.Module, head: str) -> None:
    """Raise MissingHeadError unless the model (eager or TorchScript) has `head` ("transducer", "ctc" or
    "attention_decoder")."""
    module, option, user = HEAD_OPTIONS[head]
    if not hasattr(model, module):
        raise MissingHeadError(
            f"{user} the {head.replace('_', ' ')} head: train the model with {option} "
            f"(and pass the same head options when decoding)"
        )


def pad_targets(y: List[List[int]], padding_value: int, device: torch.device) -> Tuple[Tensor, Tensor]:
    """Token-id lists -> (N, S) int64 padded with ``padding_value`` (S = longest list) and (N,) int64 lengths."""
    rows = [torch.tensor(tokens, dtype=torch.int64) for tokens in y]
    padded = nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=padding_value)
    lengths = torch.tensor([len(tokens) for tokens in y], dtype=torch.int64)
    return padded.to(device), lengths.to(device)


def combine_losses(simple_loss: Tensor, pruned_loss: Tensor, batch_idx: int, warm_step: int, simple_loss_scale: float) -> Tensor:
    """icefall's warm-up weighting: the simple loss's scale goes 1.0 -> ``simple_loss_scale`` and the pruned
    loss's 0.1 -> 1.0, linearly over the first ``warm_step`` batches.

    Args:
      simple_loss, pruned_loss: () float, summed over utterances; batch_idx: batches trained so far.
    Returns:
      () float, ``simple_scale * simple_loss + pruned_scale * pruned_loss``.
    """
    progress = min(batch_idx / warm_step, 1.0) if warm_step > 0 else 1.0
    simple_scale = 1.0 - progress * (1.0 - simple_loss_scale)
    pruned_scale = 0.1 + 0.9 * progress
    return simple_scale * simple_loss + pruned_scale * pruned_loss


class Transducer(nn.Module):
    """The ASR model: the Zipformer encoder and the heads the config selects.

    Transducer head (``use_transducer``): decoder, joiner and the linear layers of the "simple" (trivial-joiner)
    loss. CTC head (``use_ctc``): ``ctc_output``. Attention decoder (``use_attention_decoder``):
    ``attention_decoder``, and ``reverse_attention_decoder`` (right to left) when its weight is > 0.
    """

    def __init__(self, config: TransducerConfig) -> None:
        super().__init__()
        self.config = config
        encoder_dim = config.encoder.output_dim
        self.encoder = Zipformer(config.encoder)
        if config.use_transducer:
            self.decoder = Decoder(config.vocab_size, config.decoder_dim, config.blank_id, config.context_size)
            self.joiner = Joiner(encoder_dim, config.decoder_dim, config.joiner_dim, config.vocab_size)
            self.simple_am_proj = ScaledLinear(encoder_dim, config.vocab_size, initial_scale=0.25)
            self.simple_lm_proj = ScaledLinear(config.decoder_dim, config.vocab_size, initial_scale=0.25)
        if config.use_ctc:
            self.ctc_output = CtcHead(encoder_dim, config.vocab_size)
        if config.use_attention_decoder:
            self.attention_decoder = AttentionDecoder(config.vocab_size, encoder_dim, config.attention_decoder)
        if config.use_reverse_attention_decoder:
            self.reverse_attention_decoder = AttentionDecoder(config.vocab_size, encoder_dim, config.attention_decoder)

    def forward(
        self, x: Tensor, x_lens: Tensor, y: List[List[int]], prune_range: int = 5, am_scale: float = 0.0,
        lm_scale: float = 0.25, loss: str = "pruned",
    ) -> Dict[str, Tensor]:
        """
        Args:
          x: (N, T, feature_dim) float fbank frames; x_lens: (N,) int64 valid frames.
          y: N lists of token ids (without blank); each needs at most as many tokens as encoder frames.
          prune_range: symbols kept per frame for the pruned loss.
          am_scale, lm_scale: weights of the am-only and lm-only terms of the smoothed simple loss.
          loss: "pruned" (icefall's simple and pruned losses) or "full" (the exact RNN-T loss, with the joiner
            computed only on each utterance's valid (frame, symbol) cells, packed).
        Returns:
          () float32 losses, each summed over the batch, of the heads the config has: the transducer's
          "simple_loss" and "pruned_loss" (or "transducer_loss" with loss="full"), "ctc_loss", and
          "attention_decoder_loss" (label-smoothed; (1 - w) * left-to-right + w * right-to-left with the
          right-to-left decoder of weight w).
        """
        if len(y) != x.size(0):
            raise ValueError(f"y must hold one token list per utterance: x has batch {x.size(0)}, y has {len(y)} lists")
        if loss not in LOSS_TYPES:
            raise ValueError(f"loss must be one of {LOSS_TYPES}, got {loss!r}")
        encoder_out, encoder_lens = self.encoder(x, x_lens)
        y_padded, y_lens = pad_targets(y, self.config.blank_id, encoder_out.device)
        losses: Dict[str, Tensor] = {}
        if self.config.use_transducer:
            losses.update(
                self._transducer_losses(encoder_out, encoder_lens, y_padded, y_lens, prune_range, am_scale, lm_scale, loss)
            )
        if self.config.use_ctc:
            losses["ctc_loss"] = ctc_loss(self.ctc_output(encoder_out), encoder_lens, y_padded, y_lens, self.config.blank_id)
        if self.config.use_attention_decoder:
            losses["attention_decoder_loss"] = self._attention_decoder_loss(encoder_out, encoder_lens, y)
        return losses

    def _transducer_losses(
        self, encoder_out: Tensor, encoder_lens: Tensor, y_padded: Tensor, y_lens: Tensor, prune_range: int,
        am_scale: float, lm_scale: float, loss: str,
    ) -> Dict[str, Tensor]:
        """encoder_out (N, T, C), y_padded (N, S) -> the pruned losses or the full one."""
        decoder_out = self.decoder(nn.functional.pad(y_padded, (1, 0), value=self.config.blank_id))
        if loss == "full":
            return {"transducer_loss": self._full_loss(encoder_out, encoder_lens, decoder_out, y_padded, y_lens)}
        return self._pruned_losses(encoder_out, encoder_lens, decoder_out, y_padded, y_lens, prune_range, am_scale, lm_scale)

    def _attention_decoder_loss(self, encoder_out: Tensor, encoder_lens: Tensor, y: List[List[int]]) -> Tensor:
        """() summed label-smoothed loss of the left-to-right decoder, mixed with the right-to-left one's."""
        forward_loss = self.attention_decoder.loss(encoder_out, encoder_lens, y)
        weight = self.config.attention_decoder_reverse_weight
        if weight == 0.0:
            return forward_loss
        reverse_loss = self.reverse_attention_decoder.loss(encoder_out, encoder_lens, reverse_tokens(y))
        return (1.0 - weight) * forward_loss + weight * reverse_loss

    def _pruned_losses(
        self, encoder_out: Tensor, encoder_lens: Tensor, decoder_out: Tensor, y_padded: Tensor, y_lens: Tensor,
        prune_range: int, am_scale: float, lm_scale: float,
    ) -> Dict[str, Tensor]:
        """encoder_out (N, T, C), decoder_out (N, S+1, D), y_padded (N, S) -> summed simple and pruned losses."""
        blank = self.config.blank_id
        boundary = make_boundary(y_lens, encoder_lens)
        lm, am = self.simple_lm_proj(decoder_out), self.simple_am_proj(encoder_out)
        with torch.autocast(device_type=encoder_out.device.type, enabled=False):
            simple_loss, (px_grad, py_grad) = rnnt_loss_smoothed(
                lm=lm.float(), am=am.float(),
                symbols=y_padded, termination_symbol=blank, lm_only_scale=lm_scale, am_only_scale=am_scale,
                boundary=boundary, reduction="sum", return_grad=True,
            )
        ranges = get_rnnt_prune_ranges(px_grad=px_grad, py_grad=py_grad, boundary=boundary, s_range=prune_range)
        am_pruned, lm_pruned = do_rnnt_pruning(
            am=self.joiner.encoder_proj(encoder_out), lm=self.joiner.decoder_proj(decoder_out), ranges=ranges
        )
        logits = self.joiner(am_pruned, lm_pruned, project_input=False)
        with torch.autocast(device_type=encoder_out.device.type, enabled=False):
            pruned_loss = rnnt_loss_pruned(
                logits=logits.float(), symbols=y_padded, ranges=ranges, termination_symbol=blank,
                boundary=boundary, reduction="sum",
            )
        return {"simple_loss": simple_loss, "pruned_loss": pruned_loss}

    def _full_loss(
        self, encoder_out: Tensor, encoder_lens: Tensor, decoder_out: Tensor, y_padded: Tensor, y_lens: Tensor
    ) -> Tensor:
        """The exact RNN-T loss, summed: the joiner runs on the sum_i T_i * (S_i + 1) valid cells only, a chunk of
        them at a time (recomputed in the backward), so the packed logits never exist whole."""
        return chunked_transducer_loss(
            self.joiner.logits_of_sum, self.joiner.encoder_proj(encoder_out), self.joiner.decoder_proj(decoder_out),
            y_padded, encoder_lens, y_lens, num_classes=self.config.vocab_size, blank=self.config.blank_id,
            reduction="sum",
        )
