"""Pruned RNN-T loss in plain PyTorch, with k2's function names, arguments and semantics.

icefall's transducer computes two losses per batch (all in float32):

    simple_loss, (px_grad, py_grad) = rnnt_loss_smoothed(
        lm=lm, am=am, symbols=y_padded, termination_symbol=blank, lm_only_scale=0.25,
        am_only_scale=0.0, boundary=boundary, reduction="sum", return_grad=True)
    ranges = get_rnnt_prune_ranges(px_grad=px_grad, py_grad=py_grad, boundary=boundary, s_range=5)
    am_pruned, lm_pruned = do_rnnt_pruning(am=am_proj, lm=lm_proj, ranges=ranges)
    pruned_loss = rnnt_loss_pruned(logits=joiner(am_pruned, lm_pruned), symbols=y_padded,
                                   ranges=ranges, termination_symbol=blank, boundary=boundary,
                                   reduction="sum")

Every loss reduces its input to two log-probability arrays over the (S+1) x (T+1) lattice of
(symbols emitted, frames consumed) and calls `mutual_information_recursion`:

- `px[b, s, t]`: emit symbol `symbols[b, s]` at lattice cell (s, t);
- `py[b, s, t]`: emit the termination symbol (blank) at (s, t), i.e. move to the next frame.

Topologies (`rnnt_type`): "regular" (a symbol keeps the frame, px is (B, S, T+1) whose column T
is -inf) and "modified" (a symbol also consumes the frame, at most one symbol per frame, px is
(B, S, T)).

How the recursion is vectorized: the cells reached after the same number of arcs form one
"column" of the lattice (an anti-diagonal s + t = n for "regular", a frame t for "modified").
Both predecessors of a cell lie in the previous column, so the Python loop runs over columns
(S + T steps for regular, T for modified) and each step is two batched tensor ops (an add and a
logaddexp) over the whole batch. A per-frame `logcumsumexp` would need fewer steps for
"regular", but it must subtract cumulative sums of px: that is NaN as soon as an arc is -inf
(the pruned cells, the frame after the last one) and loses float32 precision on long
sequences; this recursion is exact, cell by cell, like k2's. The backward scores are the same
recursion on the reversed lattices, run in the same loop (stacked along the batch), and the
gradients are the arc occupation probabilities `exp(alpha + arc + beta - total)`, computed
directly in a custom autograd Function, never by autograd through the loop.
"""

import math
import warnings
from typing import Optional, Tuple, Union

import torch
from torch import Tensor

RNNT_TYPES = ("regular", "modified")
REDUCTIONS = ("none", "mean", "sum")
_NEG_INF = float("-inf")


def _exp_(x: Tensor) -> Tensor:
    """In-place exp of x <= 0 with arguments below log(smallest normal) raised to it first.

    torch's vectorized exp takes a path about 30x slower for arguments whose result is
    subnormal or zero (and 3x slower for -inf), and lattices are full of them; the results
    change by less than the smallest normal float (1.2e-38 in float32).
    """
    return x.clamp_(min=math.log(torch.finfo(x.dtype).tiny)).exp_()


# --------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------


