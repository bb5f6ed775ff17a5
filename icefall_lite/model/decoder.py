"""Stateless prediction network: embedding of the last ``context_size`` tokens, mixed by a grouped conv."""

import torch
from torch import Tensor, nn


class Decoder(nn.Module):
    """Embedding -> (context_size > 1) grouped Conv1d over the last ``context_size`` tokens -> ReLU.

    Negative token ids embed to the zero vector, so a decoding context ``[-1] * (context_size - 1) + [blank]``
    reproduces the zero left-padding seen in training.
    """

    def __init__(self, vocab_size: int, decoder_dim: int, blank_id: int, context_size: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.blank_id = blank_id
        self.context_size = context_size
        self.embedding = nn.Embedding(vocab_size, decoder_dim)
        self.conv = None
        if context_size > 1:
            self.conv = nn.Conv1d(decoder_dim, decoder_dim, kernel_size=context_size, groups=decoder_dim // 4, bias=False)

    def forward(self, y: Tensor, need_pad: bool = True) -> Tensor:
        """
        Args:
          y: (N, U) int64 token ids (< 0 for "no token").
          need_pad: True in training (left-pad with ``context_size - 1`` zero frames, one output per token);
            False in decoding, where U must equal ``context_size`` and one output comes back.
        Returns:
          (N, U, decoder_dim) float if need_pad, else (N, 1, decoder_dim).
        """
        if y.ndim != 2 or (not need_pad and y.size(1) != self.context_size):
            expected = "(N, U)" if need_pad else f"(N, {self.context_size})"
            raise ValueError(f"y must have shape {expected} (need_pad={need_pad}), got {list(y.shape)}")
        y = y.to(torch.int64)
        embedded = self.embedding(y.clamp(min=0)) * (y >= 0).unsqueeze(-1).to(self.embedding.weight.dtype)
        if self.conv is not None:
            embedded = embedded.permute(0, 2, 1)
            if need_pad:
                embedded = nn.functional.pad(embedded, (self.context_size - 1, 0))
            embedded = self.conv(embedded).permute(0, 2, 1)
        return torch.relu(embedded)
