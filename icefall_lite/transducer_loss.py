"""The exact RNN-T loss on packed logits, with optimized_transducer's interface, in plain PyTorch.

optimized_transducer (the k2 team's predecessor of the pruned loss) saves memory in two ways, both kept here:

- logits are packed without padding: utterance i contributes one block of T_i x (U_i + 1) rows, in row-major
  (t, u) order, so a batch holds sum_i T_i * (U_i + 1) rows of V logits instead of N * T_max * (U_max + 1);
- the loss keeps nothing of the logits' size but the logits themselves: the log-softmax normalizer is one number
  per row, and the backward writes the gradient into the logits' own storage (when the logits are an
  intermediate result of the graph, see `transducer_loss`).

Usage::

    logits = joiner(pack_pairs(encoder_out, decoder_out, logit_lengths, target_lengths))   # (R, V)
    loss = transducer_loss(logits, targets, logit_lengths, target_lengths, blank=0, reduction="sum")

The lattice arithmetic (the forward-backward recursion and the arc occupation probabilities) is
`icefall_lite.rnnt_loss`'s: per row, only the log-probabilities of the row's target symbol and of blank enter it.

`chunked_transducer_loss` goes further, for training: it takes the joiner instead of its output, runs it on a few
thousand packed rows at a time and keeps only each row's two log-probabilities; the backward recomputes each chunk
(`torch.utils.checkpoint`), so the logits never exist whole, not even once::

    loss = chunked_transducer_loss(joiner.logits_of_sum, encoder_proj, decoder_proj, targets, logit_lengths,
                                   target_lengths, num_classes=V, blank=0, reduction="sum")
"""

from typing import Callable, Optional, Tuple

import torch
import torch.utils.checkpoint
from torch import Tensor

from icefall_lite.rnnt_loss import (
    REDUCTIONS,
    _check_choice,
    _check_device,
    _check_integer,
    _check_ndim,
    _exp_,
    _LogSoftmaxGather,
    _logsumexp_last_dim,
    _reduce,
    _scores_and_grads,
    _warn_if_modified_infeasible,
    make_boundary,
    mutual_information_recursion,
)

_NEG_INF = float("-inf")
# Rows are normalized and differentiated in chunks of about this many elements: the only temporary buffer of
# the loss stays at 1 MiB (float32), whatever the size of the logits.
_CHUNK_ELEMENTS = 1 << 18


