"""CTC decoding in plain PyTorch, batched: greedy search and prefix beam search (WeNet's ``ctc_prefix_beam_search``).

Usage::

    log_probs = model.ctc_output(encoder_out)                       # (N, T, V)
    tokens = ctc_greedy_search(log_probs, encoder_lens)             # N token lists
    nbest = ctc_prefix_beam_search(log_probs, encoder_lens, beam_size=4)   # per utterance [(tokens, score), ...]

Prefix beam search keeps, per utterance, the `beam_size` best label prefixes with two log-probabilities each: of
the frame paths that collapse to the prefix and end in blank (pb) or in its last token (pnb). All utterances
advance together, one frame per step; each frame extends every prefix only by the frame's `beam_size` most likely
tokens (blank and the prefix's own last token always count). Extensions that reach the same prefix are merged
(log-add) after hashing prefixes with two independent polynomial hashes (62 bits in all), so that no step compares
token sequences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import torch
from torch import Tensor

_NEG_INF = float("-inf")
_HASH_MODULI = (2_147_483_647, 2_147_483_629)  # primes below 2^31: a product of two hashes fits in int64
_HASH_BASES = (1_000_003, 999_983)


def greedy_emissions(best: Tensor, last_before: Tensor, lengths: Tensor, blank: int) -> Tensor:
    """CTC's collapse rule on the best tokens of a run of frames: which frames emit a token.

    Args:
      best: (N, T) int64 best token per frame; last_before: (N,) int64 best token of the frame before the run
        (blank at the start of an utterance); lengths: (N,) int64 valid frames of the run.
    Returns:
      (N, T) bool: valid frames whose token is not blank and differs from the previous frame's.
    """
    previous = torch.cat((last_before.view(-1, 1), best[:, :-1]), dim=1)
    frames = torch.arange(best.shape[1], device=best.device).view(1, -1)
    return (best != blank) & (best != previous) & (frames < lengths.view(-1, 1))


def ctc_greedy_search(log_probs: Tensor, lengths: Tensor, blank: int = 0) -> List[List[int]]:
    """Best token per frame, repeats merged, blanks removed.

    Args:
      log_probs: (N, T, V) float; lengths: (N,) int64 valid frames.
    Returns:
      N token lists.
    """
    best = log_probs.argmax(dim=2)  # (N, T)
    keep = greedy_emissions(best, best.new_full((best.shape[0],), blank), lengths, blank)
    return [row[mask].tolist() for row, mask in zip(best, keep)]


@dataclass
class _Beams:
    """Per utterance n and slot b: the prefix tokens[n, b, :length[n, b]], its hashes, last token, pb and pnb."""

    tokens: Tensor  # (N, B, T) int64
    length: Tensor  # (N, B) int64
    hashes: Tuple[Tensor, Tensor]  # two (N, B) int64
    last: Tensor  # (N, B) int64, -1 for the empty prefix
    blank_score: Tensor  # (N, B) float, pb
    token_score: Tensor  # (N, B) float, pnb

    def score(self) -> Tensor:
        return torch.logaddexp(self.blank_score, self.token_score)


def _initial_beams(batch: int, beam_size: int, frames: int, device: torch.device) -> _Beams:
    """One empty prefix (pb = 0) in slot 0 of every utterance; the other slots impossible."""
    blank_score = torch.full((batch, beam_size), _NEG_INF, device=device)
    blank_score[:, 0] = 0.0
    zeros = torch.zeros(batch, beam_size, dtype=torch.int64, device=device)
    return _Beams(
        tokens=torch.zeros(batch, beam_size, max(frames, 1), dtype=torch.int64, device=device),
        length=zeros, hashes=(zeros, zeros), last=zeros - 1, blank_score=blank_score,
        token_score=torch.full_like(blank_score, _NEG_INF),
    )


def _extended_hashes(hashes: Tuple[Tensor, Tensor], tokens: Tensor) -> Tuple[Tensor, Tensor]:
    """Hashes (N, B) of prefixes extended by tokens (N, B, K) -> two (N, B, K)."""
    return tuple(
        (h.unsqueeze(2) * base + tokens + 1) % modulus for h, base, modulus in zip(hashes, _HASH_BASES, _HASH_MODULI)
    )


def _logsumexp_by_group(values: Tensor, groups: Tensor) -> Tensor:
    """values (N, C) float, groups (N, C) int64 in [0, C) -> (N, C): per row, log-sum-exp of each group's values."""
    peak = torch.full_like(values, _NEG_INF).scatter_reduce(1, groups, values, reduce="amax")
    peak = torch.where(torch.isfinite(peak), peak, 0.0)
    sums = torch.zeros_like(values).scatter_add_(1, groups, (values - peak.gather(1, groups)).exp())
    return sums.log() + peak


