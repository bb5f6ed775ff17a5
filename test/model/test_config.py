"""Config dataclasses and the per-stack option parser."""

from __future__ import annotations

import dataclasses

import pytest

from icefall_lite.model.config import TransducerConfig, ZipformerConfig, parse_per_stack


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
