"""Batched fast beam search: a pruned Viterbi search over decoder contexts, in the spirit of k2's
``fast_beam_search_one_best`` with a trivial graph (no k2 needed).

A hypothesis is identified by its decoder context (its last ``context_size`` tokens), as a state of k2's
decoding lattice is: at most one symbol per frame, and per frame and utterance

1. every (hypothesis, token) arc is scored with ``score + log_softmax(joiner)``;
2. only the ``max_states`` best arcs are kept, and of those only arcs within ``beam`` of the best;
3. arcs reaching the same context are merged, keeping the best one (Viterbi: its token sequence is the best
   path into that context);
4. the ``max_contexts`` best contexts survive.

The result is the best-scoring surviving hypothesis (the best path of the lattice).

Usage::

    tokens = FastBeamSearch(model, beam=20.0, max_contexts=8, max_states=64).decode(encoder_out, encoder_lens)
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from icefall_lite.decoding.beam_state import (
    BeamState,
    BeamStateSearch,
    candidate_scores,
    extend_parents,
    merge_duplicates,
)
from icefall_lite.model.transducer import Transducer


class FastBeamSearch(BeamStateSearch):
    """State: ``BeamState`` with ``min(max_contexts, max_states)`` slots per utterance."""

    def __init__(
        self, model: Transducer, beam: float = 20.0, max_contexts: int = 8, max_states: int = 64, unk_id: Optional[int] = None
    ) -> None:
        if not beam > 0:
            raise ValueError(f"--beam must be positive, got {beam}")
        if max_contexts < 1 or max_states < 1:
            raise ValueError(f"--max-contexts and --max-states must be at least 1, got {max_contexts} and {max_states}")
        super().__init__(model, num_slots=min(max_contexts, max_states), length_norm=False, unk_id=unk_id)
        self.beam = beam
        self.max_states = max_states

    def _advance_frame(self, state: BeamState, encoder_frame: Tensor, active: Optional[Tensor]) -> BeamState:
        candidates = candidate_scores(self.model, state, encoder_frame)
        vocab_size = candidates.size(1) // state.beam
        scores, index = candidates.topk(min(self.max_states, candidates.size(1)), dim=1)
        scores = scores.masked_fill(scores < scores[:, :1] - self.beam, float("-inf"))
        parent, token = index // vocab_size, index % vocab_size
        emitted = self.is_symbol(token) & scores.isfinite()

        contexts = state.hyps.contexts.view(state.scores.size(0), state.beam, -1)
        parent_contexts = contexts.gather(1, parent.unsqueeze(2).expand(-1, -1, contexts.size(2)))
        shifted = torch.cat([parent_contexts[:, :, 1:], token.unsqueeze(2)], dim=2)
        child_contexts = torch.where(emitted.unsqueeze(2), shifted, parent_contexts)
        same_context = (child_contexts.unsqueeze(2) == child_contexts.unsqueeze(1)).all(dim=3)
        merged = merge_duplicates(scores, same_context, log_add=False)

        kept_scores, kept = merged.topk(self.num_slots, dim=1)
        kept_emitted = emitted.gather(1, kept) & kept_scores.isfinite()
        children = extend_parents(self.model, state, parent.gather(1, kept), token.gather(1, kept), kept_emitted)
        return BeamState(kept_scores, children).where(active, state)
