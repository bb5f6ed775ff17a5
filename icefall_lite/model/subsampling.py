"""The encoder's front end: fbank frames at 100 Hz -> ``out_channels``-dim frames at 50 Hz."""

from typing import Tuple

import torch
from torch import Tensor, nn

from icefall_lite.model.grad_regularizers import ActivationBalancer
from icefall_lite.model.scaling import DoubleSwish, ScaledLinear

# Input frames consumed by the time receptive field (3 + 3 stride-2 + 3 kernels): T -> (T - 7) // 2.
SUBSAMPLING_CONTEXT = 7


def subsampled_lengths(x_lens: Tensor) -> Tensor:
    """x_lens: (N,) int64 input frames -> (N,) int64 output frames ``(x_lens - 7) // 2``."""
    return torch.div(x_lens - 7, 2, rounding_mode="floor")


def _conv_block(in_channels: int, out_channels: int, stride: Tuple[int, int], padding: Tuple[int, int]) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=padding),
        ActivationBalancer(out_channels, channel_dim=1),
        DoubleSwish(),
    )


class Conv2dSubsampling(nn.Module):
    """Three 3x3 convolutions (time padding none, so each output frame sees 7 input frames and only them),
    then a linear projection of the flattened (channels x frequency) map and dropout.

    Time: T -> T - 2 -> (T - 3) // 2 -> (T - 7) // 2. Frequency: F -> F -> (F - 1) // 2 -> ((F - 1) // 2 - 1) // 2.
    """

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.1, channels: Tuple[int, int, int] = (8, 32, 128)) -> None:
        super().__init__()
        if in_channels < SUBSAMPLING_CONTEXT:
            raise ValueError(f"Conv2dSubsampling needs at least {SUBSAMPLING_CONTEXT} feature bins, got {in_channels}")
        self.in_channels = in_channels
        self.context = SUBSAMPLING_CONTEXT
        self.conv = nn.Sequential(
            _conv_block(1, channels[0], stride=(1, 1), padding=(0, 1)),
            _conv_block(channels[0], channels[1], stride=(2, 2), padding=(0, 0)),
            _conv_block(channels[1], channels[2], stride=(1, 2), padding=(0, 0)),
        )
        out_height = ((in_channels - 1) // 2 - 1) // 2
        self.out = ScaledLinear(channels[2] * out_height, out_channels)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, x_lens: Tensor) -> Tuple[Tensor, Tensor]:
        """
        Args:
          x: (N, T, in_channels) float fbank features, T >= 7.
          x_lens: (N,) int64 number of valid frames of each utterance.
        Returns:
          (N, (T - 7) // 2, out_channels) float and (N,) int64 valid output frames ``(x_lens - 7) // 2``.
        """
        if x.ndim != 3 or x.size(2) != self.in_channels or x.size(1) < self.context:
            raise ValueError(f"x must have shape (N, T >= {self.context}, {self.in_channels}), got {list(x.shape)}")
        if x_lens.shape != (x.size(0),) or int(x_lens.min()) < self.context or int(x_lens.max()) > x.size(1):
            raise ValueError(
                f"x_lens must have shape [{x.size(0)}] with values in [{self.context}, {x.size(1)}] "
                f"(x has shape {list(x.shape)}), got shape {list(x_lens.shape)}, "
                f"min {int(x_lens.min())}, max {int(x_lens.max())}"
            )
        x = self.conv(x.unsqueeze(1))
        n, c, t, f = x.shape
        x = self.out(x.transpose(1, 2).reshape(n, t, c * f))
        return self.dropout(x), subsampled_lengths(x_lens)
