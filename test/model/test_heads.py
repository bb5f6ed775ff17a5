"""The CTC and attention-decoder heads: CTC loss against brute force, the decoder's causality, right-to-left
targets, and the model's losses for every head combination."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
import torch

from icefall_lite.model.attention_decoder import (
    IGNORE_ID,
    SOS_EOS_ID,
    AttentionDecoder,
    decoder_input_and_target,
    reverse_tokens,
)
from icefall_lite.model.config import AttentionDecoderConfig
from icefall_lite.model.ctc import ctc_loss
from icefall_lite.model.transducer import Transducer

from .tiny_models import TINY_TRANSDUCER

TINY_ATTENTION_DECODER = AttentionDecoderConfig(num_layers=2, dim=32, attention_dim=16, num_heads=4, feedforward_dim=48)


def collapse(path: tuple, blank: int = 0) -> list:
    """CTC's many-to-one map: merge repeats, then drop blanks."""
    merged = [token for i, token in enumerate(path) if i == 0 or token != path[i - 1]]
    return [token for token in merged if token != blank]


def brute_force_ctc(log_probs: torch.Tensor, target: list) -> float:
    """-log sum over every frame-level path that collapses to `target`: log_probs (T, V)."""
    frames, vocab = log_probs.shape
    total = -math.inf
    for path in itertools.product(range(vocab), repeat=frames):
        if collapse(path) == target:
            total = float(torch.logaddexp(torch.tensor(total), sum(log_probs[t, k] for t, k in enumerate(path))))
    return -total


@pytest.mark.parametrize("target", [[1], [1, 2], [2, 2], [1, 2, 1], []])
def test_ctc_loss_equals_the_sum_over_all_alignments(target):
    gen = torch.Generator().manual_seed(len(target))
    log_probs = torch.randn(2, 5, 3, generator=gen).log_softmax(-1)
    lengths = torch.tensor([5, 4])
    padded = torch.tensor([target + [0] * (3 - len(target))] * 2)
    total = ctc_loss(log_probs, lengths, padded, torch.tensor([len(target)] * 2))
    expected = brute_force_ctc(log_probs[0], target) + brute_force_ctc(log_probs[1, :4], target)
    assert float(total) == pytest.approx(expected, rel=1e-5)


def test_collapse_merges_repeats_before_dropping_blanks():
    assert collapse((1, 1, 0, 1, 2, 2, 0)) == [1, 1, 2]
    assert collapse((0, 0, 0)) == []


def test_decoder_targets_start_and_end_with_sos_eos_and_reverse():
    inputs, targets = decoder_input_and_target([[5, 6, 7], [8]], torch.device("cpu"))
    assert inputs.tolist() == [[SOS_EOS_ID, 5, 6, 7], [SOS_EOS_ID, 8, SOS_EOS_ID, SOS_EOS_ID]]
    assert targets.tolist() == [[5, 6, 7, SOS_EOS_ID], [8, SOS_EOS_ID, IGNORE_ID, IGNORE_ID]]
    assert (targets != IGNORE_ID).sum(dim=1).tolist() == [4, 2]
    assert reverse_tokens([[5, 6, 7], [], [8]]) == [[7, 6, 5], [], [8]]


def test_attention_decoder_is_causal_and_ignores_padded_memory():
    torch.manual_seed(0)
    decoder = AttentionDecoder(vocab_size=12, memory_dim=20, config=TINY_ATTENTION_DECODER).eval()
    memory, memory_lens = torch.randn(1, 9, 20), torch.tensor([6])
    tokens = torch.tensor([[SOS_EOS_ID, 4, 5, 6, 7]])
    logits = decoder(memory, memory_lens, tokens)
    changed = tokens.clone()
    changed[0, 3] = 9
    changed_logits = decoder(memory, memory_lens, changed)
    torch.testing.assert_close(changed_logits[:, :3], logits[:, :3])
    assert not torch.allclose(changed_logits[:, 3:], logits[:, 3:])
    padded_memory = memory.clone()
    padded_memory[:, 6:] = 100.0
    torch.testing.assert_close(decoder(padded_memory, memory_lens, tokens), logits)