def _check_ndim(name: str, x: Tensor, ndim: int, shape_doc: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape {shape_doc}, got {type(x)}")
    if x.dim() != ndim:
        raise ValueError(f"{name} must have shape {shape_doc}, got {tuple(x.shape)}")


def _check_shape(name: str, x: Tensor, expected: Tuple[int, ...], shape_doc: str) -> None:
    if tuple(x.shape) != tuple(expected):
        raise ValueError(
            f"{name} must have shape {shape_doc} = {tuple(expected)}, got {tuple(x.shape)}"
        )


def _check_float(name: str, x: Tensor) -> None:
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{name} must be float32 or float64, got {x.dtype}")


def _check_same(name: str, x: Tensor, ref_name: str, ref: Tensor) -> None:
    if x.dtype != ref.dtype or x.device != ref.device:
        raise TypeError(
            f"{name} ({x.dtype}, {x.device}) must have the dtype and device of "
            f"{ref_name} ({ref.dtype}, {ref.device})"
        )


def _check_lattice(px_name: str, px: Tensor, py_name: str, py: Tensor) -> Tuple[int, int, int]:
    """Checks px (B, S, T+1) or (B, S, T) and py (B, S+1, T), float32/float64 on one device;
    returns (B, S, T)."""
    _check_ndim(px_name, px, 3, "(B, S, T+1) or (B, S, T)")
    _check_ndim(py_name, py, 3, "(B, S+1, T)")
    _check_float(px_name, px)
    _check_same(py_name, py, px_name, px)
    batch, num_symbols, px_columns = px.shape
    num_frames = py.shape[2]
    _check_shape(py_name, py, (batch, num_symbols + 1, num_frames), "(B, S+1, T)")
    if px_columns not in (num_frames, num_frames + 1):
        raise ValueError(
            f"{px_name} must have T+1 = {num_frames + 1} (regular) or T = {num_frames} (modified) "
            f"columns (T from {py_name} of shape {tuple(py.shape)}), got {tuple(px.shape)}"
        )
    return batch, num_symbols, num_frames


def _check_integer(name: str, x: Tensor) -> None:
    if x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor, got {x.dtype}")


def _check_choice(name: str, value: str, choices: Tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def _check_device(name: str, x: Tensor, ref_name: str, ref: Tensor) -> None:
    if x.device != ref.device:
        raise ValueError(f"{name} is on {x.device}, but {ref_name} is on {ref.device}")


def _check_symbols(
    symbols: Tensor, batch: int, num_symbols: int, num_classes: int, scores_name: str, scores: Tensor
) -> Tensor:
    """Checks `symbols` (B, S) (integers in [0, C), on the device of `scores`); returns it as
    int64."""
    _check_ndim("symbols", symbols, 2, "(B, S)")
    _check_shape("symbols", symbols, (batch, num_symbols), "(B, S)")
    _check_integer("symbols", symbols)
    _check_device("symbols", symbols, scores_name, scores)
    symbols = symbols.long()
    bad = (symbols < 0) | (symbols >= num_classes)
    if symbols.numel() > 0 and bool(bad.any()):
        b, s = bad.nonzero()[0].tolist()
        raise ValueError(
            f"symbols must be in [0, C={num_classes}), got symbols[{b}, {s}] = "
            f"{int(symbols[b, s])}"
        )
    return symbols


def _check_termination_symbol(termination_symbol: int, num_classes: int) -> None:
    if not 0 <= int(termination_symbol) < num_classes:
        raise ValueError(
            f"termination_symbol must be in [0, C={num_classes}), got {termination_symbol}"
        )


def _resolve_boundary(
    boundary: Optional[Tensor], batch: int, num_symbols: int, num_frames: int, device: torch.device
) -> Tensor:
    """Returns boundary (B, 4) int64 rows [s_begin, t_begin, s_end, t_end], default [0, 0, S, T].

    Raises if a row is not inside the (S+1) x (T+1) lattice.
    """
    if boundary is None:
        full = torch.tensor([0, 0, num_symbols, num_frames], device=device)
        return full.expand(batch, 4)
    _check_ndim("boundary", boundary, 2, "(B, 4)")
    _check_shape("boundary", boundary, (batch, 4), "(B, 4)")
    _check_integer("boundary", boundary)
    boundary = boundary.to(device=device, dtype=torch.int64)
    s_begin, t_begin, s_end, t_end = boundary.unbind(1)
    bad = (
        (s_begin < 0) | (s_begin > s_end) | (s_end > num_symbols)
        | (t_begin < 0) | (t_begin > t_end) | (t_end > num_frames)
    )
    if bool(bad.any()):
        row = int(bad.nonzero()[0, 0])
        raise ValueError(
            "boundary rows [s_begin, t_begin, s_end, t_end] must satisfy "
            f"0 <= s_begin <= s_end <= S={num_symbols} and 0 <= t_begin <= t_end <= "
            f"T={num_frames}; got boundary[{row}] = {boundary[row].tolist()}"
        )
    return boundary


def _warn_if_modified_infeasible(boundary: Tensor) -> None:
    """Warns about sequences with more symbols than frames: their "modified" loss is infinite."""
    s_len = boundary[:, 2] - boundary[:, 0]
    t_len = boundary[:, 3] - boundary[:, 1]
    infeasible = (s_len > t_len).nonzero().flatten().tolist()
    if infeasible:
        warnings.warn(
            f"rnnt_type='modified' emits at most one symbol per frame, but sequences "
            f"{infeasible} have more symbols than frames: their loss is infinite "
            f"(and their gradient zero)"
        )


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    """loss: (B,) per-sequence losses -> reduced as `reduction` ("none", "mean", "sum")."""
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean()
    return loss.sum()


# --------------------------------------------------------------------------------------------
# The lattice recursion
# --------------------------------------------------------------------------------------------


def _arc_weights(px: Tensor, py: Tensor, boundary: Tensor, reverse: bool) -> Tensor:
    """Lays the arcs of each sequence's lattice out column by column for `_column_recursion`.

    In local coordinates (s', t') of a sequence's box (origin (s_begin, t_begin), or
    (s_end, t_end) with both axes flipped when `reverse`), column n holds the cells with
    s' + t' = n ("regular") or t' = n ("modified").

    Args:
      px: (B, S, T+1) or (B, S, T) float, symbol arcs (s, t) -> (s+1, t) or (s+1, t+1).
      py: (B, S+1, T) float, blank arcs (s, t) -> (s, t+1).
      boundary: (B, 4) int64.
      reverse: lay out the reversed lattice (arcs flipped), for the backward scores.
    Returns:
      weights: (N, B, 2, S+1) float; weights[n, b, 0, s'] is the symbol arc and
      weights[n, b, 1, s'] the blank arc into local cell (s', column n+1), -inf where the arc
      leaves the box. N = S + T ("regular") or T ("modified").
    """
    batch, num_rows, num_frames = py.shape
    px_columns = px.shape[2]
    modified = px_columns == num_frames
    num_columns = num_frames if modified else num_rows - 1 + num_frames
    device = px.device

    def per_arc_kind(symbol_value: int, blank_value: int) -> Tensor:
        return torch.tensor([symbol_value, blank_value], device=device).view(1, 1, 2, 1)

    row = torch.arange(num_rows, device=device).view(1, 1, 1, -1)
    column = torch.arange(1, num_columns + 1, device=device).view(-1, 1, 1, 1)
    frame = column if modified else column - row
    s_begin, t_begin, s_end, t_end = (x.view(1, -1, 1, 1) for x in boundary.unbind(1))
    # An arc into local (s', t') starts at local (s' - ds, t' - dt), the cell that indexes it.
    ds, dt = per_arc_kind(1, 0), per_arc_kind(int(modified), 1)
    outside = (row < ds) | (row > s_end - s_begin) | (frame < dt) | (frame > t_end - t_begin)
    # Positions in cat(px.flatten(), py.flatten()) (clamped: those outside are masked below),
    # as a per-(sequence, arc kind, row) offset plus or minus the frame.
    source = torch.cat((px.reshape(-1), py.reshape(-1)))
    sequence = torch.arange(batch, device=device).view(1, -1, 1, 1)
    offset = per_arc_kind(0, px.numel()) + sequence * per_arc_kind(
        px.numel() // max(batch, 1), py.numel() // max(batch, 1)
    )
    row_stride = per_arc_kind(px_columns, num_frames)
    if reverse:
        flat = (offset + (s_end - row) * row_stride + t_end) - frame
    else:
        flat = (offset + (s_begin + row - ds) * row_stride + t_begin - dt) + frame
    weights = source.take(flat.clamp_(0, max(source.numel() - 1, 0)))
    return weights.masked_fill_(outside, _NEG_INF)


def _column_recursion(weights: Tensor) -> Tensor:
    """Forward log-scores of all cells, one column of the lattice per step.

    Args:
      weights: (N, B, 2, S+1) float from `_arc_weights`.
    Returns:
      scores: (N+1, B, S+2) float; scores[n, b, 1 + s'] is the log-sum of all paths from local
      (0, 0) to local cell (s', column n); scores[:, :, 0] is a constant -inf guard (the
      predecessor of row 0).
    """
    num_columns, batch, _, num_rows = weights.shape
    scores = weights.new_full((num_columns + 1, batch, num_rows + 1), _NEG_INF)
    scores[0, :, 1] = 0.0
    # windows[n]: (B, 2, S+1), for every row of column n [the row above, the same row]: the
    # sources of the symbol and blank arcs into that row of column n+1. Views made once, so
    # that each step is two tensor ops.
    windows = scores.unfold(2, num_rows, 1).unbind(0)
    for window, arcs, out in zip(windows, weights.unbind(0), scores[1:, :, 1:].unbind(0)):
        via_symbol, via_blank = torch.add(window, arcs).unbind(1)
        torch.logaddexp(via_symbol, via_blank, out=out)
    return scores


def _end_cell(boundary: Tensor, modified: bool) -> Tuple[Tensor, Tensor]:
    """Column and row (B,) int64 of the local cell (s_end - s_begin, t_end - t_begin)."""
    s_len = boundary[:, 2] - boundary[:, 0]
    t_len = boundary[:, 3] - boundary[:, 1]
    return (t_len if modified else s_len + t_len), s_len


def _cell_scores(scores: Tensor, boundary: Tensor, modified: bool, reverse: bool, num_frames: int) -> Tensor:
    """Maps column-major `scores` (N+1, B, S+2) back to lattice cells (B, S+1, T+1), -inf
    outside each sequence's box."""
    _, batch, width = scores.shape
    device = scores.device
    s = torch.arange(width - 1, device=device).view(1, -1, 1)
    t = torch.arange(num_frames + 1, device=device).view(1, 1, -1)
    s_begin, t_begin, s_end, t_end = (x.view(-1, 1, 1) for x in boundary.unbind(1))
    s_local, t_local = (s_end - s, t_end - t) if reverse else (s - s_begin, t - t_begin)
    inside = (s_local >= 0) & (s_local <= s_end - s_begin) & (t_local >= 0) & (t_local <= t_end - t_begin)
    column = (t_local if modified else s_local + t_local).clamp(0, scores.shape[0] - 1)
    sequence = torch.arange(batch, device=device).view(-1, 1, 1)
    cells = scores[column, sequence, 1 + s_local.clamp(0, width - 2)]
    return cells.masked_fill_(~inside, _NEG_INF)


def _occupation(log_arc: Tensor, total: Tensor) -> Tensor:
    """exp(log_arc - total) per sequence; zero where total is not finite or log_arc is NaN.

    log_arc: (B, ...) float, log-sum of the paths through each arc; total: (B,) float.
    """
    shape = (-1,) + (1,) * (log_arc.dim() - 1)
    divisor = torch.where(torch.isfinite(total), total, float("inf")).view(shape)
    log_occupation = log_arc - divisor
    negligible = ~(log_occupation >= math.log(torch.finfo(log_arc.dtype).tiny))  # NaN included
    return _exp_(log_occupation).masked_fill_(negligible, 0.0)


def _scores_and_grads(
    px: Tensor, py: Tensor, boundary: Tensor, with_grads: bool
) -> Tuple[Tensor, Optional[Tensor], Optional[Tensor]]:
    """total (B,) and, if `with_grads`, the occupation probabilities px_grad, py_grad.

    The backward scores are those of the reversed lattices, run in the same loop as the
    forward ones (stacked along the batch), which halves the number of Python steps.
    """
    batch, _, num_frames = py.shape
    modified = px.shape[2] == num_frames
    weights = _arc_weights(px, py, boundary, reverse=False)
    if with_grads:
        weights = torch.cat((weights, _arc_weights(px, py, boundary, reverse=True)), dim=1)
    scores = _column_recursion(weights)
    forward, backward = scores[:, :batch], scores[:, batch:]
    end_column, end_row = _end_cell(boundary, modified)
    total = forward[end_column, torch.arange(batch, device=px.device), end_row + 1]
    if not with_grads:
        return total, None, None
    alpha = _cell_scores(forward, boundary, modified, reverse=False, num_frames=num_frames)
    beta = _cell_scores(backward, boundary, modified, reverse=True, num_frames=num_frames)
    symbol_target = beta[:, 1:, 1:] if modified else beta[:, 1:, :]
    px_grad = _occupation(alpha[:, :-1, : px.shape[2]] + px + symbol_target, total)
    py_grad = _occupation(alpha[:, :, :-1] + py + beta[:, :, 1:], total)
    return total, px_grad, py_grad


class _MutualInformation(torch.autograd.Function):
    """total = log-sum over lattice paths; its gradients are the arc occupation probabilities."""

    @staticmethod
    def forward(ctx, px: Tensor, py: Tensor, boundary: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        total, px_grad, py_grad = _scores_and_grads(px, py, boundary, with_grads=True)
        ctx.save_for_backward(px_grad, py_grad)
        ctx.mark_non_differentiable(px_grad, py_grad)
        return total, px_grad, py_grad

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, total_grad: Tensor, _px_grad: Tensor, _py_grad: Tensor):
        px_grad, py_grad = ctx.saved_tensors
        scale = total_grad.view(-1, 1, 1)
        return px_grad * scale, py_grad * scale, None


def mutual_information_recursion(
    px: Tensor, py: Tensor, boundary: Optional[Tensor] = None, return_grad: bool = False
) -> Union[Tensor, Tuple[Tensor, Tuple[Tensor, Tensor]]]:
    """Log-sum over all monotone paths of the (S+1) x (T+1) lattice, as k2's function.

    Args:
      px: (B, S, T+1) "regular" or (B, S, T) "modified" float32/float64; px[b, s, t] is the
        weight of the arc (s, t) -> (s+1, t) (regular) or (s, t) -> (s+1, t+1) (modified).
      py: (B, S+1, T) float, same dtype and device; py[b, s, t] weights (s, t) -> (s, t+1).
      boundary: (B, 4) int rows [s_begin, t_begin, s_end, t_end] with
        0 <= s_begin <= s_end <= S and 0 <= t_begin <= t_end <= T; None means [0, 0, S, T].
      return_grad: also return (px_grad, py_grad), the gradients of total.sum() with respect
        to px and py, i.e. the arc occupation probabilities (zero for sequences whose total is
        not finite).
    Returns:
      total: (B,) float, p[b, s_end, t_end] of the recursion (log_add(a, b) = log(e^a + e^b))

        p[b, s_begin, t_begin] = 0
        regular:  p[b,s,t] = log_add(p[b,s-1,t] + px[b,s-1,t], p[b,s,t-1] + py[b,s,t-1])
        modified: p[b,s,t] = log_add(p[b,s-1,t-1] + px[b,s-1,t-1], p[b,s,t-1] + py[b,s,t-1])

      with terms outside the box [s_begin, s_end] x [t_begin, t_end] equal to -inf;
      `(total, (px_grad, py_grad))` if return_grad, px_grad shaped as px, py_grad as py.
    """
    batch, num_symbols, num_frames = _check_lattice("px", px, "py", py)
    boundary = _resolve_boundary(boundary, batch, num_symbols, num_frames, px.device)
    needs_grad = torch.is_grad_enabled() and (px.requires_grad or py.requires_grad)
    if not (return_grad or needs_grad):
        total, _, _ = _scores_and_grads(px, py, boundary, with_grads=False)
        return total
    total, px_grad, py_grad = _MutualInformation.apply(px, py, boundary)
    return (total, (px_grad, py_grad)) if return_grad else total


# --------------------------------------------------------------------------------------------
# From RNN-T model outputs to (px, py)
# --------------------------------------------------------------------------------------------


def make_boundary(symbol_lens: Tensor, frame_lens: Tensor) -> Tensor:
    """(B, 4) int64 rows [0, 0, S_b, T_b] from symbol_lens (B,) and frame_lens (B,), as icefall builds them."""
    boundary = torch.zeros(symbol_lens.shape[0], 4, dtype=torch.int64, device=symbol_lens.device)
    boundary[:, 2] = symbol_lens
    boundary[:, 3] = frame_lens
    return boundary


def fix_for_boundary(px: Tensor, boundary: Optional[Tensor] = None) -> Tensor:
    """Sets px[b, :, t_end_b] = -inf: no symbol is emitted after the last frame ("regular").

    Args:
      px: (B, S, T+1) float, regular-topology symbol log-probs (not modified in place).
      boundary: (B, 4) int64 [s_begin, t_begin, s_end, t_end], or None (column T, which is
        -inf by construction, is then the end).
    Returns:
      px: (B, S, T+1) float.
    """
    if boundary is None:
        return px
    frames = torch.arange(px.shape[2], device=px.device).view(1, 1, -1)
    return px.masked_fill(frames == boundary[:, 3].view(-1, 1, 1), _NEG_INF)


def _finish_px(px: Tensor, boundary: Optional[Tensor], rnnt_type: str) -> Tensor:
    """px (B, S, T) -> (B, S, T+1) with the -inf end column for "regular"; as is for "modified"."""
    if rnnt_type == "modified":
        return px
    end_column = px.new_full((px.shape[0], px.shape[1], 1), _NEG_INF)
    return fix_for_boundary(torch.cat((px, end_column), dim=2), boundary)


def _check_simple_inputs(
    lm: Tensor, am: Tensor, symbols: Tensor, termination_symbol: int,
    boundary: Optional[Tensor], rnnt_type: str,
) -> Tuple[Tensor, Optional[Tensor]]:
    """Checks the inputs of the "trivial joiner" losses; returns (symbols int64, boundary)."""
    _check_ndim("lm", lm, 3, "(B, S+1, C)")
    _check_ndim("am", am, 3, "(B, T, C)")
    _check_float("am", am)
    _check_same("lm", lm, "am", am)
    batch, num_frames, num_classes = am.shape
    num_symbols = lm.shape[1] - 1
    _check_shape("lm", lm, (batch, num_symbols + 1, num_classes), "(B, S+1, C)")
    _check_choice("rnnt_type", rnnt_type, RNNT_TYPES)
    _check_termination_symbol(termination_symbol, num_classes)
    symbols = _check_symbols(symbols, batch, num_symbols, num_classes, "am", am)
    if boundary is not None or rnnt_type == "modified":
        boundary = _resolve_boundary(boundary, batch, num_symbols, num_frames, am.device)
    if rnnt_type == "modified":
        _warn_if_modified_infeasible(boundary)
    return symbols, boundary


def _shifted_exp(x: Tensor) -> Tuple[Tensor, Tensor]:
    """x: (B, N, C) -> (exp(x - x_max), x_max (B, N, 1)); x_max is detached (it cancels out).

    Differences below log(smallest normal) are raised to it (see `_exp_`)."""
    x_max = x.detach().amax(dim=2, keepdim=True)
    x_max = torch.where(torch.isfinite(x_max), x_max, 0.0)
    return (x - x_max).clamp(min=math.log(torch.finfo(x.dtype).tiny)).exp(), x_max


def _joint_log_normalizers(lm_exp: Tensor, lm_max: Tensor, am_exp: Tensor, am_max: Tensor) -> Tensor:
    """log sum_c exp(lm[b, s, c] + am[b, t, c]) as (B, S+1, T), via one batched matmul."""
    tiny = torch.finfo(am_exp.dtype).tiny
    return (lm_exp @ am_exp.transpose(1, 2) + tiny).log() + lm_max + am_max.transpose(1, 2)


def _trivial_joiner_scores(
    lm: Tensor, am: Tensor, symbols: Tensor, termination_symbol: int
) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Unnormalized parts of the symbol and blank log-probs of the joiner lm + am.

    Returns px_am (B, S, T) = am[b, t, y_s], px_lm (B, S, 1) = lm[b, s, y_s],
    py_am (B, 1, T) = am[b, t, blank], py_lm (B, S+1, 1) = lm[b, s, blank].
    """
    batch, num_symbols = symbols.shape
    num_frames = am.shape[1]
    index = symbols.unsqueeze(2)
    px_am = am.transpose(1, 2).gather(1, index.expand(batch, num_symbols, num_frames))
    px_lm = lm[:, :num_symbols].gather(2, index)
    py_am = am[:, :, termination_symbol].unsqueeze(1)
    py_lm = lm[:, :, termination_symbol].unsqueeze(2)
    return px_am, px_lm, py_am, py_lm


def get_rnnt_logprobs(
    lm: Tensor, am: Tensor, symbols: Tensor, termination_symbol: int,
    boundary: Optional[Tensor] = None, rnnt_type: str = "regular",
) -> Tuple[Tensor, Tensor]:
    """(px, py) of the RNN-T whose joiner is the sum lm + am, followed by log-softmax over C.

    Args:
      lm: (B, S+1, C) float, prediction-network part of the logits (lm[b, s] given symbols < s).
      am: (B, T, C) float, encoder part of the logits.
      symbols: (B, S) int64 in [0, C), padded arbitrarily beyond each sequence's length.
      termination_symbol: the blank id, in [0, C).
      boundary: (B, 4) int64 [s_begin, t_begin, s_end, t_end] or None for [0, 0, S, T].
      rnnt_type: "regular" or "modified".
    Returns:
      px: (B, S, T+1) ("regular", -inf at t = t_end) or (B, S, T) ("modified"),
        px[b, s, t] = log_softmax(lm[b, s] + am[b, t])[y_s];
      py: (B, S+1, T), py[b, s, t] = log_softmax(lm[b, s] + am[b, t])[blank].
    """
    return get_rnnt_logprobs_smoothed(
        lm, am, symbols, termination_symbol, lm_only_scale=0.0, am_only_scale=0.0,
        boundary=boundary, rnnt_type=rnnt_type,
    )


def rnnt_loss_simple(
    lm: Tensor, am: Tensor, symbols: Tensor, termination_symbol: int,
    boundary: Optional[Tensor] = None, rnnt_type: str = "regular",
    reduction: str = "mean", return_grad: bool = False,
) -> Union[Tensor, Tuple[Tensor, Tuple[Tensor, Tensor]]]:
    """RNN-T loss of the "trivial joiner" lm + am (arguments as `get_rnnt_logprobs`).

    Args:
      reduction: "none" (per-sequence loss (B,)), "mean" or "sum" over the batch.
      return_grad: also return (px_grad, py_grad), the occupation probabilities of the arcs,
        shaped as px and py (see `mutual_information_recursion`), for `get_rnnt_prune_ranges`.
    Returns:
      loss, or (loss, (px_grad, py_grad)) if return_grad.
    """
    _check_choice("reduction", reduction, REDUCTIONS)
    px, py = get_rnnt_logprobs(lm, am, symbols, termination_symbol, boundary, rnnt_type)
    return _loss_from_logprobs(px, py, boundary, reduction, return_grad)


def _loss_from_logprobs(
    px: Tensor, py: Tensor, boundary: Optional[Tensor], reduction: str, return_grad: bool
) -> Union[Tensor, Tuple[Tensor, Tuple[Tensor, Tensor]]]:
    """-mutual_information_recursion(px, py), reduced; with the occupation probabilities if
    return_grad."""
    result = mutual_information_recursion(px=px, py=py, boundary=boundary, return_grad=return_grad)
    if return_grad:
        total, grads = result
        return _reduce(-total, reduction), grads
    return _reduce(-result, reduction)


def get_rnnt_logprobs_smoothed(
    lm: Tensor, am: Tensor, symbols: Tensor, termination_symbol: int,
    lm_only_scale: float = 0.1, am_only_scale: float = 0.1,
    boundary: Optional[Tensor] = None, rnnt_type: str = "regular",
) -> Tuple[Tensor, Tensor]:
    """(px, py) of the joiner lm + am (`get_rnnt_logprobs`) interpolated in log space with two
    other models:

        (1 - lm_only_scale - am_only_scale) * log p_joint
        + lm_only_scale * log p_lm        (softmax of lm alone)
        + am_only_scale * log p_am        (am combined with a unigram LM: the softmax of lm
                                           averaged over all (b, s), padding included)

    Arguments and shapes as `get_rnnt_logprobs`. A term with scale 0 is left out (k2 instead
    scales it by 1e-20 to avoid 0 * -inf; the results agree whenever that term is finite).
    """
    symbols, boundary = _check_simple_inputs(lm, am, symbols, termination_symbol, boundary, rnnt_type)
    lm_exp, lm_max = _shifted_exp(lm)
    am_exp, am_max = _shifted_exp(am)
    normalizers = _joint_log_normalizers(lm_exp, lm_max, am_exp, am_max)
    px_am, px_lm, py_am, py_lm = _trivial_joiner_scores(lm, am, symbols, termination_symbol)
    joint_scale = 1.0 - lm_only_scale - am_only_scale
    px = joint_scale * (px_am + px_lm - normalizers[:, :-1])
    py = joint_scale * (py_am + py_lm - normalizers)
    lm_sums = lm_exp.sum(dim=2, keepdim=True)
    if lm_only_scale != 0.0:
        lm_only_normalizers = lm_sums.log() + lm_max
        px = px + lm_only_scale * (px_lm - lm_only_normalizers[:, :-1])
        py = py + lm_only_scale * (py_lm - lm_only_normalizers)
    if am_only_scale != 0.0:
        unigram = (lm_exp / lm_sums).mean(dim=(0, 1)) + torch.finfo(lm.dtype).tiny
        am_only_normalizers = ((am_exp @ unigram).log() + am_max.squeeze(2)).unsqueeze(1)
        log_unigram = unigram.log()
        px_unigram = log_unigram[symbols].unsqueeze(2)
        py_unigram = log_unigram[termination_symbol]
        px = px + am_only_scale * (px_am + px_unigram - am_only_normalizers)
        py = py + am_only_scale * (py_am + py_unigram - am_only_normalizers)
    return _finish_px(px, boundary, rnnt_type), py


def rnnt_loss_smoothed(
    lm: Tensor, am: Tensor, symbols: Tensor, termination_symbol: int,
    lm_only_scale: float = 0.1, am_only_scale: float = 0.1,
    boundary: Optional[Tensor] = None, rnnt_type: str = "regular",
    reduction: str = "mean", return_grad: bool = False,
) -> Union[Tensor, Tuple[Tensor, Tuple[Tensor, Tensor]]]:
    """RNN-T loss of `get_rnnt_logprobs_smoothed`; `reduction` and `return_grad` as in
    `rnnt_loss_simple`. icefall: lm_only_scale=0.25, am_only_scale=0.0, reduction="sum",
    return_grad=True."""
    _check_choice("reduction", reduction, REDUCTIONS)
    px, py = get_rnnt_logprobs_smoothed(
        lm, am, symbols, termination_symbol, lm_only_scale, am_only_scale, boundary, rnnt_type
    )
    return _loss_from_logprobs(px, py, boundary, reduction, return_grad)


# --------------------------------------------------------------------------------------------
# Pruning
# --------------------------------------------------------------------------------------------


def _reverse_cummin(x: Tensor) -> Tensor:
    """x: (B, T) -> y with y[b, t] = min over t' >= t of x[b, t']."""
    return x.flip(1).cummin(dim=1).values.flip(1)


def _adjust_pruning_lower_bound(s_begin: Tensor, max_step: int) -> Tensor:
    """Makes s_begin (B, T) non-decreasing in t, with steps of at most `max_step` and
    s_begin[:, t] <= max_step * t (so the window of frame 0 starts at symbol 0).

    Non-decreasing: reverse cummin. Step bound: x[t] = max_step * t - s_begin[t] is
    non-decreasing iff s_begin[t+1] - s_begin[t] <= max_step, so a reverse cummin of x raises
    the earlier windows where needed; clamping x at 0 gives s_begin[t] <= max_step * t.
    """
    s_begin = _reverse_cummin(s_begin)
    offsets = max_step * torch.arange(s_begin.shape[1], device=s_begin.device)
    shifted = _reverse_cummin(offsets - s_begin).clamp(min=0)
    return offsets - shifted


def _effective_s_range(s_range: int, boundary: Tensor, num_symbols: int, modified: bool) -> int:
    """Checks s_range and adjusts it as k2 does (see `get_rnnt_prune_ranges`)."""
    min_range = 1 if modified else 2
    if s_range < min_range:
        raise ValueError(
            f"s_range must be >= {min_range} for {'modified' if modified else 'regular'} "
            f"RNN-T (no path survives a smaller window), got {s_range}"
        )
    if not modified and boundary.shape[0] > 0:
        # A window moves by at most s_range - 1 symbols per frame.
        s_len = boundary[:, 2] - boundary[:, 0]
        t_len = (boundary[:, 3] - boundary[:, 1]).clamp(min=1)
        needed = int(((s_len - 1).div(t_len, rounding_mode="floor") + 2).max())
        if needed > s_range:
            warnings.warn(
                f"s_range={s_range} cannot cover a sequence with more than s_range - 1 symbols "
                f"per frame; using s_range={needed}"
            )
            s_range = needed
    return min(s_range, num_symbols + 1)


def get_rnnt_prune_ranges(
    px_grad: Tensor, py_grad: Tensor, boundary: Optional[Tensor], s_range: int
) -> Tensor:
    """Per frame, the window of `s_range` consecutive symbol positions to keep.

    The window of frame t starts at the s maximizing
    sum_{k < s_range} py_grad[b, s+k, t] - px_grad[b, s-1, t] (the blank occupation inside the
    window minus the probability of entering it on this frame); frames t >= t_end - 1 use
    max(s_end - s_range + 1, 0); then starts are made non-decreasing with steps <= s_range - 1
    (regular) or <= 1 (modified), as k2 does.

    Args:
      px_grad: (B, S, T+1) (regular) or (B, S, T) (modified) float, occupation probabilities
        of the symbol arcs (from `rnnt_loss_smoothed(..., return_grad=True)`).
      py_grad: (B, S+1, T) float, occupation probabilities of the blank arcs.
      boundary: (B, 4) int64 [s_begin, t_begin, s_end, t_end] or None for [0, 0, S, T].
      s_range: window size; must be >= 2 (regular) or >= 1 (modified). Raised (with a
        warning) to (S_b - 1) // T_b + 2 if a regular sequence has too many symbols per frame
        to be reachable; lowered to S + 1 if larger.
    Returns:
      ranges: (B, T, s_range) int64, ranges[b, t, k] = s_begin[b, t] + k, all in [0, S].
    """
    batch, num_symbols, num_frames = _check_lattice("px_grad", px_grad, "py_grad", py_grad)
    modified = px_grad.shape[2] == num_frames
    boundary = _resolve_boundary(boundary, batch, num_symbols, num_frames, px_grad.device)
    s_range = _effective_s_range(s_range, boundary, num_symbols, modified)

    # (B, S+2-s_range, T): blank occupation inside each window, minus entering it at frame t.
    window_blank = py_grad.unfold(1, s_range, 1).sum(dim=3)
    enter = torch.cat((px_grad.new_zeros(batch, 1, num_frames), px_grad[:, :, :num_frames]), dim=1)
    score = window_blank - enter[:, : window_blank.shape[1]]
    s_begin = score.argmax(dim=1)

    frames = torch.arange(num_frames, device=px_grad.device).view(1, -1)
    last_window = (boundary[:, 2:3] - s_range + 1).clamp(min=0)
    s_begin = torch.where(frames < boundary[:, 3:4] - 1, s_begin, last_window)
    s_begin = _adjust_pruning_lower_bound(s_begin, 1 if modified else s_range - 1)
    return s_begin.unsqueeze(2) + torch.arange(s_range, device=px_grad.device)


def _check_ranges(
    ranges: Tensor, batch: int, num_frames: int, num_symbols: int, scores_name: str, scores: Tensor
) -> None:
    """Checks ranges (B, T, s_range): integer symbol positions in [0, S] on the device of
    `scores`."""
    _check_ndim("ranges", ranges, 3, "(B, T, s_range)")
    _check_integer("ranges", ranges)
    _check_device("ranges", ranges, scores_name, scores)
    if ranges.shape[:2] != (batch, num_frames):
        raise ValueError(
            f"ranges must have shape (B, T, s_range) with (B, T) = {(batch, num_frames)}, "
            f"got {tuple(ranges.shape)}"
        )
    if ranges.numel() > 0 and bool(((ranges < 0) | (ranges > num_symbols)).any()):
        raise ValueError(
            f"ranges must hold symbol positions in [0, S={num_symbols}], got values in "
            f"[{int(ranges.min())}, {int(ranges.max())}]"
        )


def do_rnnt_pruning(am: Tensor, lm: Tensor, ranges: Tensor) -> Tuple[Tensor, Tensor]:
    """Picks, for each frame, the `s_range` prediction-network outputs in its window.

    Args:
      am: (B, T, D_am) float, encoder output (projected for the joiner).
      lm: (B, S+1, D_lm) float, prediction-network output (projected for the joiner).
      ranges: (B, T, s_range) int64 from `get_rnnt_prune_ranges`.
    Returns:
      am_pruned: (B, T, s_range, D_am), an expanded view of am;
      lm_pruned: (B, T, s_range, D_lm), lm_pruned[b, t, k] = lm[b, ranges[b, t, k]].
    """
    _check_ndim("am", am, 3, "(B, T, D_am)")
    _check_ndim("lm", lm, 3, "(B, S+1, D_lm)")
    batch, num_rows, lm_dim = lm.shape
    _check_ranges(ranges, batch, am.shape[1], num_rows - 1, "lm", lm)
    if am.shape[0] != batch:
        raise ValueError(f"am and lm must have the same batch size, got {am.shape[0]} and {batch}")
    s_range = ranges.shape[2]
    am_pruned = am.unsqueeze(2).expand(-1, -1, s_range, -1)
    # An embedding lookup: its backward accumulates into (B*(S+1), D_lm) rows directly, unlike
    # gather on an expanded (B, T, S+1, D_lm) view, whose backward materializes that view.
    rows = ranges.long() + num_rows * torch.arange(batch, device=ranges.device).view(-1, 1, 1)
    lm_pruned = torch.nn.functional.embedding(rows, lm.reshape(batch * num_rows, lm_dim))
    return am_pruned, lm_pruned


class _LogSoftmaxGather(torch.autograd.Function):
    """log_softmax(logits, -1).gather(-1, classes), without a full-size log_softmax output.

    Its backward writes the logits' gradient into one new tensor (the softmax, scaled in place),
    so a pass needs memory for the logits and one gradient of their size, and nothing else.
    """

    @staticmethod
    def forward(ctx, logits: Tensor, classes: Tensor) -> Tensor:
        log_norm = _logsumexp_last_dim(logits)
        ctx.save_for_backward(logits, log_norm, classes)
        return logits.gather(-1, classes) - log_norm

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        logits, log_norm, classes = ctx.saved_tensors
        # d/dlogits = onehot(classes) . grad - softmax(logits) * grad.sum(-1)
        logits_grad = _exp_(torch.sub(logits, log_norm)).mul_(-grad.sum(dim=-1, keepdim=True))
        logits_grad.scatter_add_(-1, classes, grad)
        return logits_grad, None


# Rows of logits are normalized in chunks of about this many elements, so that the temporary
# exp() buffer stays small next to the logits (B, T, s_range, C) themselves.
_LOGSUMEXP_CHUNK_ELEMENTS = 1 << 21


def _logsumexp_last_dim(x: Tensor, chunk_elements: int = _LOGSUMEXP_CHUNK_ELEMENTS) -> Tensor:
    """x: (..., C) -> (..., 1) log sum exp over C (-inf for an all -inf row), in chunks of about
    `chunk_elements` elements (the only temporary buffer of that size)."""
    rows = x.reshape(-1, x.shape[-1])
    rows_per_chunk = max(1, chunk_elements // max(1, x.shape[-1]))
    chunks = []
    for chunk in rows.split(rows_per_chunk):
        chunk_max = chunk.amax(dim=-1, keepdim=True)
        chunk_max = torch.where(torch.isfinite(chunk_max), chunk_max, 0.0)
        chunks.append(_exp_(torch.sub(chunk, chunk_max)).sum(dim=-1, keepdim=True).log_().add_(chunk_max))
    return torch.cat(chunks).view(x.shape[:-1] + (1,))


def _unprune(values: Tensor, ranges: Tensor, num_rows: int) -> Tensor:
    """values (B, T, R) at rows ranges (B, T, R) -> (B, num_rows, T), -inf at rows not kept."""
    batch, num_frames, _ = values.shape
    full = values.new_full((batch, num_rows, num_frames), _NEG_INF)
    return full.scatter(1, ranges.transpose(1, 2), values.transpose(1, 2))


def _pruned_logprobs(
    logits: Tensor, symbols: Tensor, ranges: Tensor, termination_symbol: int,
    boundary: Optional[Tensor], rnnt_type: str,
) -> Tuple[Tensor, Tensor]:
    """(px, py) from logits (B, T, R, C) of the lattice rows ranges (B, T, R) (checked inputs)."""
    batch, num_frames, s_range, _ = logits.shape
    num_symbols = symbols.shape[1]
    termination = symbols.new_full((batch, 1), termination_symbol)
    symbols_and_end = torch.cat((symbols, termination), dim=1)
    window_symbols = symbols_and_end.gather(1, ranges.reshape(batch, -1)).view(ranges.shape)
    blanks = termination.view(batch, 1, 1).expand(batch, num_frames, s_range)
    classes = torch.stack((window_symbols, blanks), dim=3)
    logprobs = _LogSoftmaxGather.apply(logits, classes)
    px = _unprune(logprobs[..., 0], ranges, num_symbols + 1)[:, :num_symbols]
    py = _unprune(logprobs[..., 1], ranges, num_symbols + 1)
    return _finish_px(px, boundary, rnnt_type), py


def _check_joiner_inputs(
    logits: Tensor, symbols: Tensor, termination_symbol: int,
    boundary: Optional[Tensor], rnnt_type: str,
) -> Tuple[Tensor, Optional[Tensor]]:
    """Checks the inputs of the losses on joiner logits (B, T, R, C); returns (symbols int64,
    boundary)."""
    _check_ndim("logits", logits, 4, "(B, T, s_range, C)")
    _check_float("logits", logits)
    _check_choice("rnnt_type", rnnt_type, RNNT_TYPES)
    batch, num_frames, _, num_classes = logits.shape
    _check_ndim("symbols", symbols, 2, "(B, S)")
    num_symbols = symbols.shape[1]
    _check_termination_symbol(termination_symbol, num_classes)
    symbols = _check_symbols(symbols, batch, num_symbols, num_classes, "logits", logits)
    if boundary is not None or rnnt_type == "modified":
        boundary = _resolve_boundary(boundary, batch, num_symbols, num_frames, logits.device)
    if rnnt_type == "modified":
        _warn_if_modified_infeasible(boundary)
    return symbols, boundary


def get_rnnt_logprobs_pruned(
    logits: Tensor, symbols: Tensor, ranges: Tensor, termination_symbol: int,
    boundary: Optional[Tensor] = None, rnnt_type: str = "regular",
) -> Tuple[Tensor, Tensor]:
    """(px, py) of the pruned lattice: -inf outside each frame's window. Arguments as
    `rnnt_loss_pruned`; returns px (B, S, T+1) or (B, S, T), py (B, S+1, T)."""
    symbols, boundary = _check_joiner_inputs(logits, symbols, termination_symbol, boundary, rnnt_type)
    _check_ranges(ranges, logits.shape[0], logits.shape[1], symbols.shape[1], "logits", logits)
    if ranges.shape[2] != logits.shape[2]:
        raise ValueError(
            f"ranges (B, T, s_range) and logits (B, T, s_range, C) disagree on s_range: "
            f"{tuple(ranges.shape)} vs {tuple(logits.shape)}"
        )
    return _pruned_logprobs(logits, symbols, ranges.long(), termination_symbol, boundary, rnnt_type)


def rnnt_loss_pruned(
    logits: Tensor, symbols: Tensor, ranges: Tensor, termination_symbol: int,
    boundary: Optional[Tensor] = None, rnnt_type: str = "regular", reduction: str = "mean",
) -> Tensor:
    """RNN-T loss over the pruned lattice (paths leaving the windows are dropped).

    Args:
      logits: (B, T, s_range, C) float, joiner output for the windows
        (joiner(*do_rnnt_pruning(am, lm, ranges))).
      symbols: (B, S) int64 in [0, C).
      ranges: (B, T, s_range) int64 from `get_rnnt_prune_ranges`.
      termination_symbol: blank id in [0, C).
      boundary: (B, 4) int64 [s_begin, t_begin, s_end, t_end] or None for [0, 0, S, T].
      rnnt_type: "regular" or "modified".
      reduction: "none" ((B,) losses), "mean" or "sum".
    Returns:
      loss, reduced as `reduction`.
    """
    _check_choice("reduction", reduction, REDUCTIONS)
    px, py = get_rnnt_logprobs_pruned(logits, symbols, ranges, termination_symbol, boundary, rnnt_type)
    return _loss_from_logprobs(px, py, boundary, reduction, return_grad=False)


def get_rnnt_logprobs_joint(
    logits: Tensor, symbols: Tensor, termination_symbol: int,
    boundary: Optional[Tensor] = None, rnnt_type: str = "regular",
) -> Tuple[Tensor, Tensor]:
    """(px, py) of the full lattice from logits (B, T, S+1, C); arguments as `rnnt_loss`."""
    symbols, boundary = _check_joiner_inputs(logits, symbols, termination_symbol, boundary, rnnt_type)
    batch, num_frames, num_rows, _ = logits.shape
    if num_rows != symbols.shape[1] + 1:
        raise ValueError(
            f"logits must have shape (B, T, S+1, C) with S = {symbols.shape[1]} from symbols, "
            f"got {tuple(logits.shape)}"
        )
    all_rows = torch.arange(num_rows, device=logits.device).expand(batch, num_frames, num_rows)
    return _pruned_logprobs(logits, symbols, all_rows, termination_symbol, boundary, rnnt_type)


def rnnt_loss(
    logits: Tensor, symbols: Tensor, termination_symbol: int,
    boundary: Optional[Tensor] = None, rnnt_type: str = "regular", reduction: str = "mean",
) -> Tensor:
    """The full RNN-T loss.

    Args:
      logits: (B, T, S+1, C) float, joiner output for every (frame, symbol position).
      symbols, termination_symbol, boundary, rnnt_type, reduction: as in `rnnt_loss_pruned`.
    Returns:
      loss, reduced as `reduction`.
    """
    _check_choice("reduction", reduction, REDUCTIONS)
    px, py = get_rnnt_logprobs_joint(logits, symbols, termination_symbol, boundary, rnnt_type)
    return _loss_from_logprobs(px, py, boundary, reduction, return_grad=False)
