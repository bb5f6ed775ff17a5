"""Conformer and Transformer encoders over fbank frames, for utterance-level tasks (speaker recognition).

Both are a stack of pre-norm layers over 4x-subsampled frames:

- ``ConformerLayer`` (Gulati et al. 2020): half-step macaron feed-forward, relative-position multi-head
  self-attention (Transformer-XL scores with the biases u and v), the convolution module, a second half-step
  feed-forward, a final LayerNorm.
- ``TransformerLayer``: self-attention then feed-forward, with absolute sinusoidal positions added to the input.

Padding never reaches a valid frame: the subsampling convolutions have no time padding (an output frame sees only
its own 7 input frames), attention masks padded keys, and the convolution module zeroes padded frames before its
depthwise convolution. So an utterance gives the same valid outputs alone and in a padded batch.

Example::

    >>> encoder = SpeakerEncoder(EncoderConfig(kind="conformer", num_layers=2, dim=64, num_heads=4))
    >>> out, out_lens = encoder(torch.randn(3, 200, 80), torch.tensor([200, 150, 90]))   # (3, 49, 64), (3,)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Tuple

import torch
from torch import Tensor, nn

from icefall_lite.model.attention import RelPositionalEncoding, attention_bias, rel_shift
from icefall_lite.model.zipformer import padding_mask

ENCODER_KINDS = ("conformer", "transformer")
# Input frames one output frame of the subsampling sees (two 3x3 stride-2 convolutions without time padding).
SUBSAMPLING_CONTEXT = 7


@dataclass(frozen=True)
class EncoderConfig:
    """Dimensions of a ``SpeakerEncoder``."""

    kind: str = "conformer"
    num_features: int = 80
    num_layers: int = 4
    dim: int = 144
    num_heads: int = 4
    feedforward_dim: int = 576
    kernel_size: int = 15
    subsampling_channels: int = 64
    dropout: float = 0.1

    def check(self) -> None:
        """ValueError naming the option when the dimensions do not fit together."""
        if self.kind not in ENCODER_KINDS:
            raise ValueError(f"--encoder must be one of {ENCODER_KINDS}, got {self.kind!r}")
        if self.dim % self.num_heads != 0:
            raise ValueError(f"--encoder-dim ({self.dim}) must be divisible by --num-heads ({self.num_heads})")
        if self.kernel_size % 2 != 1:
            raise ValueError(f"--cnn-module-kernel must be odd, got {self.kernel_size}")
        if self.dim % 2 != 0:
            raise ValueError(f"--encoder-dim must be even (sinusoidal positions), got {self.dim}")


def subsampled_lengths(x_lens: Tensor) -> Tensor:
    """x_lens: (N,) int64 input frames -> (N,) int64 output frames ``((x_lens - 1) // 2 - 1) // 2``."""
    return torch.div(torch.div(x_lens - 1, 2, rounding_mode="floor") - 1, 2, rounding_mode="floor")


class ConvSubsampling(nn.Module):
    """Two 3x3 stride-2 convolutions with ReLU (no time padding), then a linear layer: 100 Hz -> 25 Hz.

    Speaker models need no 50 Hz frame rate, so this is the 4x front end of ESPnet/WeNet's Conformer rather than
    the Zipformer's 2x ``Conv2dSubsampling``.
    """

    def __init__(self, num_features: int, channels: int, out_dim: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, channels, kernel_size=3, stride=2, padding=(0, 1)), nn.ReLU(),
            nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=(0, 1)), nn.ReLU(),
        )
        out_freq = ((num_features - 1) // 2 + 1 - 1) // 2 + 1
        self.out = nn.Linear(channels * out_freq, out_dim)

    def forward(self, x: Tensor, x_lens: Tensor) -> Tuple[Tensor, Tensor]:
        """x: (N, T, F) float, T >= 7; x_lens: (N,) int64 -> (N, T', out_dim) float and (N,) int64 lengths T'."""
        x = self.conv(x.unsqueeze(1))
        n, c, t, f = x.shape
        return self.out(x.transpose(1, 2).reshape(n, t, c * f)), subsampled_lengths(x_lens)


class FeedForward(nn.Module):
    """LayerNorm -> Linear -> Swish -> dropout -> Linear -> dropout, on (N, T, C) frames."""

    def __init__(self, dim: int, hidden_dim: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, hidden_dim), nn.SiLU(), nn.Dropout(dropout),
            nn.Linear(hidden_dim, dim), nn.Dropout(dropout),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class SelfAttention(nn.Module):
    """Multi-head self-attention; with ``relative=True`` Transformer-XL's relative-position scores.

    Scores of query i and key j: ``(q_i + u) . k_j + (q_i + v) . W_pos pos(i - j)``, scaled by 1/sqrt(d) (Dai et
    al. 2019, as in the Conformer). Without ``relative`` the plain ``q_i . k_j / sqrt(d)``.
    """

    def __init__(self, dim: int, num_heads: int, dropout: float, relative: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.relative = relative
        self.norm = nn.LayerNorm(dim)
        self.in_proj = nn.Linear(dim, 3 * dim)
        self.out_proj = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)
        if relative:
            self.linear_pos = nn.Linear(dim, dim, bias=False)
            self.pos_bias_u = nn.Parameter(torch.zeros(num_heads, self.head_dim))
            self.pos_bias_v = nn.Parameter(torch.zeros(num_heads, self.head_dim))

    def forward(self, x: Tensor, pos_emb: Tensor, bias: Tensor) -> Tensor:
        """
        Args:
          x: (N, T, C) float frames.
          pos_emb: (2T - 1, C) float embeddings of the distances T - 1 ... -(T - 1) (ignored unless relative).
          bias: (N, 1, 1, T) float, -inf on padded keys (``attention_bias``).
        Returns:
          (N, T, C) float, the attention output (not yet added to the residual).
        """
        n, t, c = x.shape
        q, k, v = self.in_proj(self.norm(x)).reshape(n, t, 3, self.num_heads, self.head_dim).unbind(2)
        k = k.transpose(1, 2)  # (N, H, T, D)
        v = v.transpose(1, 2)
        if self.relative:
            scores = torch.matmul((q + self.pos_bias_u).transpose(1, 2), k.transpose(2, 3))
            pos = self.linear_pos(pos_emb).reshape(-1, self.num_heads, self.head_dim).permute(1, 2, 0)  # (H, D, R)
            pos_scores = torch.matmul((q + self.pos_bias_v).transpose(1, 2), pos)  # (N, H, T, 2T - 1)
            scores = scores + rel_shift(pos_scores.reshape(n * self.num_heads, t, -1), t).reshape(n, -1, t, t)
        else:
            scores = torch.matmul(q.transpose(1, 2), k.transpose(2, 3))
        weights = torch.softmax(scores / math.sqrt(self.head_dim) + bias, dim=-1)
        out = torch.matmul(self.dropout(weights), v).transpose(1, 2).reshape(n, t, c)
        return self.dropout(self.out_proj(out))


class ConvolutionModule(nn.Module):
    """LayerNorm -> pointwise conv + GLU -> depthwise conv -> LayerNorm -> Swish -> pointwise conv -> dropout.

    LayerNorm instead of the paper's BatchNorm after the depthwise convolution (WeNet's option): BatchNorm's
    training statistics would mix the padding of a batch into every utterance.
    """

    def __init__(self, dim: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.pointwise_in = nn.Linear(dim, 2 * dim)
        self.depthwise = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.depthwise_norm = nn.LayerNorm(dim)
        self.pointwise_out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, pad_mask: Tensor) -> Tensor:
        """x: (N, T, C) float, pad_mask: (N, T) bool (True = padding) -> (N, T, C) float."""
        x = nn.functional.glu(self.pointwise_in(self.norm(x)), dim=-1)
        x = x.masked_fill(pad_mask.unsqueeze(-1), 0.0)
        x = self.depthwise(x.transpose(1, 2)).transpose(1, 2)
        x = nn.functional.silu(self.depthwise_norm(x))
        return self.dropout(self.pointwise_out(x))


class ConformerLayer(nn.Module):
    """x + FF/2, + relative MHSA, + conv module, + FF/2, then LayerNorm: (N, T, C) -> (N, T, C)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.ff1 = FeedForward(config.dim, config.feedforward_dim, config.dropout)
        self.attention = SelfAttention(config.dim, config.num_heads, config.dropout, relative=True)
        self.conv = ConvolutionModule(config.dim, config.kernel_size, config.dropout)
        self.ff2 = FeedForward(config.dim, config.feedforward_dim, config.dropout)
        self.norm = nn.LayerNorm(config.dim)

    def forward(self, x: Tensor, pos_emb: Tensor, bias: Tensor, pad_mask: Tensor) -> Tensor:
        x = x + 0.5 * self.ff1(x)
        x = x + self.attention(x, pos_emb, bias)
        x = x + self.conv(x, pad_mask)
        x = x + 0.5 * self.ff2(x)
        return self.norm(x)


class TransformerLayer(nn.Module):
    """x + MHSA, + FF, then LayerNorm (pre-norm): (N, T, C) -> (N, T, C)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.attention = SelfAttention(config.dim, config.num_heads, config.dropout, relative=False)
        self.ff = FeedForward(config.dim, config.feedforward_dim, config.dropout)
        self.norm = nn.LayerNorm(config.dim)

    def forward(self, x: Tensor, pos_emb: Tensor, bias: Tensor, pad_mask: Tensor) -> Tensor:
        x = x + self.attention(x, pos_emb, bias)
        return self.norm(x + self.ff(x))


def absolute_positions(num_frames: int, dim: int, device: torch.device) -> Tensor:
    """(num_frames, dim) float sinusoidal embeddings of the positions 0 .. num_frames - 1 (Vaswani et al.)."""
    position = torch.arange(num_frames, device=device, dtype=torch.float32).unsqueeze(1)
    inverse_frequency = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * -(math.log(10000.0) / dim))
    angle = position * inverse_frequency
    return torch.stack([angle.sin(), angle.cos()], dim=-1).reshape(num_frames, dim)


