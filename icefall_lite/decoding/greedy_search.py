"""Batched greedy search: per frame, emit the joiner's argmax until it is blank (or ``max_sym_per_frame``).

With ``max_sym_per_frame=1`` this is icefall's ``greedy_search_batch``; larger values give its per-utterance
``greedy_search`` (several symbols per frame), batched here.

Usage::

    tokens = GreedySearch(model, max_sym_per_frame=1, unk_id=sp.piece_to_id("<unk>")).decode(encoder_out, lens)
"""

from __future__ import annotations

from typing import List, Optional

import torch
from torch import Tensor

from icefall_lite.decoding.hypotheses import Hypotheses
from icefall_lite.decoding.search import TransducerSearch
from icefall_lite.model.transducer import Transducer


class GreedySearch(TransducerSearch):
    """State: ``Hypotheses`` with one row per utterance."""

    def __init__(self, model: Transducer, max_sym_per_frame: int = 1, unk_id: Optional[int] = None) -> None:
        super().__init__(model, unk_id)
        if max_sym_per_frame < 1:
            raise ValueError(f"--max-sym-per-frame must be at least 1, got {max_sym_per_frame}")
        self.max_sym_per_frame = max_sym_per_frame

    def init_state(self, batch: int) -> Hypotheses:
        return Hypotheses.initial(batch, self.model)

    def reset_rows(self, state: Hypotheses, rows: List[int]) -> None:
        state.reset_rows_(torch.tensor(rows, device=state.contexts.device), self.model)

    def best_tokens(self, state: Hypotheses, rows: List[int]) -> List[List[int]]:
        return state.token_lists(rows)

    def trailing_blank_frames(self, state: Hypotheses, rows: List[int]) -> List[int]:
        return state.frames_since_token[rows].tolist()

    def _advance_frame(self, state: Hypotheses, encoder_frame: Tensor, active: Optional[Tensor]) -> Hypotheses:
        if active is None:
            rows = torch.arange(state.num_rows, device=encoder_frame.device)
        else:
            rows = active.nonzero().squeeze(1)
        state.frames_since_token[rows] += 1  # back to 0 for the rows that emit below
        for _ in range(self.max_sym_per_frame):
            if rows.numel() == 0:
                break
            logits = self.model.joiner(encoder_frame[rows], state.decoder_out[rows], project_input=False)
            best = logits.argmax(dim=1)
            emitted = self.is_symbol(best)
            rows, best = rows[emitted], best[emitted]
            state.extend_(rows, best, self.model)
        return state
