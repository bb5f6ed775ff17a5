"""Config dataclasses and the per-stack option parser."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from icefall_lite.model.config import TransducerConfig, ZipformerConfig, parse_per_stack
from icefall_lite.model.options import add_model_arguments, build_model


def test_parse_per_stack_reads_integers() -> None:
    assert parse_per_stack("2,4,3,2,4", "--num-encoder-layers") == (2, 4, 3, 2, 4)
    assert parse_per_stack(" 8 ", "--nhead") == (8,)


@pytest.mark.parametrize("bad", ["2,x,3", "2,,3", "", "2,-1", "0,1"])
def test_parse_per_stack_names_the_option(bad: str) -> None:
    with pytest.raises(ValueError, match="--feedforward-dims"):
        parse_per_stack(bad, "--feedforward-dims")


def test_default_config_matches_the_recipe() -> None:
    config = ZipformerConfig()
    assert config.num_stacks == 5 and config.output_dim == 384
    assert config.left_context_len == (64, 32, 16, 8, 32)


def test_mismatched_tuple_lengths_name_the_field() -> None:
    with pytest.raises(ValueError, match="feedforward_dims has 4 values"):
        ZipformerConfig(feedforward_dims=(1024, 1024, 2048, 2048))


def test_chunk_size_must_divide_by_downsampling_factors() -> None:
    with pytest.raises(ValueError, match="decode_chunk_size=12 must be divisible by zipformer_downsampling_factors\\[3\\]=8"):
        ZipformerConfig(decode_chunk_size=12)
    assert dataclasses.replace(ZipformerConfig(), decode_chunk_size=-1).decode_chunk_size == -1


def test_attention_dim_must_split_into_heads() -> None:
    with pytest.raises(ValueError, match="attention_dims\\[1\\]=100"):
        ZipformerConfig(attention_dims=(192, 100, 192, 192, 192))


def test_transducer_config_checks_blank_and_dims() -> None:
    with pytest.raises(ValueError, match="blank_id=500"):
        TransducerConfig(blank_id=500)
    with pytest.raises(ValueError, match="decoder_dim=510"):
        TransducerConfig(decoder_dim=510)


def test_model_warmup_batches_option_scales_every_regularizer_schedule() -> None:
    """--model-warmup-batches W: stack i drops layers over [W(i+1)/6, W(i+2)/6], module dropout ends at W/2,
    the bypass clamp relaxes over 5 W (icefall's 4000 / 2000 / 20000 for W = 4000)."""
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    model = build_model(parser.parse_args(["--model-warmup-batches", "600"]), vocab_size=20)
    stacks = [getattr(stack, "encoder", stack) for stack in model.encoder.encoders]
    assert [(s.warmup_begin, s.warmup_end) for s in stacks] == [(100.0 * (i + 1), 100.0 * (i + 2)) for i in range(5)]
    layer = stacks[0].layers[0]
    layer.train()
    for batch_count, skipped_fraction in [(0.0, 0.2), (300.0, 0.0)]:
        layer.batch_count = batch_count
        draws = [layer._modules_to_skip() for _ in range(2000)]
        assert abs(sum(sum(d) for d in draws) / 8000 - skipped_fraction) < 0.03
    layer.bypass_scale.data.fill_(0.0)
    layer.batch_count = 1500.0  # half-way through 5 W: lower clamp 0.75 -> 0.5
    clamped = {round(layer._clamped_bypass_scale().item(), 3) for _ in range(200)}
    assert clamped == {0.5, 0.0}