def _row_chunks(num_rows: int, num_classes: int):
    """Slices of rows covering [0, num_rows), each of about `_CHUNK_ELEMENTS` elements."""
    step = max(1, _CHUNK_ELEMENTS // max(num_classes, 1))
    return (slice(start, min(start + step, num_rows)) for start in range(0, num_rows, step))


def packed_row_count(logit_lengths: Tensor, target_lengths: Tensor) -> int:
    """sum_i T_i * (U_i + 1): the rows of packed logits for these lengths (both (N,) int)."""
    return int((logit_lengths.long() * (target_lengths.long() + 1)).sum())


def packed_cell_mask(logit_lengths: Tensor, target_lengths: Tensor) -> Tensor:
    """(N, T_max, U_max + 1) bool, True at the valid cells t < T_i, u <= U_i.

    Selecting a (N, T_max, U_max + 1) tensor with this mask yields its values in the packed row order.
    """
    frames = torch.arange(int(logit_lengths.max()), device=logit_lengths.device).view(1, -1, 1)
    rows = torch.arange(int(target_lengths.max()) + 1, device=logit_lengths.device).view(1, 1, -1)
    return (frames < logit_lengths.view(-1, 1, 1)) & (rows <= target_lengths.view(-1, 1, 1))


def packed_pair_indices(logit_lengths: Tensor, target_lengths: Tensor) -> Tuple[Tensor, Tensor]:
    """For each packed row, the encoder frame and the decoder position it combines.

    Args:
      logit_lengths: (N,) int, T_i; target_lengths: (N,) int, U_i.
    Returns:
      frame_index: (R,) int64 into encoder_out.reshape(N * T_max, D), R = sum_i T_i * (U_i + 1);
      symbol_index: (R,) int64 into decoder_out.reshape(N * (U_max + 1), D).
    """
    return _pair_indices_of_mask(packed_cell_mask(logit_lengths, target_lengths))


def _pair_indices_of_mask(mask: Tensor) -> Tuple[Tensor, Tensor]:
    """`packed_pair_indices` from the (N, T_max, U_max + 1) cell mask."""
    batch, num_frames, num_rows = mask.shape
    device = mask.device
    utterance = torch.arange(batch, device=device).view(-1, 1, 1)
    frame = (utterance * num_frames + torch.arange(num_frames, device=device).view(1, -1, 1)).expand_as(mask)
    symbol = (utterance * num_rows + torch.arange(num_rows, device=device).view(1, 1, -1)).expand_as(mask)
    return frame[mask], symbol[mask]


class _GatherSum(torch.autograd.Function):
    """a[a_index] + b[b_index], filled chunk by chunk so that no second full-size buffer exists."""

    @staticmethod
    def forward(ctx, a: Tensor, a_index: Tensor, b: Tensor, b_index: Tensor) -> Tensor:
        out = a.new_empty(a_index.shape[0], a.shape[1])
        for rows in _row_chunks(out.shape[0], out.shape[1]):
            torch.index_select(a, 0, a_index[rows], out=out[rows])
            out[rows] += b.index_select(0, b_index[rows])
        ctx.save_for_backward(a_index, b_index)
        ctx.sizes = (a.shape[0], b.shape[0])
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        a_index, b_index = ctx.saved_tensors
        a_rows, b_rows = ctx.sizes
        a_grad = grad.new_zeros(a_rows, grad.shape[1]).index_add_(0, a_index, grad)
        b_grad = grad.new_zeros(b_rows, grad.shape[1]).index_add_(0, b_index, grad)
        return a_grad, None, b_grad, None


def pack_pairs(encoder_out: Tensor, decoder_out: Tensor, logit_lengths: Tensor, target_lengths: Tensor) -> Tensor:
    """encoder_out[i, t] + decoder_out[i, u] for every valid (t, u) of every utterance, packed.

    Args:
      encoder_out: (N, T_max, D) float (projected for the joiner); decoder_out: (N, U_max + 1, D) float;
      logit_lengths: (N,) int, T_i <= T_max; target_lengths: (N,) int, U_i <= U_max.
    Returns:
      (sum_i T_i * (U_i + 1), D) float, utterance i's rows in row-major (t, u) order: what `transducer_loss`
      expects after the joiner's nonlinearity and output layer.
    """
    _check_pair_inputs(encoder_out, decoder_out, logit_lengths, target_lengths)
    frame_index, symbol_index = packed_pair_indices(logit_lengths, target_lengths)
    dim = encoder_out.shape[2]
    return _GatherSum.apply(encoder_out.reshape(-1, dim), frame_index, decoder_out.reshape(-1, dim), symbol_index)


def _check_pair_inputs(encoder_out: Tensor, decoder_out: Tensor, logit_lengths: Tensor, target_lengths: Tensor) -> None:
    """encoder_out (N, T_max, D) and decoder_out (N, U_max + 1, D) agree, and the lengths fit them."""
    _check_ndim("encoder_out", encoder_out, 3, "(N, T_max, D)")
    _check_ndim("decoder_out", decoder_out, 3, "(N, U_max + 1, D)")
    if encoder_out.shape[0] != decoder_out.shape[0] or encoder_out.shape[2] != decoder_out.shape[2]:
        raise ValueError(
            f"encoder_out (N, T_max, D) and decoder_out (N, U_max + 1, D) must agree on N and D, got "
            f"{tuple(encoder_out.shape)} and {tuple(decoder_out.shape)}"
        )
    _check_lengths(
        logit_lengths, target_lengths, encoder_out.shape[0], decoder_out.shape[1] - 1, "encoder_out", encoder_out
    )
    if int(logit_lengths.max()) > encoder_out.shape[1]:
        raise ValueError(
            f"logit_lengths must be <= T_max = {encoder_out.shape[1]} (encoder_out's frames), "
            f"got {int(logit_lengths.max())}"
        )


# --------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------


def _check_lengths(
    logit_lengths: Tensor, target_lengths: Tensor, batch: int, max_targets: int, ref_name: str, ref: Tensor
) -> None:
    """Checks logit_lengths and target_lengths: (N,) integers on the device of `ref`, T_i >= 1, 0 <= U_i <= U_max."""
    for name, lengths in (("logit_lengths", logit_lengths), ("target_lengths", target_lengths)):
        _check_ndim(name, lengths, 1, "(N,)")
        _check_integer(name, lengths)
        _check_device(name, lengths, ref_name, ref)
        if lengths.shape[0] != batch:
            raise ValueError(f"{name} must have N = {batch} entries (from targets), got {lengths.shape[0]}")
    if batch == 0:
        raise ValueError("targets must hold at least one utterance, got N = 0")
    if bool((logit_lengths < 1).any()):
        i = int((logit_lengths < 1).nonzero()[0])
        raise ValueError(f"logit_lengths must be >= 1, got logit_lengths[{i}] = {int(logit_lengths[i])}")
    bad = (target_lengths < 0) | (target_lengths > max_targets)
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        raise ValueError(
            f"target_lengths must be in [0, U_max = {max_targets}] (targets' columns), "
            f"got target_lengths[{i}] = {int(target_lengths[i])}"
        )


def _check_targets(targets: Tensor, target_lengths: Tensor, num_classes: int, blank: int) -> None:
    """The first U_i entries of targets' row i must be in [0, V) and not blank."""
    columns = torch.arange(targets.shape[1], device=targets.device).view(1, -1)
    used = columns < target_lengths.view(-1, 1)
    for bad, what in (
        (used & ((targets < 0) | (targets >= num_classes)), f"in [0, V = {num_classes}) (logits' columns)"),
        (used & (targets == blank), f"different from blank = {blank}"),
    ):
        if bool(bad.any()):
            i, u = bad.nonzero()[0].tolist()
            raise ValueError(f"targets must be {what}, got targets[{i}, {u}] = {int(targets[i, u])}")


def _check_targets_and_options(
    targets: Tensor, num_classes: int, blank: int, reduction: str, ref_name: str, ref: Tensor
) -> None:
    """targets (N, U_max) integers on the device of `ref`, blank in [0, V), a known reduction."""
    _check_ndim("targets", targets, 2, "(N, U_max)")
    _check_integer("targets", targets)
    _check_device("targets", targets, ref_name, ref)
    _check_choice("reduction", reduction, REDUCTIONS)
    if not 0 <= blank < num_classes:
        raise ValueError(f"blank must be in [0, V = {num_classes}) (logits' columns), got {blank}")


def _check_inputs(
    logits: Tensor, targets: Tensor, logit_lengths: Tensor, target_lengths: Tensor, blank: int, reduction: str
) -> None:
    _check_ndim("logits", logits, 2, "(sum_i T_i * (U_i + 1), V)")
    if not logits.dtype.is_floating_point:
        raise TypeError(f"logits must be a float tensor, got {logits.dtype}")
    num_classes = logits.shape[1]
    _check_targets_and_options(targets, num_classes, blank, reduction, "logits", logits)
    _check_lengths(logit_lengths, target_lengths, targets.shape[0], targets.shape[1], "logits", logits)
    expected_rows = packed_row_count(logit_lengths, target_lengths)
    if logits.shape[0] != expected_rows:
        raise ValueError(
            f"logits must have sum_i logit_lengths[i] * (target_lengths[i] + 1) = {expected_rows} rows "
            f"(the packed layout), got {logits.shape[0]}"
        )
    _check_targets(targets, target_lengths, num_classes, blank)


# --------------------------------------------------------------------------------------------
# The loss
# --------------------------------------------------------------------------------------------


class _PackedLattice:
    """Maps per-row values of the packed logits to the (B, S+1, T) lattice of `rnnt_loss` and back."""

    def __init__(self, targets: Tensor, logit_lengths: Tensor, target_lengths: Tensor, blank: int) -> None:
        self.mask = packed_cell_mask(logit_lengths, target_lengths)  # (B, T, S+1)
        batch, num_frames, num_rows = self.mask.shape
        self.boundary = make_boundary(target_lengths.long(), logit_lengths.long())
        # Each row's symbol arc emits targets[i, u]; the last row of a frame (u = U_i) has none: blank stands in.
        padded = torch.nn.functional.pad(targets[:, : num_rows - 1].long(), (0, 1), value=blank)
        columns = torch.arange(num_rows, device=targets.device).view(1, -1)
        padded = padded.masked_fill(columns >= target_lengths.view(-1, 1), blank)
        self.row_symbols = self.to_rows(padded.unsqueeze(2).expand(batch, num_rows, num_frames))
        utterance = torch.arange(batch, device=targets.device).view(-1, 1, 1).expand_as(self.mask)
        self.row_utterance = utterance[self.mask]

    def to_rows(self, lattice: Tensor) -> Tensor:
        """(B, S+1, T) -> (R,) in packed row order."""
        return lattice.transpose(1, 2)[self.mask]

    def to_lattice(self, rows: Tensor) -> Tensor:
        """(R,) -> (B, S+1, T), -inf at the cells outside each utterance."""
        full = rows.new_full(self.mask.shape, _NEG_INF)
        return full.masked_scatter_(self.mask, rows).transpose(1, 2)

    def arc_logprobs(self, symbol_logprobs: Tensor, blank_logprobs: Tensor, one_sym_per_frame: bool):
        """Per-row log-probabilities (R,) of the row's symbol and of blank -> the lattice's px and py:
        px (B, S, T+1), or (B, S, T) if one_sym_per_frame; py (B, S+1, T)."""
        px = self.to_lattice(symbol_logprobs)[:, :-1]
        py = self.to_lattice(blank_logprobs)
        if not one_sym_per_frame:  # column T: no symbol after the last frame
            px = torch.nn.functional.pad(px, (0, 1), value=_NEG_INF)
        return px, py


class _TransducerLoss(torch.autograd.Function):
    """-log p(targets | logits) per utterance; the backward writes the gradient into the logits if allowed."""

    @staticmethod
    def forward(
        ctx, logits: Tensor, lattice: _PackedLattice, blank: int, from_log_softmax: bool, one_sym_per_frame: bool,
        in_place: bool,
    ) -> Tensor:
        if from_log_softmax:
            log_norm = logits.new_zeros(logits.shape[0])
        else:
            log_norm = _logsumexp_last_dim(logits, _CHUNK_ELEMENTS).squeeze(1)
        symbol_logprobs = logits.gather(1, lattice.row_symbols.view(-1, 1)).squeeze(1) - log_norm
        blank_logprobs = logits[:, blank] - log_norm
        px, py = lattice.arc_logprobs(symbol_logprobs, blank_logprobs, one_sym_per_frame)
        total, px_grad, py_grad = _scores_and_grads(px, py, lattice.boundary, with_grads=ctx.needs_input_grad[0])
        ctx.lattice, ctx.blank, ctx.from_log_softmax, ctx.in_place = lattice, blank, from_log_softmax, in_place
        if px_grad is None:
            return -total
        num_frames = py.shape[2]
        symbol_occupation = lattice.to_rows(torch.nn.functional.pad(px_grad[:, :, :num_frames], (0, 0, 0, 1)))
        blank_occupation = lattice.to_rows(py_grad)
        ctx.save_for_backward(logits, log_norm, symbol_occupation, blank_occupation)
        return -total

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, loss_grad: Tensor):
        logits, log_norm, symbol_occupation, blank_occupation = ctx.saved_tensors
        lattice = ctx.lattice
        scale = loss_grad[lattice.row_utterance]
        symbol_grad = (-scale * symbol_occupation).view(-1, 1)
        blank_grad = (-scale * blank_occupation).view(-1, 1)
        if ctx.from_log_softmax:
            grad = torch.zeros_like(logits)
        else:
            grad = logits if ctx.in_place else torch.empty_like(logits)
            row_scale = (scale * (symbol_occupation + blank_occupation)).view(-1, 1)
            for rows in _row_chunks(*logits.shape):
                # d(-log p)/d logits[r] = (occ_symbol + occ_blank) * softmax(logits[r]) - occ_symbol * e_y - occ_blank * e_blank
                torch.sub(logits[rows], log_norm[rows].view(-1, 1), out=grad[rows])
                _exp_(grad[rows]).mul_(row_scale[rows])
        grad.scatter_add_(1, lattice.row_symbols.view(-1, 1), symbol_grad)
        grad[:, ctx.blank] += blank_grad.squeeze(1)
        return grad, None, None, None, None, None


