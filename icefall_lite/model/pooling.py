"""Pooling of encoder frames into one vector per utterance; padded frames get no weight.

- ``mean``: the mean of the valid frames.
- ``self-attention`` (self-attentive pooling, Cai et al. 2018): frame weights ``softmax_t(v . tanh(W h_t + b))``,
  output ``sum_t w_t h_t``.
- ``attentive-statistics`` (Okabe et al. 2018, channel-wise weights as in ECAPA-TDNN): weights
  ``softmax_t(V tanh(W h_t + b))`` per channel, output the weighted mean and standard deviation (2C).

Example::

    >>> pool = make_pooling("attentive-statistics", dim=64)
    >>> pool(torch.randn(3, 50, 64), torch.tensor([50, 20, 7])).shape, pool.out_dim
    (torch.Size([3, 128]), 128)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from icefall_lite.model.zipformer import padding_mask

POOLING_KINDS = ("mean", "self-attention", "attentive-statistics")
STD_FLOOR = 1e-5


def masked_softmax(scores: Tensor, pad_mask: Tensor) -> Tensor:
    """scores: (N, T, K) float, pad_mask: (N, T) bool (True = padding) -> (N, T, K) softmax over T of the valid
    frames, 0 on padding."""
    return torch.softmax(scores.masked_fill(pad_mask.unsqueeze(-1), float("-inf")), dim=1)


class MeanPooling(nn.Module):
    """(N, T, C), (N,) lengths -> (N, C) mean of the valid frames."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.out_dim = dim

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        x = x.masked_fill(padding_mask(lengths, x.size(1)).unsqueeze(-1), 0.0)
        return x.sum(dim=1) / lengths.clamp(min=1).to(x.dtype).unsqueeze(-1)


class SelfAttentionPooling(nn.Module):
    """(N, T, C), (N,) lengths -> (N, C): frames weighted by a learned scalar attention."""

    def __init__(self, dim: int, attention_dim: int = 128) -> None:
        super().__init__()
        self.out_dim = dim
        self.hidden = nn.Linear(dim, attention_dim)
        self.score = nn.Linear(attention_dim, 1, bias=False)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        pad_mask = padding_mask(lengths, x.size(1))
        x = x.masked_fill(pad_mask.unsqueeze(-1), 0.0)  # padding may hold anything; 0 * inf would be nan
        weights = masked_softmax(self.score(torch.tanh(self.hidden(x))), pad_mask)
        return (weights * x).sum(dim=1)


class AttentiveStatisticsPooling(nn.Module):
    """(N, T, C), (N,) lengths -> (N, 2C): attention-weighted mean and standard deviation of each channel."""

    def __init__(self, dim: int, attention_dim: int = 128) -> None:
        super().__init__()
        self.out_dim = 2 * dim
        self.hidden = nn.Linear(dim, attention_dim)
        self.score = nn.Linear(attention_dim, dim)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        pad_mask = padding_mask(lengths, x.size(1))
        x = x.masked_fill(pad_mask.unsqueeze(-1), 0.0)  # padding may hold anything; 0 * inf would be nan
        weights = masked_softmax(self.score(torch.tanh(self.hidden(x))), pad_mask)
        mean = (weights * x).sum(dim=1)
        variance = (weights * x * x).sum(dim=1) - mean * mean
        return torch.cat([mean, variance.clamp(min=STD_FLOOR).sqrt()], dim=1)


def make_pooling(kind: str, dim: int) -> nn.Module:
    """The pooling layer named by --pooling over ``dim``-channel frames; its ``out_dim`` is the output size."""
    if kind == "mean":
        return MeanPooling(dim)
    if kind == "self-attention":
        return SelfAttentionPooling(dim)
    if kind == "attentive-statistics":
        return AttentiveStatisticsPooling(dim)
    raise ValueError(f"--pooling must be one of {POOLING_KINDS}, got {kind!r}")
