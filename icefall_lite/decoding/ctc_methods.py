"""ctc_decode.py's methods: CTC greedy search, CTC prefix beam search, and attention-decoder rescoring of CTC
n-best lists (WeNet's attention_rescoring, icefall's attention-decoder-rescoring-no-ngram), as searches with the
transducer searches' interface: ``decode(encoder_out, encoder_lens) -> token lists``.

Usage::

    search = make_ctc_search("ctc-prefix-beam-search-attention-decoder-rescoring", model, CtcSearchOptions())
    tokens = search.decode(encoder_out, encoder_lens)
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import List, Tuple

import torch
from torch import Tensor, nn

from icefall_lite.decoding.ctc_search import ctc_greedy_search, ctc_prefix_beam_search, greedy_emissions
from icefall_lite.model.attention_decoder import reverse_tokens
from icefall_lite.model.ctc import ctc_loss
from icefall_lite.model.transducer import pad_targets, require_head

CTC_DECODING_METHODS = (
    "ctc-greedy-search",
    "ctc-prefix-beam-search",
    "attention-decoder-rescoring-no-ngram",
    "ctc-prefix-beam-search-attention-decoder-rescoring",
)
RESCORING_METHODS = CTC_DECODING_METHODS[2:]


@dataclass(frozen=True)
class CtcSearchOptions:
    """--beam-size (prefixes kept, and the n-best size), --nbest-scale, --ctc-weight, --attention-decoder-reverse-weight."""

    beam_size: int = 4
    nbest_scale: float = 0.5
    ctc_weight: float = 0.3
    reverse_weight: float = 0.0

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "CtcSearchOptions":
        """From --beam-size and, where the script has them, the options of ``add_rescoring_arguments``."""
        defaults = cls()
        return cls(
            args.beam_size,
            getattr(args, "nbest_scale", defaults.nbest_scale),
            getattr(args, "ctc_weight", defaults.ctc_weight),
            getattr(args, "attention_decoder_reverse_weight", defaults.reverse_weight),
        )


def add_rescoring_arguments(group: argparse._ActionsContainer, reverse_weight_option: bool) -> None:
    """--nbest-scale and --ctc-weight, and --attention-decoder-reverse-weight unless the script's model options
    already have it (the option then both builds the right-to-left decoder and weighs its score)."""
    defaults = CtcSearchOptions()
    group.add_argument(
        "--nbest-scale", type=float, default=defaults.nbest_scale,
        help="attention-decoder-rescoring-no-ngram: scale of the log-probabilities the n-best is drawn from "
        f"(default {defaults.nbest_scale})",
    )
    group.add_argument(
        "--ctc-weight", type=float, default=defaults.ctc_weight,
        help=f"rescoring: weight of the CTC score beside the attention decoders' (default {defaults.ctc_weight})",
    )
    if reverse_weight_option:
        group.add_argument(
            "--attention-decoder-reverse-weight", type=float, default=defaults.reverse_weight,
            help="rescoring: weight of the right-to-left decoder's score against the left-to-right one's "
            f"(default {defaults.reverse_weight}; > 0 needs a model trained with it)",
        )


@dataclass
class CtcGreedyState:
    """Per row: the tokens so far and the best token of the row's last frame (blank before any frame)."""

    tokens: List[List[int]]
    last: Tensor  # (N,) int64


class CtcGreedySearch:
    """CTC greedy search, on whole utterances (``decode``) or chunk by chunk (the streaming interface of the
    transducer searches: ``init_state``, ``reset_rows``, ``advance``, ``best_tokens``), with the same result."""

    def __init__(self, model: nn.Module, blank: int = 0) -> None:
        require_head(model, "ctc")
        self.model = model
        self.blank = blank

    def decode(self, encoder_out: Tensor, encoder_lens: Tensor) -> List[List[int]]:
        """encoder_out: (N, T, C) float; encoder_lens: (N,) int64 -> N token lists."""
        return ctc_greedy_search(self.model.ctc_output(encoder_out), encoder_lens, self.blank)

    def init_state(self, batch: int) -> CtcGreedyState:
        device = next(self.model.parameters()).device
        return CtcGreedyState([[] for _ in range(batch)], torch.full((batch,), self.blank, device=device))

    def reset_rows(self, state: CtcGreedyState, rows: List[int]) -> None:
        for row in rows:
            state.tokens[row] = []
        state.last[rows] = self.blank

    def best_tokens(self, state: CtcGreedyState, rows: List[int]) -> List[List[int]]:
        return [list(state.tokens[row]) for row in rows]

    def advance(self, state: CtcGreedyState, encoder_out: Tensor, encoder_lens: Tensor) -> CtcGreedyState:
        """One chunk of frames: encoder_out (N, T, C), encoder_lens (N,) (0 for rows without a chunk)."""
        best = self.model.ctc_output(encoder_out).argmax(dim=2)  # (N, T)
        keep = greedy_emissions(best, state.last, encoder_lens, self.blank)
        for row in keep.any(dim=1).nonzero().flatten().tolist():
            state.tokens[row].extend(best[row][keep[row]].tolist())
        last_frame = (encoder_lens - 1).clamp(min=0).view(-1, 1)
        state.last = torch.where(encoder_lens > 0, best.gather(1, last_frame).squeeze(1), state.last)
        return state


