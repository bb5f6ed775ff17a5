"""Tests of icefall_lite.rnnt_loss: against torchaudio, brute-force enumeration and gradcheck."""

import itertools
import math
import warnings
from typing import List, Tuple

import pytest
import torch
import torchaudio

from icefall_lite.rnnt_loss import (
    do_rnnt_pruning,
    get_rnnt_logprobs_smoothed,
    get_rnnt_prune_ranges,
    mutual_information_recursion,
    rnnt_loss,
    rnnt_loss_pruned,
    rnnt_loss_simple,
    rnnt_loss_smoothed,
)

BLANK = 0
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def make_boundary(symbol_lens: List[int], frame_lens: List[int]) -> torch.Tensor:
    """(B, 4) int64 rows [0, 0, S_b, T_b], as icefall builds it."""
    zeros = [0] * len(symbol_lens)
    return torch.tensor([zeros, zeros, symbol_lens, frame_lens]).t().contiguous()


def torchaudio_loss(logits: torch.Tensor, symbols: torch.Tensor, boundary: torch.Tensor) -> torch.Tensor:
    """Per-sequence loss (B,) of torchaudio's full RNN-T loss (blank 0, float32, raw logits)."""
    return torchaudio.functional.rnnt_loss(
        logits, symbols.int(), boundary[:, 3].int(), boundary[:, 2].int(), blank=BLANK, reduction="none"
    )


