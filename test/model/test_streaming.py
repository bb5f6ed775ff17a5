"""Streaming the encoder chunk by chunk equals the eval-mode (simulated streaming) forward, from chunk one."""

from __future__ import annotations

import dataclasses
from typing import List

import pytest
import torch
from torch import Tensor

from icefall_lite.model.encoder_state import (
    STATE_KINDS,
    stack_states,
    state_batch_dim,
    state_names,
    unstack_states,
)
from icefall_lite.model.subsampling import SUBSAMPLING_CONTEXT
from icefall_lite.model.zipformer import Zipformer

from .tiny_models import TINY_ENCODER, randomize_

TOLERANCE = 1e-4


def make_encoder(decode_chunk_size: int, num_left_chunks: int = 2) -> Zipformer:
    config = dataclasses.replace(TINY_ENCODER, decode_chunk_size=decode_chunk_size, num_left_chunks=num_left_chunks)
    return randomize_(Zipformer(config)).eval()


def num_frames_for(chunks: int, extra: int, decode_chunk_size: int) -> int:
    """fbank frames giving ``chunks`` full chunks plus ``extra`` frames (extra < 2 * decode_chunk_size)."""
    return chunks * 2 * decode_chunk_size + SUBSAMPLING_CONTEXT + extra


def simulate(encoder: Zipformer, utterance: Tensor) -> Tensor:
    """utterance: (T, F) -> (T', C) from the masked whole-utterance forward."""
    out, out_lens = encoder(utterance.unsqueeze(0), torch.tensor([utterance.size(0)]))
    return out[0, : out_lens[0]]


def stream(encoder: Zipformer, utterances: List[Tensor], start_steps: List[int]) -> List[Tensor]:
    """Run streams through ``streaming_forward`` in one batch; stream i joins at step ``start_steps[i]``.

    Each step feeds every active stream its next window of 2 * decode_chunk_size + 7 frames (the last one
    zero-padded, with its true length in x_lens), batching their states with stack/unstack.
    Returns each stream's (T'_i, C) output.
    """
    shift = 2 * encoder.config.decode_chunk_size
    window = shift + SUBSAMPLING_CONTEXT
    states = [encoder.get_init_state(torch.device("cpu")) for _ in utterances]
    offsets = [0] * len(utterances)
    outputs: List[List[Tensor]] = [[] for _ in utterances]

    def unfinished(i: int) -> bool:
        return offsets[i] // 2 < (utterances[i].size(0) - SUBSAMPLING_CONTEXT) // 2

    step = 0
    while any(unfinished(i) for i in range(len(utterances))):
        active = [i for i in range(len(utterances)) if start_steps[i] <= step and unfinished(i)]
        step += 1
        if not active:
            continue
        pieces = [utterances[i][offsets[i] : offsets[i] + window] for i in active]
        x = torch.stack([torch.nn.functional.pad(p, (0, 0, 0, window - p.size(0))) for p in pieces])
        x_lens = torch.tensor([p.size(0) for p in pieces])
        out, out_lens, new_states = encoder.streaming_forward(x, x_lens, stack_states([states[i] for i in active]))
        for j, (i, state) in enumerate(zip(active, unstack_states(new_states))):
            states[i] = state
            outputs[i].append(out[j, : out_lens[j]])
            offsets[i] += shift
    return [torch.cat(pieces) for pieces in outputs]


