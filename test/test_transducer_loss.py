"""Tests of icefall_lite.transducer_loss: the exact RNN-T loss on packed logits (optimized_transducer's interface)."""

import warnings
from typing import List

import pytest
import torch
import torchaudio

from icefall_lite.rnnt_loss import rnnt_loss
from icefall_lite.transducer_loss import (
    chunked_transducer_loss,
    pack_padded_logits,
    pack_pairs,
    packed_row_count,
    transducer_loss,
)

BLANK = 0


def random_padded_case(frame_lens: List[int], symbol_lens: List[int], classes: int, seed: int = 0):
    """Padded logits (N, T_max, U_max + 1, V), targets (N, U_max) in [1, V), and the lengths (N,) int64."""
    gen = torch.Generator().manual_seed(seed)
    batch, frames, num_symbols = len(frame_lens), max(frame_lens), max(symbol_lens)
    logits = torch.randn(batch, frames, num_symbols + 1, classes, generator=gen)
    targets = torch.randint(1, classes, (batch, num_symbols), generator=gen)
    return logits, targets, torch.tensor(frame_lens), torch.tensor(symbol_lens)


def torchaudio_loss_and_grad(logits, targets, logit_lengths, target_lengths, weights):
    """torchaudio's per-utterance losses (N,) and the gradient of (weights * losses).sum(), packed."""
    logits = logits.clone().requires_grad_()
    losses = torchaudio.functional.rnnt_loss(
        logits, targets.int(), logit_lengths.int(), target_lengths.int(), blank=BLANK, reduction="none"
    )
    (weights * losses).sum().backward()
    return losses.detach(), pack_padded_logits(logits.grad, logit_lengths, target_lengths)


def packed_loss_and_grad(packed, targets, logit_lengths, target_lengths, weights, **kwargs):
    packed = packed.clone().requires_grad_()
    losses = transducer_loss(packed, targets, logit_lengths, target_lengths, blank=BLANK, reduction="none", **kwargs)
    (weights * losses).sum().backward()
    return losses.detach(), packed.grad


CASES = [  # (frame lengths, symbol lengths, V)
    ([1], [0], 3),
    ([1], [2], 4),
    ([4, 4], [0, 0], 5),
    ([1, 1, 1], [1, 0, 3], 6),
    ([7, 3, 5], [4, 1, 0], 6),
    ([12, 1, 9, 2], [5, 5, 0, 1], 10),
    ([3, 2], [6, 4], 5),  # more symbols than frames: feasible in the regular topology
    ([30, 4, 17, 1, 25], [12, 1, 0, 7, 3], 20),  # very ragged
    ([60, 2], [1, 20], 8),
]


@pytest.mark.parametrize("frame_lens,symbol_lens,classes", CASES)
def test_equals_torchaudio_on_packed_padded_batches(frame_lens, symbol_lens, classes):
    logits, targets, logit_lengths, target_lengths = random_padded_case(frame_lens, symbol_lens, classes)
    weights = torch.randn(len(frame_lens), generator=torch.Generator().manual_seed(3))  # of both signs
    ref, ref_grad = torchaudio_loss_and_grad(logits, targets, logit_lengths, target_lengths, weights)
    packed = pack_padded_logits(logits, logit_lengths, target_lengths)
    assert packed.shape[0] == packed_row_count(logit_lengths, target_lengths)
    ours, grad = packed_loss_and_grad(packed, targets, logit_lengths, target_lengths, weights)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=0.0)
    torch.testing.assert_close(grad, ref_grad, rtol=0.0, atol=1e-4)


@pytest.mark.parametrize("frame_lens,symbol_lens,classes", [c for c in CASES if all(
    s <= t for s, t in zip(c[1], c[0]))])
def test_one_sym_per_frame_equals_the_modified_rnnt_loss(frame_lens, symbol_lens, classes):
    logits, targets, logit_lengths, target_lengths = random_padded_case(frame_lens, symbol_lens, classes, seed=1)
    weights = torch.randn(len(frame_lens), generator=torch.Generator().manual_seed(4))
    padded = logits.clone().requires_grad_()
    boundary = torch.stack([torch.zeros_like(logit_lengths)] * 2 + [target_lengths, logit_lengths], dim=1)
    ref = rnnt_loss(padded, targets, BLANK, boundary, rnnt_type="modified", reduction="none")
    (weights * ref).sum().backward()
    packed = pack_padded_logits(logits, logit_lengths, target_lengths)
    ours, grad = packed_loss_and_grad(packed, targets, logit_lengths, target_lengths, weights, one_sym_per_frame=True)
    torch.testing.assert_close(ours, ref.detach(), rtol=1e-5, atol=0.0)
    torch.testing.assert_close(grad, pack_padded_logits(padded.grad, logit_lengths, target_lengths), rtol=0.0, atol=1e-4)


