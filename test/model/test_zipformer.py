"""The Zipformer encoder: front end, shapes, training-time randomness and schedules."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest
import torch

from icefall_lite.model.config import ZipformerConfig
from icefall_lite.model.encoder_layer import LayerDims
from icefall_lite.model.subsampling import Conv2dSubsampling
from icefall_lite.model.warmup import linear_warmup, set_batch_count
from icefall_lite.model.zipformer import Zipformer, ZipformerEncoder, skip_sources

from .tiny_models import TINY_ENCODER


def test_subsampling_shapes_and_lengths() -> None:
    embed = Conv2dSubsampling(80, 16)
    out, lengths = embed(torch.randn(2, 39, 80), torch.tensor([39, 20]))
    assert out.shape == (2, 16, 16)
    assert lengths.tolist() == [16, 6]
    with pytest.raises(ValueError, match=r"\(N, T >= 7, 80\)"):
        embed(torch.randn(2, 6, 80), torch.tensor([6, 6]))
    with pytest.raises(ValueError, match=r"x_lens .* values in \[7, 39\].* max 40"):
        embed(torch.randn(2, 39, 80), torch.tensor([39, 40]))


def test_subsampling_output_frame_sees_only_seven_input_frames() -> None:
    embed = Conv2dSubsampling(80, 16).eval()
    x = torch.randn(1, 39, 80)
    out, _ = embed(x, torch.tensor([39]))
    changed = x.clone()
    changed[:, 9:] += 1.0
    assert torch.equal(embed(changed, torch.tensor([39]))[0][:, :1], out[:, :1])
    assert not torch.allclose(embed(changed, torch.tensor([39]))[0][:, 1], out[:, 1])


def test_encoder_output_shape_and_lengths() -> None:
    encoder = Zipformer(TINY_ENCODER).eval()
    out, lengths = encoder(torch.randn(2, 229, 80), torch.tensor([229, 100]))
    assert out.shape == (2, 56, 32)
    assert lengths.tolist() == [56, ((100 - 7) // 2 + 1) // 2]


def test_skip_sources() -> None:
    assert skip_sources((1, 2, 4, 8, 2)) == [-1, -1, -1, -1, 1]
    assert skip_sources((1, 2, 4, 2, 1)) == [-1, -1, -1, 1, 0]


def test_training_chunk_sizes_are_short_multiples_or_full() -> None:
    encoder = Zipformer(ZipformerConfig(num_encoder_layers=(1, 1, 1, 1, 1))).train()
    draws = Counter(encoder._training_chunk_size(500) for _ in range(2000))
    assert set(draws) <= {-1, 8, 16, 24, 32, 40, 48}
    assert 0.2 < draws[-1] / 2000 < 0.3


def test_feature_masks_mask_the_same_frames_above_unmasked_dims() -> None:
    encoder = Zipformer(TINY_ENCODER).train()
    masks = encoder._feature_masks(torch.zeros(400, 3, 32))
    assert [m.shape[0] for m in masks] == [400, 200, 100, 50, 200]
    assert torch.equal(masks[0][..., :24], torch.ones(400, 3, 24))
    dropped = masks[0][:, :, 24] == 0
    assert 0.08 < float(dropped.float().mean()) < 0.22
    assert torch.equal(masks[3][:, :, 31] == 0, dropped[::8])
    assert torch.equal(masks[1][:, :, 31] == 0, dropped[::2])


def test_layer_drop_schedule_and_shared_count() -> None:
    dims = LayerDims(8, 8, 2, 16, 3, 4, 0.0)
    stack = ZipformerEncoder(dims, num_layers=4, warmup=(1000.0, 2000.0))
    assert stack._layers_to_drop() == [], "no layer drop at batch 0"
    stack.batch_count = 1000.0
    assert stack.layerdrop_probs() == [0.5, 0.5, 0.5, 0.5]
    stack.batch_count = 1500.0
    assert stack.layerdrop_probs() == pytest.approx([0.05, 0.05, 0.5, 0.5])
    counts = {len(stack._layers_to_drop()) for _ in range(20)}
    assert len(counts) == 1 and counts <= {1, 2}, "the number dropped depends only on batch_count"


def test_set_batch_count_reaches_every_scheduled_module() -> None:
    encoder = Zipformer(TINY_ENCODER)
    set_batch_count(encoder, 1234)
    scheduled = [m for m in encoder.modules() if hasattr(m, "batch_count")]
    assert len(scheduled) == 1 + 5 + sum(TINY_ENCODER.num_encoder_layers)
    assert all(m.batch_count == 1234.0 for m in scheduled)
    assert linear_warmup(500.0, 0.0, 2000.0, 0.2, 0.0) == pytest.approx(0.15)


def test_training_forward_backward_gives_finite_gradients() -> None:
    encoder = Zipformer(dataclasses.replace(TINY_ENCODER, num_encoder_layers=(2, 2, 2, 2, 2))).train()
    set_batch_count(encoder, 3000)
    out, lengths = encoder(torch.randn(3, 150, 80), torch.tensor([150, 120, 90]))
    (out * torch.randn_like(out)).sum().backward()
    grads = [p.grad for p in encoder.parameters() if p.grad is not None]
    assert len(grads) > 0.8 * len(list(encoder.parameters()))
    assert all(torch.isfinite(g).all() for g in grads)
