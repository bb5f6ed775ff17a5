"""Fixed-width beams for a batch of utterances, and the frame steps that modified_beam_search and
fast_beam_search share.

Each of N utterances has K hypothesis slots; an unused slot has score -inf. Hypothesis k of utterance n is row
``n * K + k`` of a ``Hypotheses``. A frame of search is: score every (hypothesis, token) pair, keep some of them
(method specific), merge kept candidates that are the same hypothesis (method specific key and reduction), and
build the new hypotheses from their parents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import torch
from torch import Tensor

from icefall_lite.decoding.hypotheses import Hypotheses
from icefall_lite.decoding.search import TransducerSearch
from icefall_lite.model.transducer import Transducer


@dataclass
class BeamState:
    """scores: (N, K) float log-probabilities, -inf for unused slots; hyps: ``Hypotheses`` of N * K rows."""

    scores: Tensor
    hyps: Hypotheses

    @classmethod
    def initial(cls, batch: int, beam: int, model: Transducer) -> "BeamState":
        """Each utterance starts with one empty hypothesis of score 0 in slot 0."""
        device = model.joiner.output_linear.weight.device
        scores = torch.full((batch, beam), float("-inf"), device=device)
        scores[:, 0] = 0.0
        return cls(scores, Hypotheses.initial(batch * beam, model))

    @property
    def beam(self) -> int:
        return self.scores.size(1)

    def reset_rows_(self, rows: List[int], model: Transducer) -> None:
        """Restart utterances ``rows`` with one empty hypothesis, in place."""
        utterances = torch.tensor(rows, device=self.scores.device)
        self.scores[utterances] = float("-inf")
        self.scores[utterances, 0] = 0.0
        slots = (utterances.unsqueeze(1) * self.beam + torch.arange(self.beam, device=utterances.device)).flatten()
        self.hyps.reset_rows_(slots, model)

    def where(self, active: Optional[Tensor], old: "BeamState") -> "BeamState":
        """active: (N,) bool -> self for active utterances, ``old`` for the others (None: self)."""
        if active is None:
            return self
        scores = torch.where(active.unsqueeze(1), self.scores, old.scores)
        return BeamState(scores, self.hyps.where(active.repeat_interleave(self.beam), old.hyps))

    def best_slot(self, length_norm: bool) -> Tensor:
        """(N,) int64 slot of each utterance's best hypothesis, by score or score / (context_size + tokens)."""
        scores = self.scores
        if length_norm:
            context_size = self.hyps.contexts.size(1)
            lengths = self.hyps.num_tokens.view_as(scores) + context_size
            scores = scores / lengths
        return scores.argmax(dim=1)

    def best_tokens(self, rows: List[int], length_norm: bool) -> List[List[int]]:
        return self.hyps.token_lists(self.best_rows(rows, length_norm))

    def best_rows(self, rows: List[int], length_norm: bool) -> List[int]:
        """The ``Hypotheses`` row of the best hypothesis of each of the utterances ``rows``."""
        slots = self.best_slot(length_norm)[rows].tolist()
        return [row * self.beam + slot for row, slot in zip(rows, slots)]


def candidate_scores(model: Transducer, state: BeamState, encoder_frame: Tensor) -> Tensor:
    """encoder_frame: (N, joiner_dim) projected -> (N, K * V) float: score of every hypothesis extended by
    every token (blank included), flattened as ``k * V + token``."""
    batch, beam = state.scores.shape
    decoder_out = state.hyps.decoder_out.view(batch, beam, -1)
    logits = model.joiner(encoder_frame.unsqueeze(1).expand_as(decoder_out), decoder_out, project_input=False)
    return (logits.log_softmax(dim=-1) + state.scores.unsqueeze(2)).flatten(1)


def merge_duplicates(scores: Tensor, same: Tensor, log_add: bool) -> Tensor:
    """Merge candidates that are the same hypothesis into the first (best-ranked) of them.

    Args:
      scores: (N, M) float candidate scores, -inf for none.
      same: (N, M, M) bool, an equivalence relation between the finite candidates of each utterance.
      log_add: combine a group's scores with log-add (sum of probabilities) if True, else keep the maximum.
    Returns:
      (N, M) float: the group's combined score at its first member, -inf at the others.
    """
    finite = torch.isfinite(scores)
    same = same & finite.unsqueeze(1) & finite.unsqueeze(2)
    members = torch.where(same, scores.unsqueeze(1), torch.tensor(float("-inf"), device=scores.device))
    combined = members.logsumexp(dim=2) if log_add else members.amax(dim=2)
    first_member = same.int().argmax(dim=2)
    is_first = first_member == torch.arange(scores.size(1), device=scores.device)
    return torch.where(is_first & finite, combined, torch.tensor(float("-inf"), device=scores.device))


def extend_parents(model: Transducer, state: BeamState, parent: Tensor, token: Tensor, emitted: Tensor) -> Hypotheses:
    """The new hypotheses: parent (N, K) slot of each one's parent, token (N, K) its token, emitted (N, K) bool
    whether the token is appended (False for blank, unk and unused slots). Returns N * K rows."""
    beam = state.beam
    parent_rows = parent + torch.arange(parent.size(0), device=parent.device).unsqueeze(1) * beam
    children = state.hyps.select(parent_rows.flatten())
    children.frames_since_token += 1  # back to 0 for the emitting children below
    rows = emitted.flatten().nonzero().squeeze(1)
    children.extend_(rows, token.flatten()[rows], model)
    return children


class BeamStateSearch(TransducerSearch):
    """A search whose state is a ``BeamState`` of ``num_slots`` hypotheses per utterance; the result is the
    hypothesis with the best score, divided by (context_size + tokens) if ``length_norm``."""

    def __init__(self, model: Transducer, num_slots: int, length_norm: bool, unk_id: Optional[int]) -> None:
        super().__init__(model, unk_id)
        self.num_slots = num_slots
        self.length_norm = length_norm

    def init_state(self, batch: int) -> BeamState:
        return BeamState.initial(batch, self.num_slots, self.model)

    def reset_rows(self, state: BeamState, rows: List[int]) -> None:
        state.reset_rows_(rows, self.model)

    def best_tokens(self, state: BeamState, rows: List[int]) -> List[List[int]]:
        return state.best_tokens(rows, self.length_norm)

    def trailing_blank_frames(self, state: BeamState, rows: List[int]) -> List[int]:
        return state.hyps.frames_since_token[state.best_rows(rows, self.length_norm)].tolist()