def random_case(batch: int, frames: int, num_symbols: int, classes: int, ragged: bool, seed: int = 0):
    """Random logits (B, T, S+1, C), symbols (B, S) in [1, C), boundary with (ragged) lengths."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, frames, num_symbols + 1, classes, generator=gen)
    symbols = torch.randint(1, classes, (batch, num_symbols), generator=gen)
    frame_lens = [frames] * batch
    symbol_lens = [num_symbols] * batch
    if ragged and batch > 1:
        frame_lens[1:] = torch.randint(1, frames + 1, (batch - 1,), generator=gen).tolist()
        symbol_lens[1:] = torch.randint(0, num_symbols + 1, (batch - 1,), generator=gen).tolist()
    return logits, symbols, make_boundary(symbol_lens, frame_lens)


def assert_close_to_torchaudio(ours: torch.Tensor, ours_grads, ref: torch.Tensor, ref_grads) -> None:
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=0.0)
    for grad, ref_grad in zip(ours_grads, ref_grads):
        torch.testing.assert_close(grad, ref_grad, rtol=0.0, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# Agreement with torchaudio
# ---------------------------------------------------------------------------------------------

SHAPES = [  # (B, T, S, C, ragged)
    (1, 1, 0, 3, False),
    (2, 1, 3, 5, False),
    (2, 4, 0, 4, False),
    (3, 7, 4, 6, True),
    (4, 12, 5, 10, True),
    (2, 3, 6, 5, True),  # more symbols than frames: feasible in the regular topology
    (5, 30, 12, 20, True),
]


@pytest.mark.parametrize("batch,frames,num_symbols,classes,ragged", SHAPES)
def test_rnnt_loss_matches_torchaudio(batch, frames, num_symbols, classes, ragged):
    logits, symbols, boundary = random_case(batch, frames, num_symbols, classes, ragged)
    logits.requires_grad_(True)
    ours = rnnt_loss(logits, symbols, BLANK, boundary, reduction="none")
    ref = torchaudio_loss(logits, symbols, boundary)
    weights = torch.randn(batch, generator=torch.Generator().manual_seed(9))  # of both signs
    ours_grads = torch.autograd.grad((ours * weights).sum(), logits)
    ref_grads = torch.autograd.grad((ref * weights).sum(), logits)
    assert_close_to_torchaudio(ours, ours_grads, ref, ref_grads)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_reductions(reduction):
    logits, symbols, boundary = random_case(3, 6, 3, 5, ragged=True)
    per_sequence = rnnt_loss(logits, symbols, BLANK, boundary, reduction="none")
    reduced = rnnt_loss(logits, symbols, BLANK, boundary, reduction=reduction)
    torch.testing.assert_close(reduced, getattr(per_sequence, reduction)())


@pytest.mark.parametrize("batch,frames,num_symbols,classes,ragged", SHAPES[1:5])
def test_rnnt_loss_simple_equals_full_loss_of_additive_joiner(batch, frames, num_symbols, classes, ragged):
    _, symbols, boundary = random_case(batch, frames, num_symbols, classes, ragged)
    am = torch.randn(batch, frames, classes, requires_grad=True)
    lm = torch.randn(batch, num_symbols + 1, classes, requires_grad=True)
    ours = rnnt_loss_simple(lm=lm, am=am, symbols=symbols, termination_symbol=BLANK, boundary=boundary,
                            reduction="none")
    ref = torchaudio_loss(am[:, :, None, :] + lm[:, None, :, :], symbols, boundary)
    ours_grads = torch.autograd.grad(ours.sum(), (am, lm))
    ref_grads = torch.autograd.grad(ref.sum(), (am, lm))
    assert_close_to_torchaudio(ours, ours_grads, ref, ref_grads)


@pytest.mark.parametrize("rnnt_type", ["regular", "modified"])
def test_pruned_loss_with_full_range_equals_full_loss(rnnt_type):
    batch, frames, num_symbols, classes = 3, 9, 4, 7
    _, symbols, boundary = random_case(batch, frames, num_symbols, classes, ragged=True)
    boundary[:, 3] = torch.maximum(boundary[:, 2], boundary[:, 3])  # feasible for "modified" too
    am = torch.randn(batch, frames, classes, dtype=torch.float64, requires_grad=True)
    lm = torch.randn(batch, num_symbols + 1, classes, dtype=torch.float64, requires_grad=True)
    _, (px_grad, py_grad) = rnnt_loss_smoothed(
        lm=lm, am=am, symbols=symbols, termination_symbol=BLANK, lm_only_scale=0.25, am_only_scale=0.0,
        boundary=boundary, rnnt_type=rnnt_type, reduction="sum", return_grad=True)
    ranges = get_rnnt_prune_ranges(px_grad=px_grad, py_grad=py_grad, boundary=boundary, s_range=num_symbols + 3)
    assert ranges.shape == (batch, frames, num_symbols + 1)
    am_pruned, lm_pruned = do_rnnt_pruning(am=am, lm=lm, ranges=ranges)
    pruned = rnnt_loss_pruned(logits=am_pruned + lm_pruned, symbols=symbols, ranges=ranges,
                              termination_symbol=BLANK, boundary=boundary, rnnt_type=rnnt_type, reduction="none")
    full = rnnt_loss(am[:, :, None, :] + lm[:, None, :, :], symbols, BLANK, boundary, rnnt_type, reduction="none")
    torch.testing.assert_close(pruned, full)
    pruned_grads = torch.autograd.grad(pruned.sum(), (am, lm))
    full_grads = torch.autograd.grad(full.sum(), (am, lm))
    for pruned_grad, full_grad in zip(pruned_grads, full_grads):
        torch.testing.assert_close(pruned_grad, full_grad)


def icefall_losses(am, lm, symbols, boundary, s_range):
    """(simple_loss, pruned_loss, ranges) computed as icefall's Transducer.forward does."""
    simple, (px_grad, py_grad) = rnnt_loss_smoothed(
        lm=lm, am=am, symbols=symbols, termination_symbol=BLANK, lm_only_scale=0.25, am_only_scale=0.0,
        boundary=boundary, reduction="none", return_grad=True)
    ranges = get_rnnt_prune_ranges(px_grad=px_grad, py_grad=py_grad, boundary=boundary, s_range=s_range)
    am_pruned, lm_pruned = do_rnnt_pruning(am=am, lm=lm, ranges=ranges)
    pruned = rnnt_loss_pruned(logits=am_pruned + lm_pruned, symbols=symbols, ranges=ranges,
                              termination_symbol=BLANK, boundary=boundary, reduction="none")
    return simple, pruned, ranges


def test_pruning_only_removes_paths():
    batch, frames, num_symbols, classes = 4, 20, 8, 12
    _, symbols, boundary = random_case(batch, frames, num_symbols, classes, ragged=True, seed=3)
    am, lm = torch.randn(batch, frames, classes), torch.randn(batch, num_symbols + 1, classes)
    _, pruned, _ = icefall_losses(am, lm, symbols, boundary, s_range=2)
    full = rnnt_loss(am[:, :, None, :] + lm[:, None, :, :], symbols, BLANK, boundary, reduction="none")
    assert torch.isfinite(pruned).all()
    assert (pruned >= full - 1e-4).all()


