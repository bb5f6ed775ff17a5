"""The searches: known best paths, agreement between methods, exactness with wide beams, chunked input."""

from __future__ import annotations

from typing import List

import pytest
import torch

from icefall_lite.decoding.beam_search import BeamSearch
from icefall_lite.decoding.fast_beam_search import FastBeamSearch
from icefall_lite.decoding.greedy_search import GreedySearch
from icefall_lite.decoding.methods import DECODING_METHODS, SearchOptions, make_search
from icefall_lite.decoding.modified_beam_search import ModifiedBeamSearch

from .helpers import (
    exhaustive_one_symbol_per_frame,
    frames_asking_for,
    known_path_model,
    reference_greedy,
    talkative_model,
)

ENCODER_DIM = 32


def random_encoder_out(batch: int, frames: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, frames, ENCODER_DIM, generator=torch.Generator().manual_seed(seed)) * 2.0


@pytest.mark.parametrize("method", DECODING_METHODS)
def test_hand_built_joiner_gives_its_known_best_path(method: str) -> None:
    model = known_path_model()
    wanted = [[3, 3, 0, 5, 1, 1, 0, 4, 7, 3], [6, 0, 0, 6, 2, 5, 0, 0, 0, 0]]
    expected = [[3, 5, 1, 4, 7, 3], [6, 2, 5]]
    encoder_out = torch.stack([frames_asking_for(tokens) for tokens in wanted])
    search = make_search(method, model, SearchOptions(max_sym_per_frame=2))
    assert search.decode(encoder_out, torch.tensor([10, 10])) == expected
    assert search.decode(encoder_out, torch.tensor([10, 5])) == [expected[0], [6, 2]]


@pytest.mark.parametrize("method", DECODING_METHODS)
def test_unk_is_treated_as_blank(method: str) -> None:
    model = known_path_model()
    encoder_out = frames_asking_for([3, 2, 2, 4, 2]).unsqueeze(0)
    search = make_search(method, model, SearchOptions(), unk_id=2)
    assert search.decode(encoder_out, torch.tensor([5])) == [[3, 4]]


@pytest.mark.parametrize("max_sym_per_frame", [1, 3])
def test_batched_greedy_equals_per_utterance_greedy(max_sym_per_frame: int) -> None:
    model = talkative_model(vocab_size=8)
    encoder_out, lens = random_encoder_out(4, 30), torch.tensor([30, 11, 30, 1])
    hyps = GreedySearch(model, max_sym_per_frame).decode(encoder_out, lens)
    expected = [reference_greedy(model, encoder_out[n, : lens[n]], max_sym_per_frame)[0] for n in range(4)]
    assert hyps == expected
    assert sum(map(len, hyps)) > 20  # the model is not trivially silent
    if max_sym_per_frame > 1:
        assert any(len(h) > lens[n] for n, h in enumerate(hyps)), "some frame should emit several symbols"


def test_modified_beam_search_with_beam_1_equals_greedy() -> None:
    model = talkative_model(vocab_size=8, seed=3)
    encoder_out, lens = random_encoder_out(3, 40, seed=4), torch.tensor([40, 25, 7])
    greedy = GreedySearch(model, max_sym_per_frame=1, unk_id=2).decode(encoder_out, lens)
    assert ModifiedBeamSearch(model, beam_size=1, unk_id=2).decode(encoder_out, lens) == greedy
    assert sum(map(len, greedy)) > 20


def test_fast_beam_search_without_pruning_is_exact_viterbi_and_beats_greedy() -> None:
    model = talkative_model(vocab_size=4, seed=5)
    encoder_out = random_encoder_out(2, 5, seed=6)
    search = FastBeamSearch(model, beam=1e9, max_contexts=64, max_states=4 * 64)
    state = search.advance(search.init_state(2), encoder_out, torch.tensor([5, 5]))
    for n in range(2):
        tokens, score = exhaustive_one_symbol_per_frame(model, encoder_out[n], merge_on_context=True)
        assert search.best_tokens(state, [n]) == [tokens]
        assert float(state.scores[n].max()) == pytest.approx(score, abs=1e-4)
        assert score >= reference_greedy(model, encoder_out[n], 1)[1] - 1e-5