def test_sequence_log_probs_sum_the_tokens_and_eos():
    torch.manual_seed(1)
    decoder = AttentionDecoder(vocab_size=12, memory_dim=20, config=TINY_ATTENTION_DECODER).eval()
    memory = torch.randn(2, 7, 20)
    y = [[4, 5], [6]]
    scores = decoder.sequence_log_probs(memory, torch.tensor([7, 5]), y)
    inputs, _ = decoder_input_and_target([[4, 5]], torch.device("cpu"))
    log_probs = decoder(memory[:1], torch.tensor([7]), inputs).log_softmax(-1)[0]
    expected = log_probs[0, 4] + log_probs[1, 5] + log_probs[2, SOS_EOS_ID]
    torch.testing.assert_close(scores[0], expected)
    assert scores.shape == (2,) and bool((scores < 0).all())


HEADS = {  # name -> (config changes, expected losses)
    "transducer+ctc": (dict(use_ctc=True), {"simple_loss", "pruned_loss", "ctc_loss"}),
    "ctc": (dict(use_transducer=False, use_ctc=True), {"ctc_loss"}),
    "ctc+attention": (dict(use_transducer=False, use_ctc=True, use_attention_decoder=True), {"ctc_loss", "attention_decoder_loss"}),
    "ctc+attention+r2l": (
        dict(use_transducer=False, use_ctc=True, use_attention_decoder=True, attention_decoder_reverse_weight=0.3),
        {"ctc_loss", "attention_decoder_loss"},
    ),
}


@pytest.mark.parametrize("heads", list(HEADS))
def test_model_returns_the_losses_of_its_heads_and_trains_them(heads):
    changes, expected = HEADS[heads]
    config = dataclasses.replace(TINY_TRANSDUCER, attention_decoder=TINY_ATTENTION_DECODER, **changes)
    torch.manual_seed(0)
    model = Transducer(config).train()
    losses = model(torch.randn(2, 120, 80), torch.tensor([120, 95]), y=[[1, 2, 3], [4]])
    assert set(losses) == expected
    assert all(loss.ndim == 0 and torch.isfinite(loss) and loss > 0 for loss in losses.values())
    sum(losses.values()).backward()
    for name in ("joiner", "ctc_output", "attention_decoder", "reverse_attention_decoder"):
        if hasattr(model, name):
            assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in getattr(model, name).parameters()), name
    assert hasattr(model, "joiner") == config.use_transducer
    assert hasattr(model, "reverse_attention_decoder") == (config.attention_decoder_reverse_weight > 0)


def test_reverse_weight_mixes_the_two_decoders_losses():
    config = dataclasses.replace(
        TINY_TRANSDUCER, use_attention_decoder=True, attention_decoder=TINY_ATTENTION_DECODER,
        attention_decoder_reverse_weight=0.25,
    )
    torch.manual_seed(0)
    model = Transducer(config).eval()
    x, x_lens, y = torch.randn(2, 100, 80), torch.tensor([100, 80]), [[1, 2, 3], [4, 5]]
    mixed = model(x, x_lens, y)["attention_decoder_loss"]
    encoder_out, encoder_lens = model.encoder(x, x_lens)
    forward = model.attention_decoder.loss(encoder_out, encoder_lens, y)
    reverse = model.reverse_attention_decoder.loss(encoder_out, encoder_lens, [[3, 2, 1], [5, 4]])
    torch.testing.assert_close(mixed, 0.75 * forward + 0.25 * reverse)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(use_transducer=False), "at least one of --use-transducer and --use-ctc"),
        (dict(attention_decoder_reverse_weight=0.5), "needs --use-attention-decoder 1"),
        (dict(use_attention_decoder=True, attention_decoder_reverse_weight=1.5), r"must be in \[0, 1\]"),
    ],
)
def test_bad_head_options_are_rejected(changes, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(TINY_TRANSDUCER, **changes)


def test_attention_dim_must_divide_into_heads():
    with pytest.raises(ValueError, match="divisible by --attention-decoder-num-heads"):
        AttentionDecoderConfig(attention_dim=30, num_heads=4)


def test_a_transducer_search_on_a_model_without_the_transducer_head_says_so():
    from icefall_lite.decoding.greedy_search import GreedySearch
    from icefall_lite.model.transducer import MissingHeadError

    model = Transducer(dataclasses.replace(TINY_TRANSDUCER, use_transducer=False, use_ctc=True))
    with pytest.raises(MissingHeadError, match="need the transducer head: train the model with --use-transducer 1"):
        GreedySearch(model)