def test_pruned_loss_is_close_to_full_loss_for_a_peaked_alignment():
    """When the model is sure of its alignment, the s_range=3 window keeps nearly all the mass."""
    frames, num_symbols, classes = 12, 4, 6
    symbols = torch.tensor([[1, 2, 3, 4]])
    boundary = make_boundary([num_symbols], [frames])
    am = torch.zeros(1, frames, classes)
    for s, t in enumerate((1, 4, 7, 10)):  # symbol s is spoken at frame t, blank elsewhere
        am[0, t, symbols[0, s]] = 20.0
    am[0, :, BLANK] = 10.0
    lm = torch.zeros(1, num_symbols + 1, classes)
    _, pruned, _ = icefall_losses(am, lm, symbols, boundary, s_range=3)
    full = rnnt_loss(am[:, :, None, :] + lm[:, None, :, :], symbols, BLANK, boundary, reduction="none")
    assert float(pruned - full) < 1e-3


# ---------------------------------------------------------------------------------------------
# mutual_information_recursion against brute force, gradcheck
# ---------------------------------------------------------------------------------------------


def enumerate_paths(box: Tuple[int, int, int, int], modified: bool):
    """All paths of one lattice box as lists of arcs ("x" or "y", s, t) (arc source cells)."""
    s_begin, t_begin, s_end, t_end = box
    num_symbols, num_frames = s_end - s_begin, t_end - t_begin
    num_moves = num_frames if modified else num_symbols + num_frames
    for symbol_moves in itertools.combinations(range(num_moves), num_symbols):
        s, t, arcs = s_begin, t_begin, []
        for move in range(num_moves):
            if move in symbol_moves:
                arcs.append(("x", s, t))
                s, t = s + 1, t + int(modified)
            else:
                arcs.append(("y", s, t))
                t += 1
        yield arcs


def brute_force(px: torch.Tensor, py: torch.Tensor, box, modified: bool):
    """(total, px_occupation, py_occupation) of one sequence by enumerating every path."""
    weights = {"x": px, "y": py}
    paths = list(enumerate_paths(box, modified))
    scores = [sum(float(weights[kind][s, t]) for kind, s, t in arcs) for arcs in paths]
    total = torch.tensor(scores, dtype=torch.float64).logsumexp(0) if paths else torch.tensor(-math.inf, dtype=torch.float64)
    occupation = {"x": torch.zeros_like(px), "y": torch.zeros_like(py)}
    for score, arcs in zip(scores, paths):
        for kind, s, t in arcs:
            occupation[kind][s, t] += math.exp(score - float(total))
    return total, occupation["x"], occupation["y"]


BOXES = [(0, 0, 3, 4), (1, 0, 3, 2), (0, 1, 2, 4), (0, 0, 0, 3), (2, 3, 3, 4), (0, 0, 3, 0), (1, 2, 1, 2)]


@pytest.mark.parametrize("modified", [False, True])
def test_mutual_information_matches_brute_force(modified):
    batch, num_symbols, frames = len(BOXES), 3, 4
    gen = torch.Generator().manual_seed(1)
    px = torch.randn(batch, num_symbols, frames + (0 if modified else 1), dtype=torch.float64, generator=gen)
    py = torch.randn(batch, num_symbols + 1, frames, dtype=torch.float64, generator=gen)
    px[0, 1, 2] = -math.inf  # a forbidden arc inside a box
    boundary = torch.tensor(BOXES)
    total, (px_grad, py_grad) = mutual_information_recursion(px, py, boundary, return_grad=True)
    for b, box in enumerate(BOXES):
        ref_total, ref_px_grad, ref_py_grad = brute_force(px[b], py[b], box, modified)
        torch.testing.assert_close(total[b], ref_total)
        torch.testing.assert_close(px_grad[b], ref_px_grad)
        torch.testing.assert_close(py_grad[b], ref_py_grad)