def test_modified_beam_search_with_a_wide_beam_is_exact() -> None:
    model = talkative_model(vocab_size=4, seed=7)
    encoder_out = random_encoder_out(2, 4, seed=8)
    search = ModifiedBeamSearch(model, beam_size=256)
    state = search.advance(search.init_state(2), encoder_out, torch.tensor([4, 4]))
    for n in range(2):
        tokens, score = exhaustive_one_symbol_per_frame(model, encoder_out[n], merge_on_context=False)
        assert search.best_tokens(state, [n]) == [tokens]
        row_scores = state.scores[n]
        slot = int((row_scores / (2 + state.hyps.num_tokens.view_as(state.scores)[n])).argmax())
        assert float(row_scores[slot]) == pytest.approx(score, abs=1e-4)


def test_pruned_searches_never_score_below_the_greedy_path() -> None:
    """The log-add score of modified beam search's best sequence and the Viterbi score of fast beam search's
    best path include the greedy path or beat it, on these random models."""
    for seed in range(3):
        model = talkative_model(vocab_size=8, seed=seed)
        encoder_out = random_encoder_out(2, 25, seed=seed + 10)
        lens = torch.tensor([25, 25])
        for search in (ModifiedBeamSearch(model, beam_size=4), FastBeamSearch(model, beam=20.0, max_contexts=8, max_states=64)):
            state = search.advance(search.init_state(2), encoder_out, lens)
            for n in range(2):
                assert float(state.scores[n].max()) >= reference_greedy(model, encoder_out[n], 1)[1] - 1e-4


@pytest.mark.parametrize("method", DECODING_METHODS)
def test_decoding_in_chunks_equals_decoding_at_once(method: str) -> None:
    model = talkative_model(vocab_size=8, seed=2)
    encoder_out, lens = random_encoder_out(3, 24, seed=9), torch.tensor([24, 13, 20])
    search = make_search(method, model, SearchOptions(beam=8.0, max_contexts=4, max_states=16), unk_id=2)
    whole = search.decode(encoder_out, lens)
    state = search.init_state(3)
    for start, end in [(0, 5), (5, 8), (8, 24)]:
        chunk_lens = (lens - start).clamp(min=0, max=end - start)
        state = search.advance(state, encoder_out[:, start:end], chunk_lens)
    assert search.best_tokens(state, [0, 1, 2]) == whole


@pytest.mark.parametrize("method", DECODING_METHODS)
def test_reset_rows_starts_a_fresh_utterance(method: str) -> None:
    model = talkative_model(vocab_size=8, seed=4)
    first, second = random_encoder_out(2, 12, seed=11), random_encoder_out(2, 12, seed=12)
    lens = torch.tensor([12, 12])
    search = make_search(method, model, SearchOptions())
    state = search.advance(search.init_state(2), first, lens)
    search.reset_rows(state, [1])
    state = search.advance(state, second, torch.tensor([0, 12]))
    assert search.best_tokens(state, [1]) == search.decode(second[1:], lens[1:])
    assert search.best_tokens(state, [0]) == search.decode(first[:1], lens[:1])


def test_beam_search_keeps_at_most_beam_hypotheses_and_prefers_likely_ones() -> None:
    model = talkative_model(vocab_size=8, seed=6)
    encoder_out = random_encoder_out(1, 15, seed=13)
    search = BeamSearch(model, beam_size=3)
    state = search.advance(search.init_state(1), encoder_out, torch.tensor([15]))
    assert 1 <= len(state[0].hyps) <= 3
    tokens: List[int] = search.best_tokens(state, [0])[0]
    assert len(tokens) > 0


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda m: GreedySearch(m, max_sym_per_frame=0), "--max-sym-per-frame"),
        (lambda m: ModifiedBeamSearch(m, beam_size=0), "--beam-size"),
        (lambda m: FastBeamSearch(m, beam=-1.0), "--beam"),
        (lambda m: make_search("nbest", m, SearchOptions()), "--decoding-method"),
    ],
)
def test_bad_options_name_the_option(factory, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        factory(talkative_model())