class CtcPrefixBeamSearch:
    def __init__(self, model: nn.Module, beam_size: int) -> None:
        require_head(model, "ctc")
        self.model = model
        self.beam_size = beam_size

    def decode(self, encoder_out: Tensor, encoder_lens: Tensor) -> List[List[int]]:
        nbest = ctc_prefix_beam_search(self.model.ctc_output(encoder_out), encoder_lens, self.beam_size)
        return [hypotheses[0][0] if hypotheses else [] for hypotheses in nbest]


def exact_ctc_scores(log_probs: Tensor, lengths: Tensor, hypotheses: List[List[int]], utterance: List[int]) -> Tensor:
    """log p(hypothesis | frames) of each hypothesis under CTC: (H,) float.

    log_probs: (N, T, V); lengths: (N,); utterance[h] is hypothesis h's row of log_probs."""
    rows = torch.tensor(utterance, device=log_probs.device)
    targets, target_lens = pad_targets(hypotheses, 0, log_probs.device)
    return -ctc_loss(log_probs[rows], lengths[rows], targets, target_lens, reduction="none")


def attention_scores(
    model: nn.Module, encoder_out: Tensor, encoder_lens: Tensor, hypotheses: List[List[int]], utterance: List[int],
    reverse_weight: float,
) -> Tensor:
    """(1 - w) * log p_l2r(h + eos) + w * log p_r2l(reversed(h) + eos) per hypothesis h: (H,) float."""
    rows = torch.tensor(utterance, device=encoder_out.device)
    memory, memory_lens = encoder_out[rows], encoder_lens[rows]
    scores = model.attention_decoder.sequence_log_probs(memory, memory_lens, hypotheses)
    if reverse_weight == 0.0:
        return scores
    reverse = model.reverse_attention_decoder.sequence_log_probs(memory, memory_lens, reverse_tokens(hypotheses))
    return (1.0 - reverse_weight) * scores + reverse_weight * reverse


def best_by_combined_score(
    nbest_rows: List[int], ctc: Tensor, attention: Tensor, ctc_weight: float, num_utterances: int,
    hypotheses: List[List[int]],
) -> List[List[int]]:
    """Per utterance, the hypothesis with the best ctc_weight * ctc + attention score (empty if it has none)."""
    combined = (ctc_weight * ctc + attention).tolist()
    best: List[Tuple[float, List[int]]] = [(float("-inf"), [])] * num_utterances
    for row, score, tokens in zip(nbest_rows, combined, hypotheses):
        if score > best[row][0]:
            best[row] = (score, tokens)
    return [tokens for _, tokens in best]


class AttentionRescoring:
    """CTC n-best lists rescored by the attention decoder(s).

    ctc-prefix-beam-search-attention-decoder-rescoring (WeNet's attention_rescoring): the prefix beam search's
    `beam_size` hypotheses with their CTC scores. attention-decoder-rescoring-no-ngram: the n-best of a prefix
    beam search on the log-probabilities scaled by `nbest_scale` (flatter, so more diverse, as icefall scales its
    CTC lattice before sampling paths), each scored by its exact CTC log-probability. Then
    score = ctc_weight * ctc + (1 - reverse_weight) * left-to-right + reverse_weight * right-to-left.
    """

    def __init__(self, model: nn.Module, options: CtcSearchOptions, scaled_nbest: bool) -> None:
        require_head(model, "ctc")
        require_head(model, "attention_decoder")
        if options.reverse_weight > 0.0 and not hasattr(model, "reverse_attention_decoder"):
            raise ValueError(
                f"--attention-decoder-reverse-weight {options.reverse_weight} needs a model with the right-to-left "
                "decoder (trained with --attention-decoder-reverse-weight > 0)"
            )
        self.model = model
        self.options = options
        self.scaled_nbest = scaled_nbest

    def decode(self, encoder_out: Tensor, encoder_lens: Tensor) -> List[List[int]]:
        options = self.options
        log_probs = self.model.ctc_output(encoder_out)
        search_input = log_probs * options.nbest_scale if self.scaled_nbest else log_probs
        nbest = ctc_prefix_beam_search(search_input, encoder_lens, options.beam_size)
        rows = [n for n, hypotheses in enumerate(nbest) for _ in hypotheses]
        hypotheses = [tokens for entries in nbest for tokens, _ in entries]
        if not hypotheses:
            return [[] for _ in nbest]
        if self.scaled_nbest:
            ctc = exact_ctc_scores(log_probs, encoder_lens, hypotheses, rows)
        else:
            ctc = torch.tensor([score for entries in nbest for _, score in entries], device=log_probs.device)
        attention = attention_scores(self.model, encoder_out, encoder_lens, hypotheses, rows, options.reverse_weight)
        return best_by_combined_score(rows, ctc, attention, options.ctc_weight, len(nbest), hypotheses)


def make_ctc_search(method: str, model: nn.Module, options: CtcSearchOptions):
    """The search object of a ctc_decode.py --decoding-method."""
    if method == "ctc-greedy-search":
        return CtcGreedySearch(model)
    if method == "ctc-prefix-beam-search":
        return CtcPrefixBeamSearch(model, options.beam_size)
    if method in RESCORING_METHODS:
        return AttentionRescoring(model, options, scaled_nbest=method == "attention-decoder-rescoring-no-ngram")
    raise ValueError(f"--decoding-method must be one of {CTC_DECODING_METHODS}, got {method!r}")
