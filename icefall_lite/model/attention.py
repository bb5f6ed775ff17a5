"""Relative-position multi-head self-attention with a key/value cache, and the masks it uses.

Queries are the T frames of the current input; keys are ``cache_size`` cached frames followed by the same
T frames (K = cache_size + T). A relative-position table lists every distance a query can be from a key,
largest first: ``T - 1 + cache_size, ..., 0, ..., -(T - 1)`` (R = K + T - 1 rows). The whole-utterance forward
is the case ``cache_size == 0``.
"""

import math
import random
from typing import Tuple

import torch
from torch import Tensor, nn

from icefall_lite.model.grad_regularizers import Whiten, penalize_abs_values_gt
from icefall_lite.model.scaling import ScaledLinear, softmax


def attention_mask(
    lengths: Tensor, cached_len: Tensor, cache_size: int, num_frames: int, chunk_size: int, num_left_chunks: int
) -> Tensor:
    """Which keys each query may not attend to.

    A key is usable when it is a filled cache slot (the last ``cached_len`` of the ``cache_size`` slots) or a
    valid new frame (index < ``lengths``). With ``chunk_size > 0``, frames are also grouped into chunks of
    ``chunk_size`` counted from the first new frame, and a query sees only its own chunk and the
    ``num_left_chunks`` before it (all before it if ``num_left_chunks < 0``).

    Args:
      lengths: (N,) int64 valid new frames per stream.
      cached_len: (N,) int64 frames each stream has seen before (only ``min(cached_len, cache_size)`` are cached).
      cache_size: number of cached key slots.
      num_frames: T, new frames (queries).
      chunk_size: frames per chunk, or <= 0 for no chunking.
      num_left_chunks: left chunks visible, < 0 for all.
    Returns:
      (N, T, K) bool if chunked else (N, 1, K) bool, True = masked, K = cache_size + T.
    """
    device = lengths.device
    slot = torch.arange(cache_size + num_frames, device=device)
    new_frame = slot - cache_size
    filled_cache = (new_frame < 0) & (new_frame >= -cached_len.unsqueeze(1))
    valid_new = (new_frame >= 0) & (new_frame < lengths.unsqueeze(1))
    mask = ~(filled_cache | valid_new).unsqueeze(1)
    if chunk_size <= 0:
        return mask
    query_chunk = torch.arange(num_frames, device=device).div(chunk_size, rounding_mode="floor")
    key_chunk = new_frame.div(chunk_size, rounding_mode="floor")
    chunks_back = query_chunk.unsqueeze(1) - key_chunk.unsqueeze(0)
    outside = chunks_back < 0
    if num_left_chunks >= 0:
        outside = outside | (chunks_back > num_left_chunks)
    return mask | outside.unsqueeze(0)