def test_return_grad_is_the_gradient_of_the_total():
    px = torch.randn(2, 3, 5, requires_grad=True)
    py = torch.randn(2, 4, 4, requires_grad=True)
    total, (px_grad, py_grad) = mutual_information_recursion(px, py, return_grad=True)
    autograd_px, autograd_py = torch.autograd.grad(total.sum(), (px, py))
    torch.testing.assert_close(px_grad, autograd_px)
    torch.testing.assert_close(py_grad, autograd_py)
    assert not px_grad.requires_grad
    no_grad_total = mutual_information_recursion(px.detach(), py.detach())
    torch.testing.assert_close(no_grad_total, total.detach())


@pytest.mark.parametrize("modified", [False, True])
def test_mutual_information_gradcheck(modified):
    gen = torch.Generator().manual_seed(2)
    px = torch.randn(3, 2, 3 + (0 if modified else 1), dtype=torch.float64, generator=gen, requires_grad=True)
    py = torch.randn(3, 3, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    boundary = torch.tensor([[0, 0, 2, 3], [0, 1, 1, 3], [1, 0, 2, 2]])
    assert torch.autograd.gradcheck(lambda x, y: mutual_information_recursion(x, y, boundary), (px, py))


@pytest.mark.parametrize("rnnt_type", ["regular", "modified"])
def test_losses_gradcheck(rnnt_type):
    batch, frames, num_symbols, classes = 2, 3, 2, 4
    gen = torch.Generator().manual_seed(4)
    symbols = torch.randint(1, classes, (batch, num_symbols), generator=gen)
    boundary = make_boundary([2, 1], [3, 2])
    am = torch.randn(batch, frames, classes, dtype=torch.float64, generator=gen, requires_grad=True)
    lm = torch.randn(batch, num_symbols + 1, classes, dtype=torch.float64, generator=gen, requires_grad=True)
    logits = torch.randn(batch, frames, num_symbols + 1, classes, dtype=torch.float64, generator=gen,
                         requires_grad=True)
    ranges = torch.tensor([[[0, 1], [0, 1], [1, 2]], [[0, 1], [0, 1], [0, 1]]])

    def smoothed(lm, am):
        return rnnt_loss_smoothed(lm, am, symbols, BLANK, 0.25, 0.1, boundary, rnnt_type, "sum")

    def pruned(logits):
        return rnnt_loss_pruned(logits[:, :, :2], symbols, ranges, BLANK, boundary, rnnt_type, "sum")

    def full(logits):
        return rnnt_loss(logits, symbols, BLANK, boundary, rnnt_type, "sum")

    assert torch.autograd.gradcheck(smoothed, (lm, am))
    assert torch.autograd.gradcheck(pruned, (logits,))
    assert torch.autograd.gradcheck(full, (logits,))


# ---------------------------------------------------------------------------------------------
# The "modified" topology, infeasible sequences, dtypes and devices
# ---------------------------------------------------------------------------------------------


def test_modified_loss_matches_brute_force_on_log_softmax():
    batch, frames, num_symbols, classes = 2, 4, 2, 5
    logits, symbols, boundary = random_case(batch, frames, num_symbols, classes, ragged=False, seed=5)
    logits = logits.double()
    log_probs = logits.log_softmax(-1)
    ours = rnnt_loss(logits, symbols, BLANK, rnnt_type="modified", reduction="none")
    for b in range(batch):
        paths = enumerate_paths((0, 0, num_symbols, frames), modified=True)
        scores = [sum(float(log_probs[b, t, s, symbols[b, s] if kind == "x" else BLANK]) for kind, s, t in arcs)
                  for arcs in paths]
        torch.testing.assert_close(ours[b], -torch.tensor(scores, dtype=torch.float64).logsumexp(0))


def test_modified_with_more_symbols_than_frames_is_infinite_and_reported():
    batch, frames, num_symbols, classes = 3, 4, 5, 6
    logits, symbols, _ = random_case(batch, frames, num_symbols, classes, ragged=False)
    logits.requires_grad_(True)
    boundary = make_boundary([3, 5, 2], [4, 4, 3])  # sequence 1 has 5 symbols in 4 frames
    with pytest.warns(UserWarning, match=r"sequences \[1\]"):
        loss = rnnt_loss(logits, symbols, BLANK, boundary, rnnt_type="modified", reduction="none")
    assert torch.isinf(loss[1]) and torch.isfinite(loss[[0, 2]]).all()
    (grad,) = torch.autograd.grad(loss.sum(), logits)
    assert torch.isfinite(grad).all()
    assert (grad[1] == 0).all() and (grad[0] != 0).any()


def test_sequence_without_any_path_gets_zero_gradient_and_others_are_unaffected():
    logits, symbols, boundary = random_case(3, 5, 2, 4, ragged=True, seed=8)
    logits[0, :, :, BLANK] = -math.inf  # sequence 0 can never leave a frame
    logits.requires_grad_(True)
    loss = rnnt_loss(logits, symbols, BLANK, boundary, reduction="none")
    assert torch.isposinf(loss[0]) and torch.isfinite(loss[1:]).all()
    (grad,) = torch.autograd.grad(loss.sum(), logits, retain_graph=True)
    assert (grad[0] == 0).all()
    (others_grad,) = torch.autograd.grad(loss[1:].sum(), logits)
    torch.testing.assert_close(grad, others_grad)


def test_regular_with_more_symbols_than_frames_prunes_with_a_wider_window():
    batch, frames, num_symbols, classes = 2, 3, 8, 10
    _, symbols, boundary = random_case(batch, frames, num_symbols, classes, ragged=False)
    am, lm = torch.randn(batch, frames, classes), torch.randn(batch, num_symbols + 1, classes)
    with pytest.warns(UserWarning, match="using s_range=4"):
        _, pruned, ranges = icefall_losses(am, lm, symbols, boundary, s_range=2)
    assert ranges.shape[2] == 4  # (8 - 1) // 3 + 2
    assert torch.isfinite(pruned).all()


@pytest.mark.parametrize("device", DEVICES)
def test_float64_and_float32_agree(device):
    logits, symbols, boundary = random_case(3, 10, 4, 8, ragged=True)
    logits, symbols, boundary = logits.to(device), symbols.to(device), boundary.to(device)
    loss32 = rnnt_loss(logits, symbols, BLANK, boundary, reduction="none")
    loss64 = rnnt_loss(logits.double(), symbols, BLANK, boundary, reduction="none")
    assert loss32.dtype == torch.float32 and loss64.dtype == torch.float64
    assert loss32.device.type == device
    torch.testing.assert_close(loss32.double(), loss64, rtol=1e-5, atol=1e-5)


def test_smoothed_logprobs_interpolate_the_three_models():
    batch, frames, num_symbols, classes = 2, 3, 2, 5
    gen = torch.Generator().manual_seed(6)
    am = torch.randn(batch, frames, classes, dtype=torch.float64, generator=gen)
    lm = torch.randn(batch, num_symbols + 1, classes, dtype=torch.float64, generator=gen)
    symbols = torch.randint(1, classes, (batch, num_symbols), generator=gen)
    lm_scale, am_scale = 0.25, 0.1
    px, py = get_rnnt_logprobs_smoothed(lm, am, symbols, BLANK, lm_scale, am_scale)

    joint = (lm[:, :, None, :] + am[:, None, :, :]).log_softmax(-1)  # (B, S+1, T, C)
    lm_only = lm.log_softmax(-1)[:, :, None, :].expand_as(joint)
    unigram = lm.softmax(-1).mean(dim=(0, 1))
    am_only = (am + unigram.log()).log_softmax(-1)[:, None, :, :].expand_as(joint)
    mixed = (1 - lm_scale - am_scale) * joint + lm_scale * lm_only + am_scale * am_only
    index = symbols[:, :, None, None].expand(batch, num_symbols, frames, 1)
    torch.testing.assert_close(px[:, :, :frames], mixed[:, :num_symbols].gather(3, index).squeeze(3))
    assert torch.isneginf(px[:, :, frames]).all()
    torch.testing.assert_close(py, mixed[..., BLANK])


# ---------------------------------------------------------------------------------------------
# Pruning ranges
# ---------------------------------------------------------------------------------------------


def test_prune_ranges_are_valid_windows():
    batch, frames, num_symbols, classes, s_range = 6, 40, 15, 20, 4
    _, symbols, boundary = random_case(batch, frames, num_symbols, classes, ragged=True, seed=7)
    boundary[:, 3] = torch.maximum(boundary[:, 3], boundary[:, 2])
    _, _, ranges = icefall_losses(torch.randn(batch, frames, classes), torch.randn(batch, num_symbols + 1, classes),
                                  symbols, boundary, s_range)
    starts = ranges[:, :, 0]
    assert (ranges == starts.unsqueeze(2) + torch.arange(s_range)).all()
    steps = starts[:, 1:] - starts[:, :-1]
    assert (steps >= 0).all() and (steps <= s_range - 1).all()
    assert (starts[:, 0] == 0).all() and (ranges <= num_symbols).all()
    last_frame = boundary[:, 3] - 1
    last_start = starts[torch.arange(batch), last_frame]
    assert (last_start == (boundary[:, 2] - s_range + 1).clamp(min=0)).all()


def reference_prune_starts(px_grad, py_grad, boundary, s_range: int) -> torch.Tensor:
    """k2's window starts (B, T), written cell by cell with Python loops."""
    batch, num_symbols, px_columns = px_grad.shape
    num_frames = py_grad.shape[2]
    max_step = 1 if px_columns == num_frames else s_range - 1
    starts = torch.zeros(batch, num_frames, dtype=torch.long)
    for b in range(batch):
        s_end, t_end = int(boundary[b, 2]), int(boundary[b, 3])
        for t in range(num_frames):
            if t >= t_end - 1:
                starts[b, t] = max(s_end - s_range + 1, 0)
                continue
            scores = [
                float(py_grad[b, s : s + s_range, t].sum()) - (float(px_grad[b, s - 1, t]) if s > 0 else 0.0)
                for s in range(num_symbols + 2 - s_range)
            ]
            starts[b, t] = scores.index(max(scores))
        for t in reversed(range(num_frames - 1)):  # non-decreasing
            starts[b, t] = min(starts[b, t], starts[b, t + 1])
        for t in reversed(range(num_frames - 1)):  # steps of at most max_step
            starts[b, t] = max(starts[b, t], starts[b, t + 1] - max_step)
        for t in range(num_frames):  # reachable from symbol 0 at frame 0
            starts[b, t] = min(starts[b, t], max_step * t)
    return starts


@pytest.mark.parametrize("modified,s_range", [(False, 2), (False, 4), (True, 1), (True, 3)])
def test_prune_ranges_match_a_cell_by_cell_reference(modified, s_range):
    batch, frames, num_symbols = 4, 12, 6
    gen = torch.Generator().manual_seed(10)
    px_grad = torch.rand(batch, num_symbols, frames + (0 if modified else 1), dtype=torch.float64, generator=gen)
    py_grad = torch.rand(batch, num_symbols + 1, frames, dtype=torch.float64, generator=gen)
    boundary = make_boundary([6, 3, 0, 5], [12, 9, 4, 12])
    ranges = get_rnnt_prune_ranges(px_grad, py_grad, boundary, s_range)
    expected = reference_prune_starts(px_grad, py_grad, boundary, s_range)
    assert torch.equal(ranges, expected.unsqueeze(2) + torch.arange(s_range))


def test_prune_ranges_follow_a_certain_alignment():
    """With all occupation on one path, every window holds the path's cells of its frame."""
    frames, num_symbols, s_range = 8, 5, 3
    path_symbol_at_frame_end = [0, 1, 1, 3, 3, 4, 5, 5]  # s after the symbols of frame t
    px_grad = torch.zeros(1, num_symbols, frames + 1)
    py_grad = torch.zeros(1, num_symbols + 1, frames)
    s = 0
    for t, s_after in enumerate(path_symbol_at_frame_end):
        px_grad[0, s:s_after, t] = 1.0
        py_grad[0, s_after, t] = 1.0
        s = s_after
    ranges = get_rnnt_prune_ranges(px_grad, py_grad, make_boundary([num_symbols], [frames]), s_range)
    s = 0
    for t, s_after in enumerate(path_symbol_at_frame_end):
        kept = set(ranges[0, t].tolist())
        assert set(range(s, s_after + 1)) <= kept, (t, kept)
        s = s_after


def test_prune_range_is_capped_at_all_symbols():
    px_grad, py_grad = torch.rand(2, 3, 6), torch.rand(2, 4, 5)
    ranges = get_rnnt_prune_ranges(px_grad, py_grad, None, s_range=10)
    assert (ranges == torch.arange(4)).all()


def test_do_rnnt_pruning_picks_rows_and_back_propagates():
    am = torch.randn(2, 3, 4, requires_grad=True)
    lm = torch.randn(2, 5, 6, requires_grad=True)
    ranges = torch.tensor([[[0, 1], [1, 2], [3, 4]], [[0, 1], [0, 1], [2, 3]]])
    am_pruned, lm_pruned = do_rnnt_pruning(am=am, lm=lm, ranges=ranges)
    assert am_pruned.shape == (2, 3, 2, 4) and lm_pruned.shape == (2, 3, 2, 6)
    expected = torch.stack([lm[b, ranges[b]] for b in range(2)])
    torch.testing.assert_close(lm_pruned, expected)
    torch.testing.assert_close(am_pruned, am[:, :, None, :].expand(-1, -1, 2, -1))
    weight = torch.randn_like(lm_pruned)
    (grad,) = torch.autograd.grad((lm_pruned * weight).sum(), lm)
    (expected_grad,) = torch.autograd.grad((expected * weight).sum(), lm)
    torch.testing.assert_close(grad, expected_grad)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def _lattice():
    return torch.randn(2, 3, 5), torch.randn(2, 4, 4)


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: mutual_information_recursion(torch.randn(2, 3, 7), torch.randn(2, 4, 4)), ValueError, "columns"),
        (lambda: mutual_information_recursion(torch.randn(2, 3, 5), torch.randn(2, 3, 4)), ValueError, "py must"),
        (lambda: mutual_information_recursion(*(x.half() for x in _lattice())), TypeError, "float32 or float64"),
        (lambda: mutual_information_recursion(_lattice()[0], _lattice()[1].double()), TypeError, "dtype"),
        (lambda: mutual_information_recursion(*_lattice(), torch.tensor([[0, 0, 3, 4], [0, 0, 4, 4]])),
         ValueError, r"boundary\[1\]"),
        (lambda: mutual_information_recursion(*_lattice(), torch.tensor([[0, 2, 3, 1], [0, 0, 3, 4]])),
         ValueError, r"boundary\[0\]"),
        (lambda: mutual_information_recursion(*_lattice(), torch.zeros(2, 4)), TypeError, "integer"),
        (lambda: rnnt_loss(torch.randn(2, 4, 3, 5), torch.tensor([[1, 5], [1, 2]]), BLANK), ValueError,
         r"symbols\[0, 1\] = 5"),
        (lambda: rnnt_loss(torch.randn(2, 4, 3, 5), torch.tensor([[1, 2], [1, 2]]), 7), ValueError,
         "termination_symbol"),
        (lambda: rnnt_loss(torch.randn(2, 4, 4, 5), torch.tensor([[1, 2], [1, 2]]), BLANK), ValueError, "S\\+1"),
        (lambda: rnnt_loss(torch.randn(2, 4, 3, 5), torch.tensor([[1.0, 2.0], [1, 2]]), BLANK), TypeError,
         "symbols must be an integer"),
        (lambda: rnnt_loss(torch.randn(2, 4, 3, 5), torch.tensor([[1, 2], [1, 2]]), BLANK, rnnt_type="constrained"),
         ValueError, "rnnt_type"),
        (lambda: rnnt_loss(torch.randn(2, 4, 3, 5), torch.tensor([[1, 2], [1, 2]]), BLANK, reduction="avg"),
         ValueError, "reduction"),
        (lambda: rnnt_loss_simple(torch.randn(2, 3, 5), torch.randn(2, 4, 6), torch.tensor([[1, 2], [1, 2]]),
                                  BLANK), ValueError, "lm must have shape"),
        (lambda: get_rnnt_prune_ranges(*(x.abs() for x in _lattice()), None, s_range=1), ValueError,
         "s_range must be >= 2"),
        (lambda: rnnt_loss_pruned(torch.randn(2, 4, 2, 5), torch.tensor([[1, 2], [1, 2]]),
                                  torch.full((2, 4, 2), 3), BLANK), ValueError, r"ranges must hold"),
        (lambda: do_rnnt_pruning(torch.randn(2, 4, 3), torch.randn(2, 3, 3), torch.zeros(2, 5, 2, dtype=torch.long)),
         ValueError, "ranges must have shape"),
    ],
)
def test_invalid_inputs_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_no_warning_for_feasible_inputs():
    logits, symbols, boundary = random_case(2, 5, 3, 4, ragged=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rnnt_loss(logits, symbols, BLANK, boundary, rnnt_type="modified")
