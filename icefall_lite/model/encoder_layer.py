"""One Zipformer layer and its sub-modules: feed-forward, causal pooling, causal convolution.

Every module with memory of the past takes its cache and returns the updated one, so the whole-utterance
forward (empty attention caches, zero convolution and pooling state) and chunk-by-chunk streaming run
the same code.
"""

import random
from dataclasses import dataclass
from typing import List, NamedTuple, Optional, Tuple

import torch
from torch import Tensor, nn

from icefall_lite.model.attention import RelPositionMultiheadAttention
from icefall_lite.model.grad_regularizers import ActivationBalancer, Whiten
from icefall_lite.model.scaling import BasicNorm, DoubleSwish, ScaledLinear, double_swish_nchwc, exporting_nchwc_onnx, pointwise_conv
from icefall_lite.model.warmup import ICEFALL_WARMUP_BATCHES, linear_warmup

# Dynamic dropout of the pooling, attention and convolution modules: 0.2 -> 0.0 over the first half of the
# model's warm-up (2000 batches with icefall's 4000).
DYNAMIC_DROPOUT = (0.2, 0.0)
DYNAMIC_DROPOUT_WARMUP_FRACTION = 0.5
# Lower clamp of the learned bypass scale: 0.75 -> 0.25 over 5 warm-ups (20000 batches with icefall's 4000),
# upper clamp 1.0; the clamp is skipped w.p. 0.1.
BYPASS_CLAMP_MIN = (0.75, 0.25)
BYPASS_CLAMP_WARMUP_FACTOR = 5.0


@dataclass(frozen=True)
class LayerDims:
    """Dimensions of one Zipformer layer (all layers of a stack share them)."""

    embed_dim: int
    attention_dim: int
    num_heads: int
    feedforward_dim: int
    kernel_size: int
    pos_dim: int
    dropout: float


class LayerCache(NamedTuple):
    """What one layer remembers between chunks (batch N, channels C, S cached attention frames).

    len: (N,) int64 frames seen; avg: (N, C) their running mean (pooling); key: (S, N, A) attention keys;
    val, val2: (S, N, A / 2) values of ``forward`` and ``forward2``; conv1, conv2: (N, C, kernel - 1) last
    inputs of the two depthwise convolutions.
    """

    len: Tensor
    avg: Tensor
    key: Tensor
    val: Tensor
    val2: Tensor
    conv1: Tensor
    conv2: Tensor


class FeedforwardModule(nn.Module):
    """Linear -> ActivationBalancer -> DoubleSwish -> Dropout -> Linear (initial scale 0.01)."""

    def __init__(self, embed_dim: int, feedforward_dim: int, dropout: float) -> None:
        super().__init__()
        self.in_proj = nn.Linear(embed_dim, feedforward_dim)
        self.balancer = ActivationBalancer(feedforward_dim, channel_dim=-1, max_abs=10.0, min_prob=0.25)
        self.activation = DoubleSwish()
        self.dropout = nn.Dropout(dropout)
        self.out_proj = ScaledLinear(feedforward_dim, embed_dim, initial_scale=0.01)

    def forward(self, x: Tensor) -> Tensor:
        """x: (T, N, C) -> (T, N, C)."""
        if exporting_nchwc_onnx():
            return self._onnx_forward(x)
        return self.out_proj(self.dropout(self.activation(self.balancer(self.in_proj(x)))))

    @torch.jit.unused
    def _onnx_forward(self, x: Tensor) -> Tensor:
        """The eval-mode function over (N, C, 1, T), in onnxruntime's NCHWc kernels from end to end (see
        ``pointwise_conv`` and ``double_swish_nchwc``): x (T, N, C) -> (T, N, C)."""
        hidden = pointwise_conv(x.permute(1, 2, 0).unsqueeze(2), self.in_proj)
        return pointwise_conv(double_swish_nchwc(hidden, self.in_proj.out_features), self.out_proj).squeeze(2).permute(2, 0, 1)


