"""Joiner: combines encoder and decoder frames into logits over the vocabulary."""

import torch
from torch import Tensor, nn


class Joiner(nn.Module):
    """``output_linear(tanh(encoder_proj(e) + decoder_proj(d)))``."""

    def __init__(self, encoder_dim: int, decoder_dim: int, joiner_dim: int, vocab_size: int) -> None:
        super().__init__()
        self.encoder_proj = nn.Linear(encoder_dim, joiner_dim)
        self.decoder_proj = nn.Linear(decoder_dim, joiner_dim)
        self.output_linear = nn.Linear(joiner_dim, vocab_size)

    def forward(self, encoder_out: Tensor, decoder_out: Tensor, project_input: bool = True) -> Tensor:
        """
        Args:
          encoder_out: (..., encoder_dim) float, or (..., joiner_dim) already projected if not project_input.
          decoder_out: (..., decoder_dim) float, or (..., joiner_dim) already projected; broadcasts with
            encoder_out (e.g. (N, T, R, joiner_dim) both, after pruning).
          project_input: False when both inputs already went through ``encoder_proj``/``decoder_proj``.
        Returns:
          (..., vocab_size) float logits.
        """
        if encoder_out.ndim != decoder_out.ndim:
            raise ValueError(
                f"encoder_out and decoder_out must have the same number of dims, "
                f"got {list(encoder_out.shape)} and {list(decoder_out.shape)}"
            )
        if project_input:
            encoder_out, decoder_out = self.encoder_proj(encoder_out), self.decoder_proj(decoder_out)
        return self.logits_of_sum(encoder_out + decoder_out)

    def logits_of_sum(self, projected_sum: Tensor) -> Tensor:
        """(..., joiner_dim) float, encoder_proj(e) + decoder_proj(d) (e.g. packed by `pack_pairs`) ->
        (..., vocab_size) float logits."""
        return self.output_linear(torch.tanh(projected_sum))
