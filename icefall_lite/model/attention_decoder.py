"""The attention decoder (icefall's zipformer ``attention_decoder``, WeNet's transformer decoder).

Token embedding + sinusoidal positions, then pre-norm layers of causal self-attention, cross-attention to the
encoder output and a feed-forward module, a final norm and a linear layer to the vocabulary. `<sos/eos>` (id 1)
starts the input and ends the target of every sequence. WeNet U2++'s right-to-left decoder is a second instance
of the same module trained on reversed token sequences (`reverse_tokens`).

Usage::

    decoder = AttentionDecoder(vocab_size=500, memory_dim=384, config=AttentionDecoderConfig())
    loss = decoder.loss(encoder_out, encoder_lens, [[5, 7, 9], [3]])                # () summed label-smoothed CE
    log_probs = decoder.sequence_log_probs(encoder_out, encoder_lens, hypotheses)   # (N,) for rescoring
"""

from __future__ import annotations

import math
from typing import List, Tuple

import torch
from torch import Tensor, nn

from icefall_lite.model.config import AttentionDecoderConfig

SOS_EOS_ID = 1
IGNORE_ID = -1


def reverse_tokens(y: List[List[int]]) -> List[List[int]]:
    """Right-to-left targets: each token sequence reversed."""
    return [list(reversed(tokens)) for tokens in y]


def decoder_input_and_target(
    y: List[List[int]], device: torch.device, sos_eos: int = SOS_EOS_ID, ignore: int = IGNORE_ID
) -> Tuple[Tensor, Tensor]:
    """Token lists -> input [sos] + y (N, L) padded with eos and target y + [eos] (N, L) padded with `ignore`,
    L = longest + 1. (Padding needs no mask in the decoder: it comes after every real token, and causal attention
    keeps it out of their outputs.) TorchScript-compatible: cpu_jit.pt's attention decoders call it."""
    width = 1
    for tokens in y:
        width = max(width, len(tokens) + 1)
    inputs = torch.full((len(y), width), sos_eos, dtype=torch.int64)
    targets = torch.full((len(y), width), ignore, dtype=torch.int64)
    for i, tokens in enumerate(y):
        inputs[i, 1 : len(tokens) + 1] = torch.tensor(tokens, dtype=torch.int64)
        targets[i, : len(tokens) + 1] = torch.tensor(tokens + [sos_eos], dtype=torch.int64)
    return inputs.to(device), targets.to(device)


def sinusoidal_positions(length: int, dim: int, device: torch.device) -> Tensor:
    """(length, dim) float: sin on even, cos on odd dims, wavelengths up to 10000 * 2 pi."""
    position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)[:, : dim // 2]
    return table


class MultiHeadAttention(nn.Module):
    """Queries (N, L, query_dim) attend to keys/values (N, S, key_dim) in `attention_dim` split over heads."""

    def __init__(self, query_dim: int, key_dim: int, attention_dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.query = nn.Linear(query_dim, attention_dim)
        self.key = nn.Linear(key_dim, attention_dim)
        self.value = nn.Linear(key_dim, attention_dim)
        self.output = nn.Linear(attention_dim, query_dim)

    def _split(self, x: Tensor) -> Tensor:
        batch, length, dim = x.shape
        return x.view(batch, length, self.num_heads, dim // self.num_heads).transpose(1, 2)

    def forward(self, queries: Tensor, keys: Tensor, allowed: Tensor) -> Tensor:
        """allowed: (N, 1, L, S) bool (or broadcastable), True where a query may attend to a key.
        Returns (N, L, query_dim)."""
        q, k, v = self._split(self.query(queries)), self._split(self.key(keys)), self._split(self.value(keys))
        dropout = self.dropout if self.training else 0.0
        attended = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout)
        batch, _, length, _ = attended.shape
        return self.output(attended.transpose(1, 2).reshape(batch, length, -1))


class DecoderLayer(nn.Module):
    """Pre-norm: x + self_attn(norm(x)), + cross_attn(norm(x), memory), + feed_forward(norm(x))."""

    def __init__(self, config: AttentionDecoderConfig, memory_dim: int) -> None:
        super().__init__()
        dim = config.dim
        self.self_attn = MultiHeadAttention(dim, dim, config.attention_dim, config.num_heads, config.dropout)
        self.cross_attn = MultiHeadAttention(dim, memory_dim, config.attention_dim, config.num_heads, config.dropout)
        self.feed_forward = nn.Sequential(
            nn.Linear(dim, config.feedforward_dim), nn.SiLU(), nn.Dropout(config.dropout),
            nn.Linear(config.feedforward_dim, dim),
        )
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(3))
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, memory: Tensor, self_allowed: Tensor, memory_allowed: Tensor) -> Tensor:
        """x: (N, L, dim); memory: (N, T, memory_dim); masks as MultiHeadAttention's. Returns (N, L, dim)."""
        normed = self.norms[0](x)
        x = x + self.dropout(self.self_attn(normed, normed, self_allowed))
        x = x + self.dropout(self.cross_attn(self.norms[1](x), memory, memory_allowed))
        return x + self.dropout(self.feed_forward(self.norms[2](x)))