def transducer_loss(
    logits: Tensor, targets: Tensor, logit_lengths: Tensor, target_lengths: Tensor, blank: int = 0,
    reduction: str = "mean", from_log_softmax: bool = False, one_sym_per_frame: bool = False,
) -> Tensor:
    """The exact (full-lattice) RNN-T loss on packed logits, as optimized_transducer's `transducer_loss`.

    Args:
      logits: (sum_i T_i * (U_i + 1), V) float; utterance i's block of T_i * (U_i + 1) rows follows those of the
        utterances before it, its row t * (U_i + 1) + u holding the joiner's output for frame t after the first u
        targets (`pack_pairs` builds the joiner's input in this layout). Raw joiner outputs, or log-softmax
        outputs if `from_log_softmax`. float16 and bfloat16 are computed in float32.
      targets: (N, U_max) int; row i's first U_i entries are utterance i's symbols, in [0, V), none of them blank.
      logit_lengths: (N,) int, T_i >= 1; target_lengths: (N,) int, 0 <= U_i <= U_max.
      blank: the blank id, in [0, V).
      reduction: "mean" (over utterances), "sum" or "none" ((N,) losses).
      from_log_softmax: the logits are already log-probabilities (no normalization inside).
      one_sym_per_frame: the modified topology: a symbol also consumes its frame (at most one per frame); an
        utterance with more symbols than frames then has an infinite loss (and zero gradient), with a warning.
    Returns:
      the loss, reduced as `reduction`.

    Memory: with `from_log_softmax=False` and logits that are an intermediate result of the autograd graph (the
    joiner's output, as in training), the backward writes the gradient into the logits' storage, as
    optimized_transducer does: nothing of the logits' size is allocated. The logits' values are then gone after the
    backward (torch raises an error if another part of the graph still needed them). Leaf logits, and
    log-softmax inputs (whose producer needs them for its own backward), get a new gradient tensor instead.
    """
    if not isinstance(logits, Tensor):
        raise TypeError(f"logits must be a torch.Tensor of shape (sum_i T_i * (U_i + 1), V), got {type(logits)}")
    _check_inputs(logits, targets, logit_lengths, target_lengths, blank, reduction)
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    lattice = _PackedLattice(targets, logit_lengths, target_lengths, blank)
    if one_sym_per_frame:
        _warn_if_modified_infeasible(lattice.boundary)
    in_place = logits.grad_fn is not None and not from_log_softmax
    loss = _TransducerLoss.apply(logits, lattice, blank, from_log_softmax, one_sym_per_frame, in_place)
    return _reduce(loss, reduction)


