"""Relative positions, masks and the cached multi-head attention."""

from __future__ import annotations

import math

import pytest
import torch

from icefall_lite.model.attention import (
    RelPositionalEncoding,
    RelPositionMultiheadAttention,
    attention_bias,
    attention_mask,
    rel_shift,
)


@pytest.mark.parametrize("num_queries, cache_size", [(1, 0), (1, 5), (4, 0), (6, 3)])
def test_rel_shift_picks_each_keys_distance(num_queries: int, cache_size: int) -> None:
    num_keys = cache_size + num_queries
    pos_scores = torch.randn(3, num_queries, num_keys + num_queries - 1)
    shifted = rel_shift(pos_scores, num_keys)
    for i in range(num_queries):
        for j in range(num_keys):
            assert shifted[:, i, j].tolist() == pos_scores[:, i, num_queries - 1 - i + j].tolist()


def test_positional_encoding_rows_are_signed_distances() -> None:
    encoding = RelPositionalEncoding(8, dropout=0.0)
    table = encoding(cache_size=2, num_frames=3)
    assert table.shape == (2 + 2 * 3 - 1, 8)
    distances = [4, 3, 2, 1, 0, -1, -2]
    for row, distance in zip(table, distances):
        frequency = math.exp(-math.log(10000.0) * 2 / 8)
        assert row[2].item() == pytest.approx(math.sin(distance * frequency), abs=1e-6)
        assert row[3].item() == pytest.approx(math.cos(distance * frequency), abs=1e-6)


def test_chunk_mask_matches_wenet_rule() -> None:
    num_frames, chunk, left = 13, 3, 2
    mask = attention_mask(torch.tensor([num_frames]), torch.tensor([0]), 0, num_frames, chunk, left)[0]
    for i in range(num_frames):
        first, end = max((i // chunk - left) * chunk, 0), min((i // chunk + 1) * chunk, num_frames)
        visible = [j for j in range(num_frames) if not mask[i, j]]
        assert visible == list(range(first, end))


def test_mask_hides_unfilled_cache_slots_and_padding() -> None:
    mask = attention_mask(torch.tensor([3, 1]), torch.tensor([1, 7]), 4, 3, chunk_size=-1, num_left_chunks=2)
    assert mask.shape == (2, 1, 7)
    assert mask[0, 0].tolist() == [True, True, True, False, False, False, False]
    assert mask[1, 0].tolist() == [False, False, False, False, False, True, True]


def test_cached_attention_equals_attention_over_the_whole_sequence() -> None:
    attention = RelPositionMultiheadAttention(embed_dim=12, attention_dim=8, num_heads=2, pos_dim=4).eval()
    encoding = RelPositionalEncoding(12, dropout=0.0)
    x = torch.randn(7, 2, 12)
    lengths = torch.tensor([7, 7])
    chunked_mask = attention_mask(lengths, torch.zeros(2, dtype=torch.int64), 0, 7, chunk_size=4, num_left_chunks=-1)
    empty_key, empty_val = torch.zeros(0, 2, 8), torch.zeros(0, 2, 4)
    expected, _, _, _ = attention(x, encoding(0, 7), attention_bias(chunked_mask, x.dtype), empty_key, empty_val)

    no_history = torch.zeros(2, dtype=torch.int64)
    first_mask = attention_mask(torch.tensor([4, 4]), no_history, 4, 4, -1, -1)
    first_bias = attention_bias(first_mask, x.dtype)
    first, _, key, val = attention(x[:4], encoding(4, 4), first_bias, torch.zeros(4, 2, 8), torch.zeros(4, 2, 4))
    torch.testing.assert_close(first, expected[:4])
    second_mask = attention_mask(torch.tensor([3, 3]), torch.tensor([4, 4]), 4, 3, -1, -1)
    second, weights, _, _ = attention(x[4:], encoding(4, 3), attention_bias(second_mask, x.dtype), key, val)
    torch.testing.assert_close(second, expected[4:])
    assert weights.shape == (2 * 2, 3, 7)


def test_bias_hides_masked_keys_and_keeps_fully_masked_rows_finite() -> None:
    mask = torch.tensor([[[True, False, True], [True, True, True]]])
    bias = attention_bias(mask, torch.float32)
    assert bias.shape == (1, 1, 2, 3)
    assert bias[0, 0, 0].tolist() == [float("-inf"), 0.0, float("-inf")]
    assert bias[0, 0, 1].tolist() == [0.0, 0.0, 0.0]

    attention = RelPositionMultiheadAttention(embed_dim=12, attention_dim=8, num_heads=2, pos_dim=4).eval()
    out, weights, _, _ = attention(torch.randn(2, 1, 12), torch.randn(4, 12), bias, torch.zeros(1, 1, 8), torch.zeros(1, 1, 4))
    assert weights[:, 0].tolist() == [[0.0, 1.0, 0.0]] * 2
    assert torch.isfinite(out).all()
