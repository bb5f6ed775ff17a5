"""The interface every transducer search implements, so that whole utterances (decode.py) and chunks of
streams (streaming_decode.py) are decoded by the same code.

A search keeps a *state* for a batch of rows (utterances or stream slots). ``advance`` consumes encoder frames
and may be called again with the next chunk of the same rows; ``best_tokens`` reads the result at any time.

Usage::

    search = GreedySearch(model, max_sym_per_frame=1, unk_id=2)
    tokens = search.decode(encoder_out, encoder_lens)            # whole utterances

    state = search.init_state(num_streams)                       # streaming
    for chunk, chunk_lens in chunks:
        state = search.advance(state, chunk, chunk_lens)
    tokens = search.best_tokens(state, rows=[0, 1])
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, List, Optional

import torch
from torch import Tensor

from icefall_lite.model.transducer import Transducer, require_head


class TransducerSearch(ABC):
    """Base of the searches: frame loop, blank/unk handling, the whole-utterance ``decode``.

    Args:
      model: the transducer (eval mode); its decoder's ``blank_id`` and ``context_size`` are used.
      unk_id: a token treated like blank (never emitted), as icefall does with ``<unk>``; None for none.
    """

    def __init__(self, model: Transducer, unk_id: Optional[int] = None) -> None:
        require_head(model, "transducer")
        self.model = model
        self.blank_id = model.decoder.blank_id
        self.context_size = model.decoder.context_size
        self.unk_id = unk_id

    @abstractmethod
    def init_state(self, batch: int) -> Any:
        """The state of ``batch`` rows before any frame."""

    @abstractmethod
    def reset_rows(self, state: Any, rows: List[int]) -> None:
        """Start new utterances in ``rows`` of ``state`` (in place)."""

    @abstractmethod
    def best_tokens(self, state: Any, rows: List[int]) -> List[List[int]]:
        """The best token sequence of each of ``rows`` so far."""

    def trailing_blank_frames(self, state: Any, rows: List[int]) -> List[int]:
        """Encoder frames since the last token of each of ``rows``' best hypothesis (what endpoint rules measure)."""
        raise NotImplementedError(f"{type(self).__name__} does not count trailing blanks: use greedy_search or modified_beam_search")

    @abstractmethod
    def _advance_frame(self, state: Any, encoder_frame: Tensor, active: Optional[Tensor]) -> Any:
        """One frame: encoder_frame (N, joiner_dim) projected; active (N,) bool rows that have this frame, or
        None for all. Returns the new state."""

    @torch.no_grad()
    def advance(self, state: Any, encoder_out: Tensor, encoder_lens: Tensor) -> Any:
        """Consume encoder frames.

        Args:
          state: from ``init_state`` or a previous ``advance`` (for the next chunk of the same rows).
          encoder_out: (N, T, encoder_dim) float, the encoder output (not yet projected by the joiner).
          encoder_lens: (N,) int64 valid frames per row; rows with fewer than T frames (or 0) are left unchanged
            after their last frame.
        Returns:
          the new state.
        """
        projected = self.model.joiner.encoder_proj(encoder_out)
        lens = encoder_lens.to(projected.device)
        for t in range(projected.size(1)):
            active = lens > t
            state = self._advance_frame(state, projected[:, t], None if bool(active.all()) else active)
        return state

    def decode(self, encoder_out: Tensor, encoder_lens: Tensor) -> List[List[int]]:
        """Whole utterances: encoder_out (N, T, encoder_dim), encoder_lens (N,) -> N token lists."""
        batch = encoder_out.size(0)
        state = self.advance(self.init_state(batch), encoder_out, encoder_lens)
        return self.best_tokens(state, list(range(batch)))

    def is_symbol(self, tokens: Tensor) -> Tensor:
        """tokens: int64 ids -> bool, True for ids that are emitted (neither blank nor unk)."""
        emitted = tokens != self.blank_id
        if self.unk_id is not None:
            emitted &= tokens != self.unk_id
        return emitted