# Rows of the chunked loss's joiner calls: about this many logits each (4 MiB in float32), so that a chunk's
# logits, their gradient and the joiner's own activations stay small beside the model.
_JOINER_CHUNK_ELEMENTS = 1 << 20


def _chunk_arc_logprobs(
    joiner: Callable[[Tensor], Tensor], encoder_rows: Tensor, frame_index: Tensor, decoder_rows: Tensor,
    symbol_index: Tensor, classes: Tensor,
) -> Tensor:
    """One chunk of rows: joiner(encoder_rows[frame_index] + decoder_rows[symbol_index]) (r, V), log-softmaxed and
    gathered at classes (r, 2) (the row's symbol, blank) -> (r, 2) float32 log-probabilities."""
    logits = joiner(encoder_rows.index_select(0, frame_index) + decoder_rows.index_select(0, symbol_index))
    return _LogSoftmaxGather.apply(logits.float(), classes)


def chunked_transducer_loss(
    joiner: Callable[[Tensor], Tensor], encoder_out: Tensor, decoder_out: Tensor, targets: Tensor,
    logit_lengths: Tensor, target_lengths: Tensor, num_classes: int, blank: int = 0, reduction: str = "mean",
    one_sym_per_frame: bool = False, rows_per_chunk: Optional[int] = None,
) -> Tensor:
    """`transducer_loss(joiner(pack_pairs(encoder_out, decoder_out, ...)), ...)` without the packed logits.

    The joiner runs on `rows_per_chunk` packed rows at a time; of each chunk's (rows, V) logits only the
    log-probabilities of the row's symbol and of blank are kept, and the backward recomputes the chunk
    (`torch.utils.checkpoint`, non-reentrant: the joiner's parameters get their gradients as in any graph, DDP and
    autocast included). Memory: one chunk's logits and gradient, instead of all of them.

    Args:
      joiner: (r, D) float -> (r, V) float raw logits (e.g. `Joiner.logits_of_sum`).
      encoder_out: (N, T_max, D) float (projected for the joiner); decoder_out: (N, U_max + 1, D) float.
      targets: (N, U_max) int, as `transducer_loss`'s; logit_lengths: (N,) int, 1 <= T_i <= T_max;
        target_lengths: (N,) int, 0 <= U_i <= U_max.
      num_classes: V, the joiner's output size (the targets are checked against it).
      blank, reduction, one_sym_per_frame: as `transducer_loss`'s.
      rows_per_chunk: rows per joiner call; None: about 2^20 / V.
    Returns:
      the loss, reduced as `reduction`; equal to `transducer_loss` on the joiner's packed output.
    """
    _check_pair_inputs(encoder_out, decoder_out, logit_lengths, target_lengths)
    _check_targets_and_options(targets, num_classes, blank, reduction, "encoder_out", encoder_out)
    _check_lengths(logit_lengths, target_lengths, targets.shape[0], targets.shape[1], "encoder_out", encoder_out)
    _check_targets(targets, target_lengths, num_classes, blank)
    lattice = _PackedLattice(targets, logit_lengths, target_lengths, blank)
    if one_sym_per_frame:
        _warn_if_modified_infeasible(lattice.boundary)
    frame_index, symbol_index = _pair_indices_of_mask(lattice.mask)
    classes = torch.stack([lattice.row_symbols, torch.full_like(lattice.row_symbols, blank)], dim=1)
    encoder_rows = encoder_out.reshape(-1, encoder_out.shape[2])
    decoder_rows = decoder_out.reshape(-1, decoder_out.shape[2])
    step = rows_per_chunk or max(1, _JOINER_CHUNK_ELEMENTS // num_classes)
    pieces = [
        torch.utils.checkpoint.checkpoint(
            _chunk_arc_logprobs, joiner, encoder_rows, frame_index[start : start + step], decoder_rows,
            symbol_index[start : start + step], classes[start : start + step], use_reentrant=False,
        )
        for start in range(0, classes.shape[0], step)
    ]
    logprobs = torch.cat(pieces)
    with torch.autocast(device_type=logprobs.device.type, enabled=False):  # the lattice in float32
        px, py = lattice.arc_logprobs(logprobs[:, 0], logprobs[:, 1], one_sym_per_frame)
        return _reduce(-mutual_information_recursion(px, py, lattice.boundary), reduction)


def pack_padded_logits(logits: Tensor, logit_lengths: Tensor, target_lengths: Tensor) -> Tensor:
    """Padded (N, T_max, U_max + 1, V) logits -> packed (sum_i T_i * (U_i + 1), V) (for tests and comparisons)."""
    mask = packed_cell_mask(logit_lengths, target_lengths)
    return logits[:, : mask.shape[1], : mask.shape[2]][mask]