class AttentionDecoder(nn.Module):
    """Predicts each next token from the tokens before it and the whole encoder output."""

    def __init__(self, vocab_size: int, memory_dim: int, config: AttentionDecoderConfig) -> None:
        super().__init__()
        self.config = config
        self.dim = config.dim
        self.embedding = nn.Embedding(vocab_size, config.dim)
        self.layers = nn.ModuleList(DecoderLayer(config, memory_dim) for _ in range(config.num_layers))
        self.final_norm = nn.LayerNorm(config.dim)
        self.output = nn.Linear(config.dim, vocab_size)

    def forward(self, memory: Tensor, memory_lens: Tensor, tokens: Tensor) -> Tensor:
        """
        Args:
          memory: (N, T, memory_dim) float encoder output; memory_lens: (N,) int64 valid frames.
          tokens: (N, L) int64 decoder input ([sos] + tokens), padded at the end.
        Returns:
          (N, L, vocab_size) float logits; row l depends only on tokens[:, : l + 1] and the valid memory.
        """
        length = tokens.shape[1]
        device = tokens.device
        positions = torch.arange(length, device=device)
        causal = positions.view(1, -1) <= positions.view(-1, 1)  # (L, L): query l sees keys <= l
        self_allowed = causal.view(1, 1, length, length)
        frames = torch.arange(memory.shape[1], device=device).view(1, 1, 1, -1)
        memory_allowed = frames < memory_lens.view(-1, 1, 1, 1)
        x = self.embedding(tokens) * math.sqrt(self.dim) + sinusoidal_positions(length, self.dim, device)
        for layer in self.layers:
            x = layer(x, memory, self_allowed, memory_allowed)
        return self.output(self.final_norm(x))

    def loss(self, memory: Tensor, memory_lens: Tensor, y: List[List[int]]) -> Tensor:
        """Label-smoothed cross-entropy of y + [eos] given [sos] + y, summed over tokens and utterances: ()."""
        inputs, targets = decoder_input_and_target(y, memory.device)
        logits = self(memory, memory_lens, inputs)
        with torch.autocast(device_type=memory.device.type, enabled=False):
            return nn.functional.cross_entropy(
                logits.float().flatten(0, 1), targets.flatten(), ignore_index=IGNORE_ID,
                label_smoothing=self.config.label_smoothing, reduction="sum",
            )

    @torch.jit.export
    def sequence_log_probs(self, memory: Tensor, memory_lens: Tensor, y: List[List[int]]) -> Tensor:
        """log p(y + [eos] | memory) per sequence (no label smoothing): (N,) float, for rescoring n-best lists.

        memory: (N, T, memory_dim) and memory_lens (N,) hold one row per hypothesis in y (repeat an utterance's
        encoder output for each of its hypotheses)."""
        inputs, targets = decoder_input_and_target(y, memory.device)
        log_probs = self(memory, memory_lens, inputs).float().log_softmax(dim=-1)
        picked = log_probs.gather(2, targets.clamp(min=0).unsqueeze(2)).squeeze(2)
        return picked.masked_fill(targets < 0, 0.0).sum(dim=1)