def test_one_sym_per_frame_with_more_symbols_than_frames_is_infinite_and_warned():
    logits, targets, logit_lengths, target_lengths = random_padded_case([2, 5], [3, 2], 5)
    packed = pack_padded_logits(logits, logit_lengths, target_lengths).requires_grad_()
    with pytest.warns(UserWarning, match=r"sequences \[0\]"):
        losses = transducer_loss(packed, targets, logit_lengths, target_lengths, reduction="none", one_sym_per_frame=True)
    assert torch.isinf(losses[0]) and torch.isfinite(losses[1])
    losses[1].backward()
    assert torch.isfinite(packed.grad).all()
    assert packed.grad[: 2 * 4].abs().max() == 0  # utterance 0 has no path: no gradient


@pytest.mark.parametrize("one_sym_per_frame", [False, True])
@pytest.mark.parametrize("from_log_softmax", [False, True])
def test_gradcheck_float64(one_sym_per_frame, from_log_softmax):
    logits, targets, logit_lengths, target_lengths = random_padded_case([4, 2, 3], [2, 0, 1], 4, seed=2)
    packed = pack_padded_logits(logits, logit_lengths, target_lengths).double().requires_grad_()

    def loss(x):
        inputs = x.log_softmax(dim=1) if from_log_softmax else x
        return transducer_loss(
            inputs, targets, logit_lengths, target_lengths, reduction="none",
            from_log_softmax=from_log_softmax, one_sym_per_frame=one_sym_per_frame,
        )

    assert torch.autograd.gradcheck(loss, (packed,))


@pytest.mark.parametrize("one_sym_per_frame", [False, True])
def test_from_log_softmax_on_log_probs_equals_raw_logits(one_sym_per_frame):
    logits, targets, logit_lengths, target_lengths = random_padded_case([9, 4, 6], [3, 4, 0], 7, seed=5)
    packed = pack_padded_logits(logits, logit_lengths, target_lengths)
    weights = torch.tensor([0.5, -1.0, 2.0])
    raw, raw_grad = packed_loss_and_grad(packed, targets, logit_lengths, target_lengths, weights, one_sym_per_frame=one_sym_per_frame)
    leaf = packed.clone().requires_grad_()
    normalized = transducer_loss(
        leaf.log_softmax(dim=1), targets, logit_lengths, target_lengths, reduction="none", from_log_softmax=True,
        one_sym_per_frame=one_sym_per_frame,
    )
    (weights * normalized).sum().backward()
    torch.testing.assert_close(normalized.detach(), raw, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(leaf.grad, raw_grad, rtol=0.0, atol=1e-5)


def test_gradient_of_intermediate_logits_is_written_in_their_storage_and_equals_a_fresh_one():
    logits, targets, logit_lengths, target_lengths = random_padded_case([8, 5], [3, 2], 6, seed=6)
    packed = pack_padded_logits(logits, logit_lengths, target_lengths)
    _, fresh_grad = packed_loss_and_grad(packed, targets, logit_lengths, target_lengths, torch.ones(2))
    leaf = packed.clone().requires_grad_()
    intermediate = leaf * 1.0
    seen = []
    intermediate.register_hook(lambda grad: seen.append(grad.data_ptr()))
    transducer_loss(intermediate, targets, logit_lengths, target_lengths, reduction="sum").backward()
    assert seen == [intermediate.data_ptr()]
    torch.testing.assert_close(leaf.grad, fresh_grad, rtol=0.0, atol=1e-6)
    assert torch.equal(leaf.detach(), packed)  # the leaf itself is untouched


def test_reductions_and_half_precision_input():
    logits, targets, logit_lengths, target_lengths = random_padded_case([6, 3, 4], [2, 1, 3], 5, seed=7)
    packed = pack_padded_logits(logits, logit_lengths, target_lengths)
    per_utterance = transducer_loss(packed, targets, logit_lengths, target_lengths, reduction="none")
    assert per_utterance.shape == (3,)
    torch.testing.assert_close(transducer_loss(packed, targets, logit_lengths, target_lengths, reduction="sum"), per_utterance.sum())
    torch.testing.assert_close(transducer_loss(packed, targets, logit_lengths, target_lengths), per_utterance.mean())
    half = packed.half().requires_grad_()
    half_loss = transducer_loss(half, targets, logit_lengths, target_lengths, reduction="none")
    assert half_loss.dtype == torch.float32
    torch.testing.assert_close(half_loss, transducer_loss(packed.half().float(), targets, logit_lengths, target_lengths, reduction="none"))
    half_loss.sum().backward()
    assert half.grad.dtype == torch.float16 and torch.isfinite(half.grad).all()


def test_pack_pairs_equals_the_packed_padded_sum_and_back_propagates():
    gen = torch.Generator().manual_seed(8)
    encoder_out = torch.randn(3, 7, 4, generator=gen, requires_grad=True)
    decoder_out = torch.randn(3, 5, 4, generator=gen, requires_grad=True)
    logit_lengths, target_lengths = torch.tensor([7, 2, 5]), torch.tensor([1, 4, 0])
    padded = encoder_out[:, :, None] + decoder_out[:, None]
    expected = pack_padded_logits(padded, logit_lengths, target_lengths)
    packed = pack_pairs(encoder_out, decoder_out, logit_lengths, target_lengths)
    torch.testing.assert_close(packed, expected)
    weights = torch.randn(packed.shape, generator=gen)
    expected_grads = torch.autograd.grad((expected * weights).sum(), (encoder_out, decoder_out))
    grads = torch.autograd.grad((packed * weights).sum(), (encoder_out, decoder_out))
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad)


