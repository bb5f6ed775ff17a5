"""Batched modified beam search (icefall's ``modified_beam_search``): at most one symbol per frame.

Per frame and utterance, the ``beam_size`` best (hypothesis, token) pairs by ``score + log_softmax(joiner)``
become the new hypotheses (blank and unk keep the token sequence); pairs with the same token sequence are
merged with log-add, so the beam may hold fewer than ``beam_size`` hypotheses. The result is the hypothesis with
the best ``score / (context_size + num_tokens)``.

Usage::

    tokens = ModifiedBeamSearch(model, beam_size=4, unk_id=2).decode(encoder_out, encoder_lens)
"""

from __future__ import annotations

from typing import Optional

from torch import Tensor

from icefall_lite.decoding.beam_state import (
    BeamState,
    BeamStateSearch,
    candidate_scores,
    extend_parents,
    merge_duplicates,
)
from icefall_lite.model.transducer import Transducer


class ModifiedBeamSearch(BeamStateSearch):
    """State: ``BeamState`` with ``beam_size`` slots per utterance."""

    def __init__(self, model: Transducer, beam_size: int = 4, unk_id: Optional[int] = None) -> None:
        if beam_size < 1:
            raise ValueError(f"--beam-size must be at least 1, got {beam_size}")
        super().__init__(model, num_slots=beam_size, length_norm=True, unk_id=unk_id)

    def _advance_frame(self, state: BeamState, encoder_frame: Tensor, active: Optional[Tensor]) -> BeamState:
        candidates = candidate_scores(self.model, state, encoder_frame)
        vocab_size = candidates.size(1) // state.beam
        scores, index = candidates.topk(self.num_slots, dim=1)
        parent, token = index // vocab_size, index % vocab_size
        children = extend_parents(self.model, state, parent, token, self.is_symbol(token) & scores.isfinite())
        sequences = children.tokens.view(*scores.shape, -1)
        same_sequence = (sequences.unsqueeze(2) == sequences.unsqueeze(1)).all(dim=3)
        merged = merge_duplicates(scores, same_sequence, log_add=True)
        return BeamState(merged, children).where(active, state)
