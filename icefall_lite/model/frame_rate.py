"""Changing the frame rate between Zipformer stacks, and combining two streams of frames.

Downsampling groups frames ``[j * ds, (j + 1) * ds)``; when a chunk's length is a multiple of ``ds``, the groups
of a streamed chunk are exactly those of the whole utterance.
"""

import random
from typing import Tuple

import torch
from torch import Tensor, nn

from icefall_lite.model.grad_regularizers import penalize_abs_values_gt


def downsampled_lengths(lengths: Tensor, factor: int) -> Tensor:
    """(N,) int64 frames -> (N,) int64 groups of ``factor`` frames holding at least one valid frame.

    Lengths are >= 0, so truncating division is the floor (and one ONNX Div, where floor is ten nodes)."""
    return torch.div(lengths + factor - 1, factor, rounding_mode="trunc")


class AttentionDownsample(nn.Module):
    """Each output frame is a softmax-weighted average of a group of ``downsample`` input frames, the weights
    coming from a learned query vector. Padding frames get no weight, so the output of a group never
    depends on padding (icefall instead repeats the last frame of the batch tensor). If
    ``out_channels > in_channels`` the extra channels are a linear map of the whole group.
    """

    def __init__(self, in_channels: int, out_channels: int, downsample: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"AttentionDownsample cannot reduce channels: in {in_channels} > out {out_channels}")
        self.downsample = downsample
        self.query = nn.Parameter(torch.randn(in_channels) * in_channels**-0.5)
        self.extra_proj = None
        if out_channels > in_channels:
            self.extra_proj = nn.Linear(in_channels * downsample, out_channels - in_channels, bias=False)

    def forward(self, src: Tensor, lengths: Tensor) -> Tuple[Tensor, Tensor]:
        """
        Args:
          src: (T, N, in_channels) float; lengths: (N,) int64 valid frames (the rest are padding).
        Returns:
          (ceil(T / downsample), N, out_channels) float and the (N,) int64 output lengths.
        """
        num_frames, batch, channels = src.shape
        ds = self.downsample
        num_groups = (num_frames + ds - 1) // ds
        src = nn.functional.pad(src, (0, 0, 0, 0, 0, num_groups * ds - num_frames)).reshape(num_groups, ds, batch, channels)
        frame = torch.arange(num_groups * ds, device=src.device).reshape(num_groups, ds, 1)
        padding = frame >= lengths.unsqueeze(0).unsqueeze(0)
        empty_groups = padding.all(dim=1, keepdim=True)

        scores = torch.matmul(src, self.query.to(src.dtype))
        if self.training:
            scores = self._penalize_large_scores(scores)
        scores = scores.masked_fill(padding & ~empty_groups, float("-inf"))
        weights = scores.softmax(dim=1).masked_fill(empty_groups, 0.0)
        out = (src * weights.unsqueeze(-1)).sum(dim=1)
        if self.extra_proj is not None:
            group = src.masked_fill(padding.unsqueeze(-1), 0.0).permute(0, 2, 1, 3).reshape(num_groups, batch, ds * channels)
            out = torch.cat([out, self.extra_proj(group)], dim=2)
        return out, downsampled_lengths(lengths, ds)

    @torch.jit.unused
    def _penalize_large_scores(self, scores: Tensor) -> Tensor:
        return penalize_abs_values_gt(scores, limit=10.0, penalty=1.0e-4)


class SimpleUpsample(nn.Module):
    """Repeat each frame ``upsample`` times and add a learned bias per position within the repeat."""

    def __init__(self, num_channels: int, upsample: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.randn(upsample, num_channels) * 0.01)

    def forward(self, src: Tensor) -> Tensor:
        """src: (T, N, C) -> (T * upsample, N, C)."""
        num_frames, batch, channels = src.shape
        return (src.unsqueeze(1) + self.bias.unsqueeze(1)).reshape(-1, batch, channels)


class SimpleCombiner(nn.Module):
    """``src1 * w + src2 * (1 - w)`` with a learned scalar w (initially 0, so the output starts as src2).

    src1 is zero-padded or truncated to src2's channels. In training, w.p. 0.25, w is clamped to
    ``[min_weight[0], 1 - min_weight[1]]``.
    """

    def __init__(self, dim1: int, dim2: int, min_weight: Tuple[float, float] = (0.0, 0.25)) -> None:
        super().__init__()
        self.dim1, self.dim2 = dim1, dim2
        self.min_weight = min_weight
        self.weight1 = nn.Parameter(torch.zeros(()))

    def forward(self, src1: Tensor, src2: Tensor) -> Tensor:
        """src1: (T, N, dim1), src2: (T, N, dim2) -> (T, N, dim2)."""
        if src1.size(-1) != self.dim1 or src2.size(-1) != self.dim2 or src1.shape[:-1] != src2.shape[:-1]:
            raise ValueError(
                f"SimpleCombiner expects (T, N, {self.dim1}) and (T, N, {self.dim2}), "
                f"got {list(src1.shape)} and {list(src2.shape)}"
            )
        weight1 = self._random_clamp(self.weight1) if self.training else self.weight1
        if self.dim1 < self.dim2:
            src1 = nn.functional.pad(src1, (0, self.dim2 - self.dim1))
        elif self.dim1 > self.dim2:
            src1 = src1[..., : self.dim2]
        return src1 * weight1 + src2 * (1.0 - weight1)

    @torch.jit.unused
    def _random_clamp(self, weight1: Tensor) -> Tensor:
        if random.random() < 0.25:
            return weight1.clamp(min=self.min_weight[0], max=1.0 - self.min_weight[1])
        return weight1