def _bad_inputs():
    logits, targets, logit_lengths, target_lengths = random_padded_case([3, 2], [2, 1], 5)
    packed = pack_padded_logits(logits, logit_lengths, target_lengths)
    good = dict(logits=packed, targets=targets, logit_lengths=logit_lengths, target_lengths=target_lengths)
    blank_target = targets.clone()
    blank_target[1, 0] = BLANK
    padding_blank = targets.clone()
    padding_blank[1, 1] = BLANK  # beyond target_lengths[1]: allowed
    return good, [
        (dict(logit_lengths=torch.tensor([3])), "logit_lengths must have N = 2"),
        (dict(target_lengths=torch.tensor([2, 1, 1])), "target_lengths must have N = 2"),
        (dict(logit_lengths=torch.tensor([3, 0])), r"logit_lengths must be >= 1, got logit_lengths\[1\] = 0"),
        (dict(target_lengths=torch.tensor([3, 1])), r"target_lengths must be in \[0, U_max = 2\]"),
        (dict(logits=packed[:-1]), "logits must have .* = 13 rows .* got 12"),
        (dict(logit_lengths=torch.tensor([3, 3])), "logits must have .* = 15 rows"),
        (dict(logits=packed[:, :3]), r"targets must be in \[0, V = 3\).*got targets\[\d, \d\] = [34]"),
        (dict(targets=blank_target), r"targets must be different from blank = 0, got targets\[1, 0\] = 0"),
        (dict(logits=packed.view(-1)), "logits must have shape"),
        (dict(targets=targets.float()), "targets must be an integer tensor"),
        (dict(logit_lengths=logit_lengths.float()), "logit_lengths must be an integer tensor"),
        (dict(reduction="avg"), "reduction must be one of"),
        (dict(blank=5), r"blank must be in \[0, V = 5\)"),
    ], padding_blank


def test_bad_inputs_raise_errors_naming_the_argument():
    good, cases, padding_blank = _bad_inputs()
    for change, message in cases:
        with pytest.raises((ValueError, TypeError), match=message):
            transducer_loss(**{**good, **change})
    assert torch.isfinite(transducer_loss(**{**good, "targets": padding_blank}))


