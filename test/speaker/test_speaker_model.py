"""The Conformer / Transformer encoders, pooling layers and the AM-softmax classifier (icefall_lite/model/)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from icefall_lite.model.conformer import EncoderConfig, SpeakerEncoder, subsampled_lengths
from icefall_lite.model.pooling import make_pooling
from icefall_lite.model.speaker import SpeakerModel, SpeakerModelConfig, am_softmax_logits
from icefall_lite.training.speaker_objective import SpeakerLossConfig

TINY_ENCODER = dict(num_layers=2, dim=32, num_heads=2, feedforward_dim=64, kernel_size=5, subsampling_channels=8)
LENGTHS = torch.tensor([120, 73, 40])


def padded_batch(lengths: torch.Tensor = LENGTHS) -> torch.Tensor:
    """(N, max length, 80) features; the padding is garbage (large values) that must not matter."""
    x = torch.randn(len(lengths), int(lengths.max()), 80, generator=torch.Generator().manual_seed(0))
    for i, length in enumerate(lengths.tolist()):
        x[i, length:] = 1e3
    return x


@pytest.mark.parametrize("kind", ["conformer", "transformer"])
def test_encoder_shapes_and_padding_invariance(kind: str) -> None:
    torch.manual_seed(0)
    encoder = SpeakerEncoder(EncoderConfig(kind=kind, **TINY_ENCODER)).eval()
    x = padded_batch()
    out, out_lens = encoder(x, LENGTHS)
    assert out.shape == (3, ((120 - 1) // 2 - 1) // 2, 32)
    assert out_lens.tolist() == [((n - 1) // 2 - 1) // 2 for n in LENGTHS.tolist()] == subsampled_lengths(LENGTHS).tolist()
    for i, length in enumerate(LENGTHS.tolist()):
        alone, alone_lens = encoder(x[i : i + 1, :length], LENGTHS[i : i + 1])
        torch.testing.assert_close(out[i, : int(alone_lens)], alone[0], atol=1e-5, rtol=1e-5)


def test_conformer_and_transformer_layers() -> None:
    """Conformer layers: macaron feed-forward pair, relative-position attention, convolution module; Transformer
    layers: absolute positions, no convolution."""
    encoder = SpeakerEncoder(EncoderConfig(kind="conformer", **TINY_ENCODER))
    layer = encoder.layers[0]
    assert hasattr(layer, "ff1") and hasattr(layer, "ff2") and hasattr(layer, "conv")
    transformer = SpeakerEncoder(EncoderConfig(kind="transformer", **TINY_ENCODER)).layers[0]
    assert layer.attention.relative and not transformer.attention.relative and not hasattr(transformer, "conv")


@pytest.mark.parametrize("kind", ["mean", "self-attention", "attentive-statistics"])
def test_pooling_ignores_padding(kind: str) -> None:
    torch.manual_seed(0)
    pool = make_pooling(kind, 16)
    lengths = torch.tensor([9, 4, 1])
    x = torch.randn(3, 9, 16)
    x[1, 4:] = float("inf")  # padding may hold anything
    x[2, 1:] = float("nan")
    pooled = pool(x, lengths)
    assert pooled.shape == (3, pool.out_dim) and pool.out_dim == (32 if kind == "attentive-statistics" else 16)
    assert torch.isfinite(pooled).all()
    for i, length in enumerate(lengths.tolist()):
        torch.testing.assert_close(pooled[i : i + 1], pool(x[i : i + 1, :length], lengths[i : i + 1]))
    if kind == "mean":
        torch.testing.assert_close(pooled[1], x[1, :4].mean(dim=0))


@pytest.mark.parametrize(
    "kind,pooling,loss", list(itertools.product(["conformer", "transformer"], ["mean", "self-attention", "attentive-statistics"], ["softmax", "am-softmax"]))
)
def test_model_shapes_and_embedding_padding_invariance(kind: str, pooling: str, loss: str) -> None:
    torch.manual_seed(0)
    config = SpeakerModelConfig(EncoderConfig(kind=kind, **TINY_ENCODER), pooling=pooling, embedding_dim=12, num_speakers=7, loss=loss)
    model = SpeakerModel(config)
    x = padded_batch()
    loss_sum, errors = model(x, LENGTHS, torch.tensor([0, 3, 6]), margin=0.2)
    assert loss_sum.shape == () and torch.isfinite(loss_sum) and 0 <= int(errors) <= 3
    loss_sum.backward()
    model.eval()
    embeddings = model.embed(x, LENGTHS)
    assert embeddings.shape == (3, 12)
    alone = torch.cat([model.embed(x[i : i + 1, :n], LENGTHS[i : i + 1]) for i, n in enumerate(LENGTHS.tolist())])
    torch.testing.assert_close(embeddings, alone, atol=1e-5, rtol=1e-4)
    assert SpeakerModelConfig.from_dict(config.to_dict()) == config


def test_am_softmax_margin_on_the_target_logit_only() -> None:
    embeddings = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    weight = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, 1.0]])
    targets = torch.tensor([1, 2])
    logits = am_softmax_logits(embeddings, weight, targets, margin=0.2, scale=30.0)
    # cosines by hand: e0 = (0.6, 0.8) against (1, 0), (0, 1), (-1, 1)/sqrt(2); e1 = (1, 0)
    cosines = torch.tensor([[0.6, 0.8, 0.2 / math.sqrt(2)], [1.0, 0.0, -1 / math.sqrt(2)]])
    expected = 30.0 * cosines
    expected[0, 1] = 30.0 * (0.8 - 0.2)
    expected[1, 2] = 30.0 * (-1 / math.sqrt(2) - 0.2)
    torch.testing.assert_close(logits, expected)


def test_am_softmax_with_zero_margin_is_a_normalized_weight_softmax() -> None:
    torch.manual_seed(0)
    model = SpeakerModel(SpeakerModelConfig(EncoderConfig(**TINY_ENCODER), embedding_dim=8, num_speakers=5, scale=30.0))
    embeddings, targets = torch.randn(4, 8), torch.tensor([0, 1, 2, 4])
    logits = model.classifier(embeddings, targets, margin=0.0)
    w = model.classifier.weight
    plain = 30.0 * (embeddings / embeddings.norm(dim=1, keepdim=True)) @ (w / w.norm(dim=1, keepdim=True)).T
    torch.testing.assert_close(logits, plain)
    torch.testing.assert_close(model.classifier(embeddings, torch.full_like(targets, -1), margin=0.2), plain)


def test_margin_warms_up_linearly_from_zero() -> None:
    config = SpeakerLossConfig(margin=0.2, margin_warmup_batches=100)
    assert [config.margin_at(b) for b in (0, 50, 100, 1000)] == pytest.approx([0.0, 0.1, 0.2, 0.2])


def test_bad_options_name_the_option() -> None:
    with pytest.raises(ValueError, match="--encoder-dim .* --num-heads"):
        SpeakerEncoder(EncoderConfig(dim=30, num_heads=4))
    with pytest.raises(ValueError, match="--pooling"):
        make_pooling("max", 8)
