"""CTC greedy search and prefix beam search against exhaustive enumeration."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

import pytest
import torch

from icefall_lite.decoding.ctc_search import ctc_greedy_search, ctc_prefix_beam_search


def collapse(path, blank: int = 0) -> tuple:
    merged = [token for i, token in enumerate(path) if i == 0 or token != path[i - 1]]
    return tuple(token for token in merged if token != blank)


def exhaustive(log_probs: torch.Tensor) -> dict:
    """label sequence -> log p, summed over every frame path: log_probs (T, V)."""
    frames, vocab = log_probs.shape
    totals = defaultdict(lambda: -math.inf)
    for path in itertools.product(range(vocab), repeat=frames):
        score = float(sum(log_probs[t, k] for t, k in enumerate(path)))
        totals[collapse(path)] = float(torch.logaddexp(torch.tensor(totals[collapse(path)]), torch.tensor(score)))
    return totals


def test_greedy_merges_repeats_drops_blanks_and_stops_at_the_length():
    frames = [[0, 2, 2, 0, 2, 1, 1, 3], [1, 1, 1, 0, 0, 3, 3, 3]]
    log_probs = torch.nn.functional.one_hot(torch.tensor(frames), 4).float().log()
    assert ctc_greedy_search(log_probs, torch.tensor([8, 5])) == [[2, 2, 1, 3], [1]]


@pytest.mark.parametrize("frames,vocab,seed", [(4, 3, 0), (5, 3, 1), (3, 4, 2), (6, 2, 3)])
def test_prefix_beam_search_covering_everything_equals_exhaustive_search(frames, vocab, seed):
    log_probs = torch.randn(2, frames, vocab, generator=torch.Generator().manual_seed(seed)).log_softmax(-1)
    lengths = torch.tensor([frames, frames - 1])
    beam = 200  # more than the number of label sequences: nothing is pruned
    results = ctc_prefix_beam_search(log_probs.double(), lengths, beam_size=beam)
    for n in range(2):
        expected = exhaustive(log_probs[n, : lengths[n]])
        found = {tuple(tokens): score for tokens, score in results[n]}
        assert set(found) == set(expected)
        for tokens, score in expected.items():
            assert found[tokens] == pytest.approx(score, abs=1e-5)
        scores = [score for _, score in results[n]]
        assert scores == sorted(scores, reverse=True)


def test_narrow_beam_finds_the_best_sequence_of_a_peaked_distribution():
    gen = torch.Generator().manual_seed(4)
    best_path = torch.tensor([[0, 3, 3, 0, 3, 5, 0, 0, 7, 7]])
    logits = torch.randn(1, 10, 9, generator=gen) + 6.0 * torch.nn.functional.one_hot(best_path, 9)
    results = ctc_prefix_beam_search(logits.log_softmax(-1), torch.tensor([10]), beam_size=3)
    assert results[0][0][0] == [3, 3, 5, 7]
    assert len(results[0]) == 3 and len({tuple(t) for t, _ in results[0]}) == 3


def test_batched_results_equal_each_utterance_alone():
    gen = torch.Generator().manual_seed(5)
    log_probs = torch.randn(3, 12, 6, generator=gen).log_softmax(-1)
    lengths = torch.tensor([12, 7, 9])
    together = ctc_prefix_beam_search(log_probs, lengths, beam_size=4)
    for n in range(3):
        alone = ctc_prefix_beam_search(log_probs[n : n + 1, : lengths[n]], lengths[n : n + 1], beam_size=4)[0]
        assert [t for t, _ in alone] == [t for t, _ in together[n]]
        assert [s for _, s in alone] == pytest.approx([s for _, s in together[n]], abs=1e-5)