@pytest.mark.parametrize(
    "decode_chunk_size, num_left_chunks, chunks, extra",
    [(8, 2, 6, 0), (8, 2, 5, 11), (16, 2, 4, 5), (16, 4, 1, 0), (32, 1, 3, 20)],
)
@torch.no_grad()
def test_streaming_equals_simulation_from_first_chunk(decode_chunk_size: int, num_left_chunks: int, chunks: int, extra: int) -> None:
    encoder = make_encoder(decode_chunk_size, num_left_chunks)
    utterance = torch.randn(num_frames_for(chunks, extra, decode_chunk_size), TINY_ENCODER.feature_dim)
    expected = simulate(encoder, utterance)
    (streamed,) = stream(encoder, [utterance], [0])
    assert streamed.shape == expected.shape
    per_chunk = (streamed - expected).abs().amax(dim=1).split(decode_chunk_size // 2)
    assert [float(d.max()) < TOLERANCE for d in per_chunk] == [True] * len(per_chunk), per_chunk


@torch.no_grad()
def test_batch_of_streams_with_different_lengths_and_start_times() -> None:
    encoder = make_encoder(decode_chunk_size=8)
    lengths = [num_frames_for(7, 3, 8), num_frames_for(2, 0, 8), num_frames_for(4, 9, 8)]
    utterances = [torch.randn(n, TINY_ENCODER.feature_dim) for n in lengths]
    streamed = stream(encoder, utterances, start_steps=[0, 1, 3])
    for utterance, output in zip(utterances, streamed):
        expected = simulate(encoder, utterance)
        assert output.shape == expected.shape
        assert (output - expected).abs().max() < TOLERANCE


@torch.no_grad()
def test_first_chunk_differs_when_empty_cache_slots_are_not_masked() -> None:
    """Control: pretending the zero cache holds real frames (icefall's streaming) changes the first chunk."""
    encoder = make_encoder(decode_chunk_size=8)
    utterance = torch.randn(num_frames_for(1, 0, 8), TINY_ENCODER.feature_dim)
    states = encoder.get_init_state(torch.device("cpu"))
    num_stacks = TINY_ENCODER.num_stacks
    for i in range(num_stacks):
        states[i].fill_(1000)
    out, _, _ = encoder.streaming_forward(utterance.unsqueeze(0), torch.tensor([utterance.size(0)]), states)
    assert (out[0] - simulate(encoder, utterance)).abs().max() > 1e-2


@torch.no_grad()
def test_simulation_depends_on_chunk_size() -> None:
    """Control: the chunk mask matters, so agreement with streaming is not trivially true."""
    small_chunks, large_chunks = make_encoder(8), make_encoder(32)
    large_chunks.load_state_dict(small_chunks.state_dict())
    utterance = torch.randn(num_frames_for(4, 0, 8), TINY_ENCODER.feature_dim)
    assert (simulate(small_chunks, utterance) - simulate(large_chunks, utterance)).abs().max() > 1e-2


@torch.no_grad()
def test_eval_forward_ignores_padding_of_other_utterances() -> None:
    encoder = make_encoder(decode_chunk_size=16)
    lengths = [num_frames_for(3, 4, 16), num_frames_for(1, 13, 16)]
    x = torch.randn(2, lengths[0], TINY_ENCODER.feature_dim) * 3.0
    out, out_lens = encoder(x, torch.tensor(lengths))
    for n, length in enumerate(lengths):
        expected = simulate(encoder, x[n, :length])
        assert int(out_lens[n]) == expected.size(0)
        assert (out[n, : out_lens[n]] - expected).abs().max() < TOLERANCE


def test_init_state_names_shapes_and_batch_dims() -> None:
    encoder = Zipformer(dataclasses.replace(TINY_ENCODER, decode_chunk_size=16, num_left_chunks=4))
    states = encoder.get_init_state(torch.device("cpu"))
    names = state_names(TINY_ENCODER.num_stacks)
    assert len(states) == len(names) == 7 * TINY_ENCODER.num_stacks
    assert names[0] == "cached_len_0" and names[-1] == "cached_conv2_4"
    layers = TINY_ENCODER.num_encoder_layers
    by_name = dict(zip(names, states))
    assert by_name["cached_len_1"].shape == (layers[1], 1) and by_name["cached_len_1"].dtype == torch.int64
    assert by_name["cached_avg_2"].shape == (layers[2], 1, 32)
    assert [by_name[f"cached_key_{i}"].shape[1] for i in range(5)] == [64, 32, 16, 8, 32]
    assert by_name["cached_key_3"].shape == (layers[3], 8, 1, 16)
    assert by_name["cached_val2_4"].shape == (layers[4], 32, 1, 8)
    assert by_name["cached_conv1_1"].shape == (layers[1], 1, 32, 6)
    assert all(float(state.abs().sum()) == 0.0 for state in states)
    assert [state_batch_dim(i, 5) for i in range(0, 35, 5)] == [1, 1, 2, 2, 2, 1, 1]
    assert len(STATE_KINDS) == 7


def test_stack_then_unstack_round_trips() -> None:
    encoder = Zipformer(TINY_ENCODER)
    streams = [[torch.randn_like(s.float()).to(s.dtype) for s in encoder.get_init_state(torch.device("cpu"))] for _ in range(3)]
    stacked = stack_states(streams)
    assert stacked[0].shape[1] == 3 and stacked[10].shape[2] == 3
    for original, recovered in zip(streams, unstack_states(stacked)):
        assert all(torch.equal(a, b) for a, b in zip(original, recovered))


def test_streaming_forward_rejects_states_of_wrong_batch() -> None:
    encoder = Zipformer(TINY_ENCODER).eval()
    states = encoder.get_init_state(torch.device("cpu"))
    x = torch.randn(2, 23, TINY_ENCODER.feature_dim)
    with pytest.raises(ValueError, match="batch 2"):
        encoder.streaming_forward(x, torch.tensor([23, 23]), states)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
@torch.no_grad()
def test_scripted_streaming_forward_matches_eager() -> None:
    encoder = make_encoder(decode_chunk_size=8)
    scripted = torch.jit.script(encoder)
    x, x_lens = torch.randn(2, 23, TINY_ENCODER.feature_dim), torch.tensor([23, 19])
    states = stack_states([scripted.get_init_state(torch.device("cpu"))] * 2)
    expected, expected_lens, expected_states = encoder.streaming_forward(x, x_lens, states)
    out, out_lens, new_states = scripted.streaming_forward(x, x_lens, states)
    torch.testing.assert_close(out, expected)
    assert torch.equal(out_lens, expected_lens)
    assert all(torch.equal(a, b) for a, b in zip(new_states, expected_states))
