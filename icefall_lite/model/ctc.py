"""The CTC head (icefall's ``ctc_output``): dropout, a linear layer to the vocabulary, log-softmax.

Usage::

    head = CtcHead(encoder_dim=384, vocab_size=500)
    log_probs = head(encoder_out)                                  # (N, T, V)
    loss = ctc_loss(log_probs, encoder_lens, y_padded, y_lens)     # () summed over utterances
"""

import torch
from torch import Tensor, nn


class CtcHead(nn.Module):
    """encoder_out (N, T, encoder_dim) -> log-probabilities (N, T, vocab_size); blank is id 0."""

    def __init__(self, encoder_dim: int, vocab_size: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(encoder_dim, vocab_size)

    def forward(self, encoder_out: Tensor) -> Tensor:
        return self.output(self.dropout(encoder_out)).log_softmax(dim=-1)


def ctc_loss(
    log_probs: Tensor, log_prob_lens: Tensor, targets: Tensor, target_lens: Tensor, blank: int = 0,
    reduction: str = "sum",
) -> Tensor:
    """CTC loss summed over utterances, as icefall computes it (torch's ctc_loss, float32), or per utterance.

    Args:
      log_probs: (N, T, V) float, log-softmax outputs; log_prob_lens: (N,) int64 valid frames.
      targets: (N, S) int64 token ids padded arbitrarily beyond target_lens; target_lens: (N,) int64.
      reduction: "sum" (training) or "none" ((N,) -log p(targets | frames), for rescoring).
    Returns:
      () or (N,) float32; infinite for an utterance with no alignment (more tokens and repeats than frames).
    """
    with torch.autocast(device_type=log_probs.device.type, enabled=False):
        return nn.functional.ctc_loss(
            log_probs.float().transpose(0, 1), targets, log_prob_lens, target_lens, blank=blank, reduction=reduction
        )
