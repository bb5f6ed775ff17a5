"""A batch of transducer hypotheses as tensors: decoder context, projected decoder output, emitted tokens.

Every search keeps its hypotheses in one ``Hypotheses`` of R rows (greedy: one row per utterance; beam
searches: ``num_utterances * beam`` rows), so that a frame of search is a few batched tensor operations
whatever the number of utterances or streams.

Usage::

    hyps = Hypotheses.initial(num_rows, model)
    hyps.extend_(rows, tokens, model)           # rows (M,) emit tokens (M,): contexts and decoder_out follow
    children = hyps.select(parents)              # (R',) parent row of each new row
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

import torch
from torch import Tensor

from icefall_lite.model.transducer import Transducer

PAD_TOKEN = -1
INITIAL_TOKEN_CAPACITY = 32


def initial_context(context_size: int, blank_id: int) -> List[int]:
    """``[-1] * (context_size - 1) + [blank_id]``: the decoder context before any token, which embeds to the
    zero left-padding the decoder saw in training (spec 2.1)."""
    return [PAD_TOKEN] * (context_size - 1) + [blank_id]


def decoder_output(model: Transducer, contexts: Tensor) -> Tensor:
    """contexts: (M, context_size) int64 token ids -> (M, joiner_dim) float, the decoder output already
    projected by ``joiner.decoder_proj``."""
    return model.joiner.decoder_proj(model.decoder(contexts, need_pad=False).squeeze(1))


@dataclass
class Hypotheses:
    """R hypotheses.

    contexts: (R, context_size) int64, the last ``context_size`` tokens (initial context included).
    decoder_out: (R, joiner_dim) float, ``decoder_output`` of ``contexts``.
    tokens: (R, L) int64 emitted tokens (no blank, no initial context), padded with -1; L grows as needed.
    num_tokens: (R,) int64 tokens emitted per row.
    frames_since_token: (R,) int64 encoder frames decoded since the row's last token (or since its start): the
      trailing blanks that endpoint rules measure.
    """

    contexts: Tensor
    decoder_out: Tensor
    tokens: Tensor
    num_tokens: Tensor
    frames_since_token: Tensor

    @classmethod
    def initial(cls, num_rows: int, model: Transducer) -> "Hypotheses":
        """``num_rows`` empty hypotheses on the model's device."""
        device = model.joiner.output_linear.weight.device
        context = torch.tensor(initial_context(model.decoder.context_size, model.decoder.blank_id), device=device)
        contexts = context.expand(num_rows, -1).contiguous()
        return cls(
            contexts=contexts,
            decoder_out=decoder_output(model, contexts[:1]).expand(num_rows, -1).contiguous(),
            tokens=torch.full((num_rows, INITIAL_TOKEN_CAPACITY), PAD_TOKEN, dtype=torch.int64, device=device),
            num_tokens=torch.zeros(num_rows, dtype=torch.int64, device=device),
            frames_since_token=torch.zeros(num_rows, dtype=torch.int64, device=device),
        )

    @property
    def num_rows(self) -> int:
        return self.contexts.size(0)

    def select(self, rows: Tensor) -> "Hypotheses":
        """rows: (R',) int64 -> the hypotheses at those rows (copies)."""
        return Hypotheses(
            self.contexts[rows], self.decoder_out[rows], self.tokens[rows], self.num_tokens[rows], self.frames_since_token[rows]
        )

    def extend_(self, rows: Tensor, new_tokens: Tensor, model: Transducer) -> None:
        """Append ``new_tokens`` (M,) to ``rows`` (M,) (distinct), in place; their decoder output is recomputed and
        their ``frames_since_token`` restarts at 0."""
        if rows.numel() == 0:
            return
        self._reserve(int(self.num_tokens[rows].max()) + 1)
        self.tokens[rows, self.num_tokens[rows]] = new_tokens
        self.num_tokens[rows] += 1
        self.frames_since_token[rows] = 0
        contexts = torch.cat([self.contexts[rows, 1:], new_tokens.unsqueeze(1)], dim=1)
        self.contexts[rows] = contexts
        self.decoder_out[rows] = decoder_output(model, contexts)

    def where(self, keep_self: Tensor, other: "Hypotheses") -> "Hypotheses":
        """keep_self: (R,) bool -> row r from ``self`` where True, else from ``other`` (same R)."""
        capacity = max(self.tokens.size(1), other.tokens.size(1))
        self._reserve(capacity)
        other._reserve(capacity)
        keep = keep_self.unsqueeze(1)
        return Hypotheses(
            torch.where(keep, self.contexts, other.contexts),
            torch.where(keep, self.decoder_out, other.decoder_out),
            torch.where(keep, self.tokens, other.tokens),
            torch.where(keep_self, self.num_tokens, other.num_tokens),
            torch.where(keep_self, self.frames_since_token, other.frames_since_token),
        )

    def reset_rows_(self, rows: Tensor, model: Transducer) -> None:
        """Make ``rows`` (M,) empty hypotheses again, in place (a new utterance takes over these rows)."""
        fresh = Hypotheses.initial(1, model)
        self.contexts[rows] = fresh.contexts
        self.decoder_out[rows] = fresh.decoder_out
        self.tokens[rows] = PAD_TOKEN
        self.num_tokens[rows] = 0
        self.frames_since_token[rows] = 0

    def token_lists(self, rows: List[int]) -> List[List[int]]:
        """The emitted tokens of ``rows`` as Python lists."""
        lengths = self.num_tokens[rows].tolist()
        return [self.tokens[row, :length].tolist() for row, length in zip(rows, lengths)]

    def _reserve(self, capacity: int) -> None:
        """Grow ``tokens`` (doubling) so that it holds at least ``capacity`` tokens per row."""
        current = self.tokens.size(1)
        if capacity <= current:
            return
        new_capacity = max(capacity, 2 * current)
        padding = torch.full((self.num_rows, new_capacity - current), PAD_TOKEN, dtype=torch.int64, device=self.tokens.device)
        self.tokens = torch.cat([self.tokens, padding], dim=1)