class RecordingJoiner(torch.nn.Module):
    """linear(tanh(x)), (r, D) -> (r, V), remembering the rows of every call."""

    def __init__(self, dim: int, classes: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(dim, classes)
        self.call_rows: List[int] = []

    def forward(self, pairs):
        self.call_rows.append(pairs.shape[0])
        return self.linear(torch.tanh(pairs))


def random_joiner_case(frame_lens: List[int], symbol_lens: List[int], classes: int, dim: int = 6):
    gen = torch.Generator().manual_seed(5)
    torch.manual_seed(5)
    batch, frames, num_symbols = len(frame_lens), max(frame_lens), max(symbol_lens)
    encoder_out = torch.randn(batch, frames, dim, generator=gen, requires_grad=True)
    decoder_out = torch.randn(batch, num_symbols + 1, dim, generator=gen, requires_grad=True)
    targets = torch.randint(1, classes, (batch, max(num_symbols, 1)), generator=gen)
    lengths = torch.tensor(frame_lens), torch.tensor(symbol_lens)
    return RecordingJoiner(dim, classes), encoder_out, decoder_out, targets, *lengths


@pytest.mark.parametrize("one_sym_per_frame", [False, True])
@pytest.mark.parametrize("frame_lens,symbol_lens,classes", CASES)
def test_chunked_loss_equals_the_loss_of_the_packed_joiner_output(frame_lens, symbol_lens, classes, one_sym_per_frame):
    joiner, encoder_out, decoder_out, targets, logit_lengths, target_lengths = random_joiner_case(
        frame_lens, symbol_lens, classes
    )
    weights = torch.rand(len(frame_lens), generator=torch.Generator().manual_seed(3))
    inputs = (encoder_out, decoder_out, *joiner.parameters())
    kwargs = dict(blank=BLANK, reduction="none", one_sym_per_frame=one_sym_per_frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the modified topology's infeasible cases warn
        logits = joiner(pack_pairs(encoder_out, decoder_out, logit_lengths, target_lengths))
        expected = transducer_loss(logits, targets, logit_lengths, target_lengths, **kwargs)
        expected_grads = torch.autograd.grad((weights * expected.nan_to_num(posinf=0)).sum(), inputs)
        losses = chunked_transducer_loss(
            joiner, encoder_out, decoder_out, targets, logit_lengths, target_lengths, classes, rows_per_chunk=5,
            **kwargs,
        )
        grads = torch.autograd.grad((weights * losses.nan_to_num(posinf=0)).sum(), inputs)
    torch.testing.assert_close(losses, expected, rtol=1e-5, atol=1e-5)
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad, rtol=1e-4, atol=1e-5)


def test_chunked_loss_runs_the_joiner_on_chunks_only_and_recomputes_them_in_the_backward():
    joiner, encoder_out, decoder_out, targets, logit_lengths, target_lengths = random_joiner_case(
        [30, 4, 17, 1, 25], [12, 1, 0, 7, 3], 20
    )
    rows = packed_row_count(logit_lengths, target_lengths)
    loss = chunked_transducer_loss(
        joiner, encoder_out, decoder_out, targets, logit_lengths, target_lengths, 20, rows_per_chunk=64
    )
    forward_calls = list(joiner.call_rows)
    assert max(forward_calls) <= 64 < rows and sum(forward_calls) == rows
    loss.backward()
    assert sorted(joiner.call_rows[len(forward_calls):]) == sorted(forward_calls)  # each chunk once more
    assert all(torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0 for p in joiner.parameters())


def test_chunked_loss_bad_inputs_raise_errors_naming_the_argument():
    joiner, encoder_out, decoder_out, targets, logit_lengths, target_lengths = random_joiner_case([3, 2], [2, 1], 5)
    good = dict(
        joiner=joiner, encoder_out=encoder_out, decoder_out=decoder_out, targets=targets,
        logit_lengths=logit_lengths, target_lengths=target_lengths, num_classes=5,
    )
    blank_target = targets.clone()
    blank_target[0, 1] = BLANK
    for change, message in [
        (dict(num_classes=3), r"targets must be in \[0, V = 3\)"),
        (dict(targets=blank_target), r"targets must be different from blank = 0, got targets\[0, 1\] = 0"),
        (dict(logit_lengths=torch.tensor([4, 2])), "logit_lengths must be <= T_max = 3"),
        (dict(target_lengths=torch.tensor([3, 1])), r"target_lengths must be in \[0, U_max = 2\]"),
        (dict(decoder_out=decoder_out[:, :, :4]), "must agree on N and D"),
        (dict(reduction="avg"), "reduction must be one of"),
        (dict(blank=7), r"blank must be in \[0, V = 5\)"),
    ]:
        with pytest.raises((ValueError, TypeError), match=message):
            chunked_transducer_loss(**{**good, **change})
