"""Tiny model configs and a weight randomizer shared by the model tests."""

from __future__ import annotations

import math

import torch
from torch import nn

from icefall_lite.model.config import TransducerConfig, ZipformerConfig

TINY_ENCODER = ZipformerConfig(
    num_encoder_layers=(1, 2, 1, 1, 2),
    feedforward_dims=(48, 48, 64, 64, 48),
    nhead=(2, 2, 2, 2, 2),
    encoder_dims=(32, 32, 32, 32, 32),
    attention_dims=(16, 16, 16, 16, 16),
    encoder_unmasked_dims=(24, 24, 24, 24, 24),
    cnn_module_kernels=(5, 7, 5, 3, 9),
    num_left_chunks=2,
    decode_chunk_size=8,
)
TINY_TRANSDUCER = TransducerConfig(vocab_size=20, decoder_dim=16, joiner_dim=24, encoder=TINY_ENCODER)


def randomize_(model: nn.Module) -> nn.Module:
    """Give every parameter values of order one per layer, so that attention, pooling, convolution and the
    combiners all matter (the real init makes several of them nearly silent)."""
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim >= 2:
                parameter.normal_(0.0, 1.0 / math.sqrt(parameter[0].numel()))
            elif parameter.ndim == 1:
                parameter.normal_(0.0, 0.3)
            else:
                parameter.uniform_(0.2, 0.8)
    return model
