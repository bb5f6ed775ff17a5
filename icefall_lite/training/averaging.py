"""Model averaging (spec 4.3): the running average kept during training, and averages over saved checkpoints.

During training, rank 0 keeps `model_avg = copy.deepcopy(model).to(torch.float64)` and every `average_period`
batches calls `update_averaged_model`, so that model_avg is the uniform mean of the model at batches
average_period, 2 * average_period, ... Checkpoints store it as "model_avg", together with "batch_idx_train" and
"average_period" (see checkpoint.py).

For decoding:
- `average_checkpoints_with_averaged_model(start, end)` recovers the mean of the snapshots taken after `start` up
  to `end` from the two stored running averages (`--use-averaged-model True`).
- `average_checkpoints(filenames)` is the plain mean of the stored "model" state dicts (`--use-averaged-model
  False`).
"""

from typing import Any, Dict, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from icefall_lite.training.checkpoint import CheckpointError, PathLike, read_checkpoint, unwrap_model

Device = Union[str, torch.device]


def update_averaged_model(
    average_period: int, batch_idx_train: int, model_cur: nn.Module, model_avg: nn.Module
) -> None:
    """Fold the current model into the running average, in place.

    `model_avg <- model_avg * (1 - w) + model_cur * w` with `w = average_period / batch_idx_train`, for every
    floating-point parameter and buffer (each shared tensor once); integer buffers of model_avg are left as they are.
    Called at every batch_idx_train that is a multiple of average_period, this keeps model_avg equal to the uniform
    mean of the model at those batches.

    Args:
        average_period: batches between two calls, e.g. 200.
        batch_idx_train: the global batch index now, >= average_period.
        model_cur: the model being trained (DDP unwrapped here).
        model_avg: the running average, typically float64 and on the CPU or the same device.
    """
    if average_period < 1 or batch_idx_train < average_period:
        raise ValueError(
            f"update_averaged_model: need 1 <= average_period <= batch_idx_train, got average_period="
            f"{average_period}, batch_idx_train={batch_idx_train}"
        )
    weight_cur = average_period / batch_idx_train
    current = unwrap_model(model_cur).state_dict()
    seen_storage = set()
    with torch.no_grad():
        for name, averaged in unwrap_model(model_avg).state_dict().items():
            if not averaged.is_floating_point() or averaged.data_ptr() in seen_storage:
                continue
            seen_storage.add(averaged.data_ptr())
            update = current[name].to(device=averaged.device, dtype=averaged.dtype)
            averaged.mul_(1 - weight_cur).add_(update, alpha=weight_cur)


def _entry(checkpoint: Dict[str, Any], key: str, filename: PathLike) -> Any:
    """`checkpoint[key]`, or CheckpointError naming the file and the missing key."""
    if key not in checkpoint:
        raise CheckpointError(f"checkpoint {filename} has no {key!r} entry, needed for averaging")
    return checkpoint[key]


def _check_same_names(state: Dict[str, Tensor], reference: Dict[str, Tensor], filename: PathLike,
                      reference_filename: PathLike) -> None:
    if state.keys() != reference.keys():
        differing = sorted(set(state.keys()) ^ set(reference.keys()))
        raise CheckpointError(
            f"checkpoint {filename} has different parameter names than {reference_filename}: {differing[:5]}"
        )


def average_checkpoints(filenames: Sequence[PathLike], device: Device = "cpu") -> Dict[str, Tensor]:
    """Plain mean of the "model" state dicts of `filenames`.

    Floating entries are averaged; integer entries (e.g. BatchNorm's num_batches_tracked) are floor-divided:
    sum // len(filenames). Files are read one at a time.

    Returns:
        A state dict for `model.load_state_dict`, tensors on `device`.
    """
    if not filenames:
        raise ValueError("average_checkpoints: filenames is empty")
    totals = dict(_entry(read_checkpoint(filenames[0], device), "model", filenames[0]))
    for filename in filenames[1:]:
        state = _entry(read_checkpoint(filename, device), "model", filename)
        _check_same_names(state, totals, filename, filenames[0])
        totals = {name: total + state[name] for name, total in totals.items()}
    count = len(filenames)
    return {name: total / count if total.is_floating_point() else total // count for name, total in totals.items()}


def _averaging_interval_end(checkpoint: Dict[str, Any], filename: PathLike) -> Tuple[int, int]:
    """(average_period, batch_idx_train rounded down to a multiple of average_period) of a checkpoint."""
    average_period = _entry(checkpoint, "average_period", filename)
    batch_idx_train = _entry(checkpoint, "batch_idx_train", filename)
    return average_period, (batch_idx_train // average_period) * average_period


def average_checkpoints_with_averaged_model(
    filename_start: PathLike, filename_end: PathLike, device: Device = "cpu"
) -> Dict[str, Tensor]:
    """The mean of the model over the averaging snapshots after `filename_start`, up to `filename_end`.

    With start and end the two files' batch_idx_train rounded down to a multiple of average_period, and avg_start,
    avg_end their "model_avg" (the mean of the snapshots at average_period, 2 * average_period, ... up to start,
    resp. end), the mean of the snapshots in (start, end] is `(avg_end * end - avg_start * start) / (end - start)`.
    Computed in float64, returned in the stored dtype; integer entries are taken from the end file.

    Raises:
        CheckpointError: a file lacks "model_avg", "average_period" or "batch_idx_train", the two differ in
            average_period or parameter names, or end is not after start.
    """
    start_checkpoint = read_checkpoint(filename_start, device)
    end_checkpoint = read_checkpoint(filename_end, device)
    period_start, start = _averaging_interval_end(start_checkpoint, filename_start)
    period_end, end = _averaging_interval_end(end_checkpoint, filename_end)
    if period_start != period_end:
        raise CheckpointError(
            f"average_period differs: {period_start} in {filename_start}, {period_end} in {filename_end}"
        )
    if end <= start:
        raise CheckpointError(
            f"{filename_end} (batch {end} after rounding to average_period {period_end}) must come after "
            f"{filename_start} (batch {start})"
        )
    avg_start = _entry(start_checkpoint, "model_avg", filename_start)
    avg_end = _entry(end_checkpoint, "model_avg", filename_end)
    _check_same_names(avg_start, avg_end, filename_start, filename_end)
    interval = end - start
    return {
        name: (averaged.double() * end - avg_start[name].double() * start).div(interval).to(averaged.dtype)
        if averaged.is_floating_point() else averaged
        for name, averaged in avg_end.items()
    }