class PoolingModule(nn.Module):
    """Causal cumulative mean over all frames seen so far, then a linear projection (no bias)."""

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.proj = ScaledLinear(embed_dim, embed_dim, bias=False, initial_scale=0.1)

    def forward(self, x: Tensor, pad_mask: Tensor, cached_len: Tensor, cached_avg: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """
        Args:
          x: (T, N, C) float; pad_mask: (N, T) bool, True at padding frames (left out of the mean).
          cached_len: (N,) int64 frames seen before x; cached_avg: (N, C) their mean.
        Returns:
          (T, N, C) projected running means, the new cached_len (N,) and cached_avg (N, C).
        """
        valid = (~pad_mask).t().unsqueeze(-1).to(x.dtype)
        count = valid.cumsum(dim=0) + cached_len.unsqueeze(-1).to(x.dtype)
        total = (x * valid).cumsum(dim=0) + cached_avg * cached_len.unsqueeze(-1).to(x.dtype)
        mean = total / count.clamp(min=1.0)
        new_len = cached_len + (~pad_mask).sum(dim=1)
        return self.proj(mean), new_len, mean[-1]


class ConvolutionModule(nn.Module):
    """Causal convolution block: pointwise (C -> 2C) -> GLU -> depthwise conv over time (left context
    ``kernel_size - 1`` frames from the cache) -> DoubleSwish -> pointwise (C -> C, initial scale 0.05).

    The pointwise convolutions are written as linear layers over channels.
    """

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.pointwise_conv1 = nn.Linear(channels, 2 * channels)
        self.balancer1 = ActivationBalancer(2 * channels, channel_dim=-1, max_abs=10.0, min_positive=0.05, max_positive=1.0)
        self.depthwise_conv = nn.Conv1d(channels, channels, kernel_size, groups=channels)
        self.balancer2 = ActivationBalancer(channels, channel_dim=1, min_positive=0.05, max_positive=1.0, max_abs=20.0)
        self.activation = DoubleSwish()
        self.pointwise_conv2 = ScaledLinear(channels, channels, initial_scale=0.05)

    def forward(self, x: Tensor, pad_mask: Tensor, cache: Tensor) -> Tuple[Tensor, Tensor]:
        """
        Args:
          x: (T, N, C) float; pad_mask: (N, T) bool, True at padding (zeroed before the depthwise conv).
          cache: (N, C, kernel_size - 1) the depthwise conv's previous inputs (zeros at utterance start).
        Returns:
          (T, N, C) output and the new cache (N, C, kernel_size - 1).
        """
        if exporting_nchwc_onnx():
            return self._onnx_forward(x, pad_mask, cache)
        x = nn.functional.glu(self.balancer1(self.pointwise_conv1(x)), dim=-1)
        x = x.masked_fill(pad_mask.t().unsqueeze(-1), 0.0)
        x, new_cache = self._causal_depthwise(x.permute(1, 2, 0), cache)
        x = self.activation(self.balancer2(x.squeeze(2)))
        return self.pointwise_conv2(x.permute(2, 0, 1)), new_cache

    @torch.jit.unused
    def _onnx_forward(self, x: Tensor, pad_mask: Tensor, cache: Tensor) -> Tuple[Tensor, Tensor]:
        """``forward`` in eval mode, over (N, C, 1, T) in onnxruntime's NCHWc kernels (see ``pointwise_conv``)."""
        x = nn.functional.glu(pointwise_conv(x.permute(1, 2, 0).unsqueeze(2), self.pointwise_conv1), dim=1)
        x = x.squeeze(2).masked_fill(pad_mask.unsqueeze(1), 0.0)
        x, new_cache = self._causal_depthwise(x, cache)
        x = pointwise_conv(double_swish_nchwc(x, self.depthwise_conv.out_channels), self.pointwise_conv2)
        return x.squeeze(2).permute(2, 0, 1), new_cache

    def _causal_depthwise(self, x: Tensor, cache: Tensor) -> Tuple[Tensor, Tensor]:
        """x (N, C, T) after cache (N, C, kernel_size - 1) -> ``depthwise_conv`` output (N, C, 1, T) and the new
        cache (the last kernel_size - 1 inputs).

        The convolution runs as a 2-D one of height 1, which onnxruntime runs about 6x faster than a 1-D one
        (11 against 67 us for 384 channels, kernel 31, 16 frames); PyTorch runs both as the same 2-D convolution.
        """
        x = torch.cat([cache, x], dim=2)
        new_cache = x[:, :, x.size(2) - cache.size(2) :]
        conv = self.depthwise_conv
        return nn.functional.conv2d(x.unsqueeze(2), conv.weight.unsqueeze(2), conv.bias, groups=conv.groups), new_cache


class ZipformerEncoderLayer(nn.Module):
    """FF1, pooling, attention, conv1, FF2, attention.forward2 (same weights), conv2, FF3, then BasicNorm and a
    learned bypass ``src_orig + bypass_scale * (src - src_orig)``.

    In training the pooling, attention and convolution modules are each skipped with the dynamic dropout
    probability and the bypass scale is clamped, on schedules proportional to ``warmup_batches`` (see the
    ``DYNAMIC_DROPOUT*`` and ``BYPASS_CLAMP*`` constants); ``batch_count`` is set by ``set_batch_count``.
    """

    def __init__(self, dims: LayerDims, warmup_batches: float = ICEFALL_WARMUP_BATCHES) -> None:
        super().__init__()
        d = dims.embed_dim
        self.batch_count = 0.0
        self.warmup_batches = warmup_batches
        self.feed_forward1 = FeedforwardModule(d, dims.feedforward_dim, dims.dropout)
        self.pooling = PoolingModule(d)
        self.self_attn = RelPositionMultiheadAttention(d, dims.attention_dim, dims.num_heads, dims.pos_dim)
        self.conv_module1 = ConvolutionModule(d, dims.kernel_size)
        self.feed_forward2 = FeedforwardModule(d, dims.feedforward_dim, dims.dropout)
        self.conv_module2 = ConvolutionModule(d, dims.kernel_size)
        self.feed_forward3 = FeedforwardModule(d, dims.feedforward_dim, dims.dropout)
        self.balancer = ActivationBalancer(d, channel_dim=-1, min_positive=0.45, max_positive=0.55, max_abs=6.0)
        self.norm_final = BasicNorm(d)
        self.bypass_scale = nn.Parameter(torch.tensor(0.5))
        self.whiten = Whiten(num_groups=1, whitening_limit=5.0, prob=(0.025, 0.25), grad_scale=0.01)

    def forward(self, src: Tensor, pos_emb: Tensor, attn_bias: Tensor, pad_mask: Tensor, cache: LayerCache) -> Tuple[Tensor, LayerCache]:
        """
        Args:
          src: (T, N, C) float; pos_emb: (S + 2T - 1, C) relative-position embeddings;
          attn_bias: (N, 1, T or 1, S + T) float ``attention_bias``; pad_mask: (N, T) bool, True at padding frames;
          cache: the layer's state before src (S cached attention frames).
        Returns:
          (T, N, C) output and the updated cache.
        """
        src_orig = src
        skip = self._modules_to_skip() if self.training else [False, False, False, False]
        new_len, new_avg, new_key, new_val, new_val2 = cache.len, cache.avg, cache.key, cache.val, cache.val2
        new_conv1, new_conv2 = cache.conv1, cache.conv2

        weights: Optional[Tensor] = None
        src = src + self.feed_forward1(src)
        if not skip[0]:
            pooled, new_len, new_avg = self.pooling(src, pad_mask, cache.len, cache.avg)
            src = src + pooled
        if not skip[1]:
            attn_out, weights, new_key, new_val = self.self_attn(src, pos_emb, attn_bias, cache.key, cache.val)
            src = src + attn_out
        if not skip[2]:
            conv_out, new_conv1 = self.conv_module1(src, pad_mask, cache.conv1)
            src = src + conv_out
        src = src + self.feed_forward2(src)
        if weights is not None:
            attn_out, new_val2 = self.self_attn.forward2(src, weights, cache.val2)
            src = src + attn_out
        if not skip[3]:
            conv_out, new_conv2 = self.conv_module2(src, pad_mask, cache.conv2)
            src = src + conv_out
        src = src + self.feed_forward3(src)

        src = self.norm_final(self.balancer(src))
        bypass_scale = self._clamped_bypass_scale() if self.training else self.bypass_scale
        src = self.whiten(src_orig + (src - src_orig) * bypass_scale)
        return src, LayerCache(new_len, new_avg, new_key, new_val, new_val2, new_conv1, new_conv2)

    @torch.jit.unused
    def _modules_to_skip(self) -> List[bool]:
        """Dynamic dropout draws for (pooling, attention, conv1, conv2)."""
        end = DYNAMIC_DROPOUT_WARMUP_FRACTION * self.warmup_batches
        prob = linear_warmup(self.batch_count, 0.0, end, *DYNAMIC_DROPOUT)
        return [random.random() < prob for _ in range(4)]

    @torch.jit.unused
    def _clamped_bypass_scale(self) -> Tensor:
        if random.random() < 0.1:
            return self.bypass_scale
        end = BYPASS_CLAMP_WARMUP_FACTOR * self.warmup_batches
        return self.bypass_scale.clamp(min=linear_warmup(self.batch_count, 0.0, end, *BYPASS_CLAMP_MIN), max=1.0)