def _advance(beams: _Beams, frame_log_probs: Tensor, beam_size: int, blank: int) -> _Beams:
    """One frame: every prefix stays (blank, or a repeat of its last token) or grows by one of the frame's top
    tokens; equal prefixes are merged and the `beam_size` best kept. frame_log_probs: (N, V) float."""
    batch, slots = beams.length.shape
    no_blank = frame_log_probs.index_fill(1, torch.tensor([blank], device=frame_log_probs.device), _NEG_INF)
    top_log_probs, top_tokens = no_blank.topk(min(beam_size, no_blank.shape[1] - 1), dim=1)  # (N, K)
    total = beams.score()
    last_log_prob = frame_log_probs.gather(1, beams.last.clamp(min=0)).masked_fill(beams.last < 0, _NEG_INF)

    # Staying: the prefix is unchanged.
    stay_blank = total + frame_log_probs[:, blank : blank + 1]
    stay_token = beams.token_score + last_log_prob
    # Growing by token c: after a blank always; after the same token only through a blank (else it merges).
    tokens = top_tokens.unsqueeze(1).expand(batch, slots, -1)  # (N, B, K)
    source = torch.where(tokens == beams.last.unsqueeze(2), beams.blank_score.unsqueeze(2), total.unsqueeze(2))
    grow_token = source + top_log_probs.unsqueeze(1)
    grow_hashes = _extended_hashes(beams.hashes, tokens)

    num_grow = tokens.shape[2]
    candidates_blank = torch.cat((stay_blank, torch.full_like(grow_token, _NEG_INF).flatten(1)), dim=1)
    candidates_token = torch.cat((stay_token, grow_token.flatten(1)), dim=1)
    keys = [torch.cat((h, g.flatten(1)), dim=1) for h, g in zip(beams.hashes, grow_hashes)]
    key = keys[0] * _HASH_MODULI[1] + keys[1]  # (N, C), C = B * (K + 1)

    sorted_key, order = key.sort(dim=1)
    starts = torch.ones_like(sorted_key, dtype=torch.bool)
    starts[:, 1:] = sorted_key[:, 1:] != sorted_key[:, :-1]
    group_of_sorted = starts.cumsum(dim=1) - 1
    groups = torch.empty_like(group_of_sorted).scatter_(1, order, group_of_sorted)
    merged_blank = _logsumexp_by_group(candidates_blank, groups)
    merged_token = _logsumexp_by_group(candidates_token, groups)
    representative = torch.zeros_like(starts).scatter_(1, order, starts)  # the first candidate of each group
    group_score = torch.logaddexp(merged_blank, merged_token).gather(1, groups)
    group_score = group_score.masked_fill(~representative, _NEG_INF)
    chosen_score, chosen = group_score.topk(slots, dim=1)  # (N, B) candidate indices
    chosen_group = groups.gather(1, chosen)
    filler = chosen_score == _NEG_INF  # fewer possible prefixes than slots: keep these impossible

    parent = torch.where(chosen < slots, chosen, (chosen - slots) // num_grow)
    grows = chosen >= slots
    appended = top_tokens.gather(1, ((chosen - slots) % num_grow).clamp(min=0))
    new_tokens = beams.tokens.gather(1, parent.unsqueeze(2).expand_as(beams.tokens))
    old_length = beams.length.gather(1, parent)
    position = old_length.clamp(max=new_tokens.shape[2] - 1).unsqueeze(2)
    written = torch.where(grows, appended, new_tokens.gather(2, position).squeeze(2))
    new_tokens.scatter_(2, position, written.unsqueeze(2))
    return _Beams(
        tokens=new_tokens,
        length=old_length + grows.long(),
        hashes=tuple(k.gather(1, chosen) for k in keys),
        last=torch.where(grows, appended, beams.last.gather(1, parent)),
        blank_score=merged_blank.gather(1, chosen_group).masked_fill(filler, _NEG_INF),
        token_score=merged_token.gather(1, chosen_group).masked_fill(filler, _NEG_INF),
    )


def _select_active(active: Tensor, new: _Beams, old: _Beams) -> _Beams:
    """Per utterance, the advanced beams where `active` (N,) bool, the old ones elsewhere."""
    def pick(a: Tensor, b: Tensor) -> Tensor:
        return torch.where(active.view(-1, *([1] * (a.dim() - 1))), a, b)

    return _Beams(
        tokens=pick(new.tokens, old.tokens), length=pick(new.length, old.length),
        hashes=tuple(pick(a, b) for a, b in zip(new.hashes, old.hashes)), last=pick(new.last, old.last),
        blank_score=pick(new.blank_score, old.blank_score), token_score=pick(new.token_score, old.token_score),
    )


def ctc_prefix_beam_search(
    log_probs: Tensor, lengths: Tensor, beam_size: int = 4, blank: int = 0
) -> List[List[Tuple[List[int], float]]]:
    """The `beam_size` best label sequences of each utterance with their CTC log-probabilities.

    Args:
      log_probs: (N, T, V) float; lengths: (N,) int64 valid frames; beam_size: prefixes kept per frame (and
        tokens tried per frame).
    Returns:
      per utterance, up to `beam_size` (tokens, log p(tokens | frames)) pairs, best first (impossible ones
      dropped).
    """
    if beam_size < 1:
        raise ValueError(f"--beam-size must be at least 1, got {beam_size}")
    batch, frames, _ = log_probs.shape
    log_probs = log_probs.float()
    beams = _initial_beams(batch, beam_size, frames, log_probs.device)
    for t in range(frames):
        advanced = _advance(beams, log_probs[:, t], beam_size, blank)
        beams = _select_active(lengths > t, advanced, beams)
    scores, order = beams.score().sort(dim=1, descending=True)
    results = []
    for n in range(batch):
        rows = [(beams.tokens[n, b, : beams.length[n, b]].tolist(), float(s)) for b, s in zip(order[n], scores[n])]
        results.append([(tokens, score) for tokens, score in rows if score > _NEG_INF])
    return results
