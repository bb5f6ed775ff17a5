"""Pooling, convolution and the whole Zipformer layer, with and without caches."""

from __future__ import annotations

import torch

from icefall_lite.model.encoder_layer import ConvolutionModule, LayerCache, LayerDims, PoolingModule, ZipformerEncoderLayer
from icefall_lite.model.attention import RelPositionalEncoding, attention_bias, attention_mask

from .tiny_models import randomize_


def no_padding(batch: int, num_frames: int) -> torch.Tensor:
    return torch.zeros(batch, num_frames, dtype=torch.bool)


def test_pooling_is_cumulative_mean_of_valid_frames_and_continues_from_cache() -> None:
    pooling = PoolingModule(4)
    with torch.no_grad():
        pooling.proj.weight.copy_(torch.eye(4))
    x = torch.randn(6, 1, 4)
    pad_mask = torch.tensor([[False] * 5 + [True]])
    out, new_len, new_avg = pooling(x, pad_mask, torch.zeros(1, dtype=torch.int64), torch.zeros(1, 4))
    valid_sums = torch.cat([x[:5, 0], torch.zeros(1, 4)]).cumsum(0)
    torch.testing.assert_close(out[:, 0], valid_sums / torch.tensor([1, 2, 3, 4, 5, 5.0]).unsqueeze(1))
    assert new_len.tolist() == [5]
    first, len3, avg3 = pooling(x[:3], no_padding(1, 3), torch.zeros(1, dtype=torch.int64), torch.zeros(1, 4))
    second, _, _ = pooling(x[3:5], no_padding(1, 2), len3, avg3)
    torch.testing.assert_close(torch.cat([first, second]), out[:5])


def test_convolution_is_causal_and_chunkable() -> None:
    conv = randomize_(ConvolutionModule(4, kernel_size=5)).eval()
    x = torch.randn(9, 2, 4)
    zeros = torch.zeros(2, 4, 4)
    full, _ = conv(x, no_padding(2, 9), zeros)
    changed_future = x.clone()
    changed_future[6:] += 1.0
    torch.testing.assert_close(conv(changed_future, no_padding(2, 9), zeros)[0][:6], full[:6])
    first, cache = conv(x[:3], no_padding(2, 3), zeros)
    second, _ = conv(x[3:], no_padding(2, 6), cache)
    torch.testing.assert_close(torch.cat([first, second]), full)


def test_layer_output_and_cache_shapes() -> None:
    layer = ZipformerEncoderLayer(LayerDims(8, attention_dim=8, num_heads=2, feedforward_dim=16, kernel_size=3, pos_dim=4, dropout=0.1))
    x = torch.randn(5, 2, 8)
    cache = LayerCache(
        torch.zeros(2, dtype=torch.int64), torch.zeros(2, 8), torch.zeros(3, 2, 8), torch.zeros(3, 2, 4),
        torch.zeros(3, 2, 4), torch.zeros(2, 8, 2), torch.zeros(2, 8, 2),
    )
    lengths = torch.tensor([5, 4])
    bias = attention_bias(attention_mask(lengths, cache.len, 3, 5, -1, -1), x.dtype)
    pos_emb = RelPositionalEncoding(8, 0.0)(3, 5)
    out, new_cache = layer.eval()(x, pos_emb, bias, torch.tensor([[False] * 5, [False] * 4 + [True]]), cache)
    assert out.shape == x.shape
    assert [tuple(t.shape) for t in new_cache] == [tuple(t.shape) for t in cache]
    assert new_cache.len.tolist() == [5, 4]