def attention_bias(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """The additive form of an ``attention_mask``, computed once and added to every layer's scores.

    Masked keys get -inf, except in rows where every key is masked: those rows get 0 everywhere, so their
    softmax stays finite. Only padding queries have such rows (a valid frame always sees itself), and no
    valid frame's output depends on a padding frame's.

    Args:
      mask: (N, T or 1, K) bool, True = masked.
      dtype: float dtype of the scores.
    Returns:
      (N, 1, T or 1, K) bias, broadcasting over the heads of (N, H, T, K) scores.
    """
    hidden = mask & ~mask.all(dim=-1, keepdim=True)
    return torch.zeros(hidden.shape, dtype=dtype, device=mask.device).masked_fill(hidden, float("-inf")).unsqueeze(1)


def rel_shift(pos_scores: Tensor, num_keys: int) -> Tensor:
    """Turn scores against relative positions into scores against keys.

    Args:
      pos_scores: (B, T, R) float, R = num_keys + T - 1; ``pos_scores[b, i, r]`` scores query i against the
        distance in row r of the relative-position table (largest distance first).
      num_keys: K; query i is at key index ``K - T + i``.
    Returns:
      (B, T, K) float view with ``out[b, i, j] = pos_scores[b, i, T - 1 - i + j]``.
    """
    num_queries, num_rel = pos_scores.size(1), pos_scores.size(2)
    if num_queries == 1:
        return pos_scores[..., :num_keys]
    # In the flattened (T * R) row, element (i, T - 1 - i + j) sits at (T - 1) + i * (R - 1) + j.
    flat = pos_scores.reshape(-1, num_queries * num_rel)
    shifted = flat[:, num_queries - 1 : num_queries - 1 + num_queries * (num_rel - 1)]
    return shifted.reshape(-1, num_queries, num_rel - 1)[..., :num_keys]


class RelPositionalEncoding(nn.Module):
    """Transformer-XL sinusoidal embeddings of relative distances (sin on even, cos on odd channels)."""

    def __init__(self, embed_dim: int, dropout: float) -> None:
        super().__init__()
        inverse_frequency = torch.exp(torch.arange(0, embed_dim, 2, dtype=torch.float32) * -(math.log(10000.0) / embed_dim))
        self.register_buffer("inverse_frequency", inverse_frequency, persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, cache_size: int, num_frames: int) -> Tensor:
        """-> (cache_size + 2 * num_frames - 1, embed_dim) float32 embeddings of the distances
        ``num_frames - 1 + cache_size`` down to ``-(num_frames - 1)``."""
        device = self.inverse_frequency.device
        distance = torch.arange(num_frames - 1 + cache_size, -num_frames, -1, device=device, dtype=torch.float32)
        angle = distance.unsqueeze(1) * self.inverse_frequency.float().unsqueeze(0)
        embedding = torch.stack([angle.sin(), angle.cos()], dim=-1).reshape(distance.size(0), -1)
        return self.dropout(embedding)


class RelPositionMultiheadAttention(nn.Module):
    """Multi-head attention whose scores are ``q . k + p . pos`` (p a small per-head position query, pos a
    projection of the relative-position embedding). The weights are returned so ``forward2`` can apply
    them to a second set of values.

    Query/key heads have ``attention_dim / num_heads`` channels, value heads half that; no 1/sqrt(d) factor
    (the in_proj initialisation carries it).
    """

    def __init__(self, embed_dim: int, attention_dim: int, num_heads: int, pos_dim: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.attention_dim = attention_dim
        self.pos_dim = pos_dim
        self.head_dim = attention_dim // num_heads
        value_dim = attention_dim // 2
        self.split_sizes = [attention_dim, attention_dim, value_dim, pos_dim * num_heads]
        self.in_proj = ScaledLinear(embed_dim, sum(self.split_sizes), initial_scale=self.head_dim**-0.25)
        self.whiten_keys = Whiten(num_heads, whitening_limit=2.0, prob=(0.025, 0.25), grad_scale=0.025)
        self.whiten_values = Whiten(num_heads, whitening_limit=2.0, prob=(0.025, 0.25), grad_scale=0.025)
        self.linear_pos = ScaledLinear(embed_dim, num_heads * pos_dim, bias=False, initial_scale=0.05)
        self.out_proj = ScaledLinear(value_dim, embed_dim, initial_scale=0.05)
        self.in_proj2 = nn.Linear(embed_dim, value_dim, bias=False)
        self.out_proj2 = ScaledLinear(value_dim, embed_dim, initial_scale=0.05)

    def forward(
        self, x: Tensor, pos_emb: Tensor, bias: Tensor, cached_key: Tensor, cached_val: Tensor
    ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """
        Args:
          x: (T, N, C) float input frames.
          pos_emb: (K + T - 1, C) float relative-position embeddings (see ``RelPositionalEncoding``).
          bias: (N, 1, T or 1, K) float ``attention_bias``, -inf where a query may not attend to a key.
          cached_key: (S, N, attention_dim) keys of the S cached frames (S may be 0).
          cached_val: (S, N, attention_dim / 2) their values.
        Returns:
          out (T, N, C), weights (N * num_heads, T, K),
          and the new caches: the last S keys (S, N, attention_dim) and values (S, N, attention_dim / 2).
        """
        q, k, v, p = self.in_proj(x).split(self.split_sizes, dim=-1)
        keys = torch.cat([cached_key, self.whiten_keys(k)], dim=0)
        values = torch.cat([cached_val, self.whiten_values(v)], dim=0)
        weights = self._attention_weights(q, keys, p, pos_emb, bias)
        out = self.out_proj(self._weighted_sum(weights, values))
        cache_size = cached_key.size(0)
        return out, weights, keys[keys.size(0) - cache_size :], values[values.size(0) - cache_size :]

    def forward2(self, x: Tensor, weights: Tensor, cached_val2: Tensor) -> Tuple[Tensor, Tensor]:
        """Attend again with ``weights`` from ``forward``, to values from ``in_proj2``.

        Args:
          x: (T, N, C) float; weights: (N * num_heads, T, K); cached_val2: (S, N, attention_dim / 2).
        Returns:
          out (T, N, C) and the new cache: the last S values (S, N, attention_dim / 2).
        """
        values = torch.cat([cached_val2, self.in_proj2(x)], dim=0)
        out = self.out_proj2(self._weighted_sum(weights, values))
        return out, values[values.size(0) - cached_val2.size(0) :]

    def _attention_weights(self, q: Tensor, keys: Tensor, p: Tensor, pos_emb: Tensor, bias: Tensor) -> Tensor:
        """q: (T, N, A), keys: (K, N, A), p: (T, N, H * pos_dim), pos_emb: (K + T - 1, C),
        bias: (N, 1, T or 1, K) -> (N * H, T, K) softmax weights."""
        num_frames, num_keys, heads = q.size(0), keys.size(0), self.num_heads
        q = q.reshape(num_frames, -1, self.head_dim).transpose(0, 1)
        k = keys.reshape(num_keys, -1, self.head_dim).permute(1, 2, 0)
        scores = torch.bmm(q, k)

        p = p.reshape(num_frames, -1, heads, self.pos_dim).permute(1, 2, 0, 3)
        pos = self.linear_pos(pos_emb.to(p.dtype)).reshape(-1, heads, self.pos_dim).permute(1, 2, 0)
        pos_scores = torch.matmul(p, pos).reshape(-1, num_frames, pos.size(2))
        scores = scores + rel_shift(pos_scores, num_keys)
        if self.training:
            scores = self._penalize_large_scores(scores)

        weights = softmax(scores.reshape(-1, heads, num_frames, num_keys) + bias, dim=-1)
        return weights.reshape(-1, num_frames, num_keys)

    def _weighted_sum(self, weights: Tensor, values: Tensor) -> Tensor:
        """weights: (N * H, T, K), values: (K, N, V * H) -> (T, N, V * H)."""
        num_keys, value_dim = values.size(0), values.size(2)
        v = values.reshape(num_keys, -1, value_dim // self.num_heads).transpose(0, 1)
        out = torch.bmm(weights, v)
        return out.transpose(0, 1).reshape(weights.size(1), -1, value_dim)

    @torch.jit.unused
    def _penalize_large_scores(self, scores: Tensor) -> Tensor:
        if random.random() < 0.1:
            return penalize_abs_values_gt(scores, limit=25.0, penalty=1.0e-4)
        return scores
