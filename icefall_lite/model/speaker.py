"""Speaker embedding model: encoder -> pooling -> embedding layer -> classifier over the training speakers.

The classifier is either a plain linear softmax or the additive-margin softmax (AM-softmax, Wang et al. 2018):
logits ``s * (cos(theta_j) - m [j = y])``, cos(theta_j) the cosine between the embedding and speaker j's weight
vector. Verification uses the embeddings alone (cosine scoring); identification the classifier's top logits.

Example::

    >>> config = SpeakerModelConfig(EncoderConfig(num_layers=1, dim=32, num_heads=2, feedforward_dim=64),
    ...                             num_speakers=10, embedding_dim=16)
    >>> model = SpeakerModel(config)
    >>> model.embed(torch.randn(2, 300, 80), torch.tensor([300, 250])).shape
    torch.Size([2, 16])
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, Tuple

import torch
from torch import Tensor, nn

from icefall_lite.model.conformer import SUBSAMPLING_CONTEXT, EncoderConfig, SpeakerEncoder
from icefall_lite.model.pooling import make_pooling

LOSS_KINDS = ("softmax", "am-softmax")
# Embeddings are taken of at least this many fbank frames: 4x subsampling leaves 3 encoder frames.
MIN_EMBEDDING_FRAMES = SUBSAMPLING_CONTEXT + 8


@dataclass(frozen=True)
class SpeakerModelConfig:
    """Everything that fixes the model's parameters (stored in checkpoints as a dict)."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    pooling: str = "self-attention"
    embedding_dim: int = 192
    num_speakers: int = 2
    loss: str = "am-softmax"
    scale: float = 30.0

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "SpeakerModelConfig":
        return cls(**{**values, "encoder": EncoderConfig(**values["encoder"])})


def am_softmax_logits(embeddings: Tensor, weight: Tensor, targets: Tensor, margin: float, scale: float) -> Tensor:
    """Additive-margin softmax logits.

    Args:
      embeddings: (N, E) float.
      weight: (S, E) float, one row per speaker.
      targets: (N,) int64 speaker index of each embedding, or -1 for none (no margin).
      margin: m, subtracted from the target cosine.
      scale: s.
    Returns:
      (N, S) float ``s * (cos - m * onehot(targets))``, cos[n, j] = cosine(embeddings[n], weight[j]).
    """
    cosine = nn.functional.linear(nn.functional.normalize(embeddings, dim=1), nn.functional.normalize(weight, dim=1))
    is_target = torch.arange(weight.size(0), device=targets.device).unsqueeze(0) == targets.unsqueeze(1)
    return scale * (cosine - margin * is_target.to(cosine.dtype))


class SpeakerClassifier(nn.Module):
    """Logits over the training speakers: ``softmax`` is W e + b, ``am-softmax`` is ``am_softmax_logits``."""

    def __init__(self, embedding_dim: int, num_speakers: int, loss: str, scale: float) -> None:
        super().__init__()
        if loss not in LOSS_KINDS:
            raise ValueError(f"--loss must be one of {LOSS_KINDS}, got {loss!r}")
        self.loss = loss
        self.scale = scale
        self.weight = nn.Parameter(nn.init.xavier_uniform_(torch.empty(num_speakers, embedding_dim)))
        self.bias = nn.Parameter(torch.zeros(num_speakers)) if loss == "softmax" else None

    def forward(self, embeddings: Tensor, targets: Tensor, margin: float = 0.0) -> Tensor:
        """embeddings: (N, E) float, targets: (N,) int64 (or -1) -> (N, S) float logits (the margin only with
        am-softmax, only on the targets)."""
        if self.bias is not None:
            return nn.functional.linear(embeddings, self.weight, self.bias)
        return am_softmax_logits(embeddings, self.weight, targets, margin, self.scale)


class SpeakerModel(nn.Module):
    """Encoder, pooling, embedding layer (Linear + BatchNorm) and classifier."""

    def __init__(self, config: SpeakerModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = SpeakerEncoder(config.encoder)
        self.pooling = make_pooling(config.pooling, config.encoder.dim)
        self.embedding = nn.Sequential(
            nn.Linear(self.pooling.out_dim, config.embedding_dim), nn.BatchNorm1d(config.embedding_dim)
        )
        self.classifier = SpeakerClassifier(config.embedding_dim, config.num_speakers, config.loss, config.scale)

    def embed(self, x: Tensor, x_lens: Tensor) -> Tensor:
        """x: (N, T, 80) float mean-normalized fbank, x_lens: (N,) int64 (each >= MIN_EMBEDDING_FRAMES)
        -> (N, embedding_dim) float embeddings."""
        frames, frame_lens = self.encoder(x, x_lens)
        return self.embedding(self.pooling(frames, frame_lens))

    def forward(self, x: Tensor, x_lens: Tensor, targets: Tensor, margin: float = 0.0) -> Tuple[Tensor, Tensor]:
        """
        Args:
          x: (N, T, 80) float features; x_lens: (N,) int64 valid frames.
          targets: (N,) int64 speaker indices in [0, num_speakers).
          margin: AM-softmax margin for this batch (ignored by the plain softmax).
        Returns:
          the cross-entropy summed over the batch () float, and the number of utterances whose top-1 speaker (by
          the logits without margin) is wrong () int64.
        """
        embeddings = self.embed(x, x_lens)
        logits = self.classifier(embeddings, targets, margin)
        loss = nn.functional.cross_entropy(logits.float(), targets, reduction="sum")
        with torch.no_grad():
            plain = self.classifier(embeddings.detach(), torch.full_like(targets, -1))
            errors = (plain.argmax(dim=1) != targets).sum()
        return loss, errors
