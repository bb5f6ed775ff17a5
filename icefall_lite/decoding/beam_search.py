"""Standard RNN-T beam search (Graves 2012, Algorithm 1, as in ESPnet and icefall's ``beam_search``), one
utterance at a time; any number of symbols per frame.

Per frame, hypotheses to expand (A) start as the previous frame's beam; repeatedly the best of A is popped:
ending the frame (blank) moves it to the next beam B, each of its ``beam + 1`` best tokens puts an extended
hypothesis back into A. Equal token sequences are merged with log-add. The frame ends when B holds ``beam``
hypotheses better than the best of A. The result is the best by ``score / (context_size + num_tokens)``.

Usage::

    tokens = BeamSearch(model, beam_size=4, unk_id=2).decode(encoder_out, encoder_lens)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor

from icefall_lite.decoding.hypotheses import decoder_output, initial_context
from icefall_lite.decoding.search import TransducerSearch
from icefall_lite.model.transducer import Transducer

TokenSequence = Tuple[int, ...]
# Bounds the work per frame for models whose blank probability is tiny (e.g. untrained ones), where the
# stopping rule above would need exponentially many expansions.
MAX_EXPANSIONS_PER_FRAME = 100


@dataclass
class UtteranceBeam:
    """hyps: token sequence -> log probability; decoder_cache: decoder context -> (1, joiner_dim) output."""

    hyps: Dict[TokenSequence, float] = field(default_factory=lambda: {(): 0.0})
    decoder_cache: Dict[TokenSequence, Tensor] = field(default_factory=dict)


def _log_add_into(hyps: Dict[TokenSequence, float], tokens: TokenSequence, log_prob: float) -> None:
    old = hyps.get(tokens)
    if old is None:
        hyps[tokens] = log_prob
    else:
        high, low = max(old, log_prob), min(old, log_prob)
        hyps[tokens] = high + math.log1p(math.exp(low - high))


def _top(hyps: Dict[TokenSequence, float], count: int) -> Dict[TokenSequence, float]:
    return dict(sorted(hyps.items(), key=lambda item: item[1], reverse=True)[:count])


class BeamSearch(TransducerSearch):
    """State: one ``UtteranceBeam`` per utterance."""

    def __init__(self, model: Transducer, beam_size: int = 4, unk_id: Optional[int] = None) -> None:
        super().__init__(model, unk_id)
        if beam_size < 1:
            raise ValueError(f"--beam-size must be at least 1, got {beam_size}")
        self.beam_size = beam_size
        self._initial_context = tuple(initial_context(self.context_size, self.blank_id))

    def init_state(self, batch: int) -> List[UtteranceBeam]:
        return [UtteranceBeam() for _ in range(batch)]

    def reset_rows(self, state: List[UtteranceBeam], rows: List[int]) -> None:
        for row in rows:
            state[row] = UtteranceBeam()

    def best_tokens(self, state: List[UtteranceBeam], rows: List[int]) -> List[List[int]]:
        def normalized(item: Tuple[TokenSequence, float]) -> float:
            return item[1] / (self.context_size + len(item[0]))

        return [list(max(state[row].hyps.items(), key=normalized)[0]) for row in rows]

    def _advance_frame(
        self, state: List[UtteranceBeam], encoder_frame: Tensor, active: Optional[Tensor]
    ) -> List[UtteranceBeam]:
        rows = range(len(state)) if active is None else active.nonzero().squeeze(1).tolist()
        for row in rows:
            self._advance_utterance(state[row], encoder_frame[row : row + 1])
        return state

    def _advance_utterance(self, beam: UtteranceBeam, encoder_frame: Tensor) -> None:
        """encoder_frame: (1, joiner_dim) projected."""
        to_expand, next_beam = beam.hyps, {}
        for _ in range(MAX_EXPANSIONS_PER_FRAME):
            if not to_expand:
                break
            tokens = max(to_expand, key=to_expand.__getitem__)
            score = to_expand.pop(tokens)
            log_probs = self._log_probs(beam, tokens, encoder_frame)
            _log_add_into(next_beam, tokens, score + float(log_probs[self.blank_id]))
            values, ids = log_probs.topk(min(self.beam_size + 1, log_probs.numel()))
            for value, token in zip(values.tolist(), ids.tolist()):
                if token != self.blank_id and token != self.unk_id:
                    _log_add_into(to_expand, tokens + (token,), score + value)
            best_to_expand = max(to_expand.values(), default=float("-inf"))
            better = {seq: lp for seq, lp in next_beam.items() if lp > best_to_expand}
            if len(better) >= self.beam_size:
                next_beam = better
                break
        beam.hyps = _top(next_beam, self.beam_size)

    def _log_probs(self, beam: UtteranceBeam, tokens: TokenSequence, encoder_frame: Tensor) -> Tensor:
        """(vocab_size,) log-probabilities after ``tokens`` at this frame (decoder outputs cached per context)."""
        context = (self._initial_context + tokens)[-self.context_size :]
        decoder_out = beam.decoder_cache.get(context)
        if decoder_out is None:
            context_tensor = torch.tensor([context], device=encoder_frame.device)
            decoder_out = beam.decoder_cache[context] = decoder_output(self.model, context_tensor)
        return self.model.joiner(encoder_frame, decoder_out, project_input=False)[0].log_softmax(dim=0)