class SpeakerEncoder(nn.Module):
    """Subsampling, then ``num_layers`` Conformer or Transformer layers."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        config.check()
        self.config = config
        self.subsampling = ConvSubsampling(config.num_features, config.subsampling_channels, config.dim)
        self.relative = config.kind == "conformer"
        self.rel_pos = RelPositionalEncoding(config.dim, dropout=0.0)
        layer = ConformerLayer if self.relative else TransformerLayer
        self.layers = nn.ModuleList([layer(config) for _ in range(config.num_layers)])
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, x_lens: Tensor) -> Tuple[Tensor, Tensor]:
        """
        Args:
          x: (N, T, num_features) float features, T >= 7.
          x_lens: (N,) int64 valid frames of each utterance, each >= 7.
        Returns:
          (N, T', dim) float encoder frames (those at or after ``out_lens`` are padding) and (N,) int64 out_lens,
          T' = ((T - 1) // 2 - 1) // 2.
        """
        if x.ndim != 3 or x.size(2) != self.config.num_features:
            raise ValueError(f"x must have shape (N, T, {self.config.num_features}), got {list(x.shape)}")
        x, out_lens = self.subsampling(x, x_lens)
        num_frames = x.size(1)
        if self.relative:
            pos_emb = self.rel_pos(0, num_frames)
        else:
            pos_emb = x.new_zeros(0, x.size(2))
            x = x + absolute_positions(num_frames, x.size(2), x.device)
        pad_mask = padding_mask(out_lens, num_frames)
        bias = attention_bias(pad_mask.unsqueeze(1), x.dtype)
        x = self.dropout(x)
        for layer in self.layers:
            x = layer(x, pos_emb, bias, pad_mask)
        return x, out_lens
