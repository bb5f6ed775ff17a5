"""Which weights a decoding or export script uses: ``--epoch/--iter``, ``--avg``, ``--use-averaged-model``.

icefall's rules (spec 4.3), shared by every script that loads a trained model:

| options | files read | weights |
|---|---|---|
| ``--epoch E --avg A --use-averaged-model 1`` | ``epoch-(E-A).pt``, ``epoch-E.pt`` | mean of the model over the batches after epoch E-A up to epoch E, from the two stored running averages |
| ``--epoch E --avg A --use-averaged-model 0`` | ``epoch-(E-A+1).pt`` ... ``epoch-E.pt`` | plain mean of their "model" entries |
| ``--iter N --avg A --use-averaged-model 1`` | the A+1 newest ``checkpoint-B.pt`` with B <= N | as above, between the oldest and the newest of them |
| ``--iter N --avg A --use-averaged-model 0`` | the A newest ``checkpoint-B.pt`` with B <= N | plain mean |

Usage::

    parser = argparse.ArgumentParser(); add_checkpoint_arguments(parser, epoch=30, avg=9)
    args = parser.parse_args()
    model = load_model_for_inference(args, build_model(args, vocab_size=500))
    suffix = checkpoint_suffix(args)        # "epoch-30-avg-9" or "iter-N-avg-A"
"""

from __future__ import annotations

import argparse
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Union

import torch
from torch import Tensor, nn

from icefall_lite.cli import str2bool
from icefall_lite.training.averaging import average_checkpoints, average_checkpoints_with_averaged_model
from icefall_lite.training.checkpoint import CheckpointError, find_checkpoints

DEFAULT_EXP_DIR = Path("pruned_transducer_stateless7_streaming/exp")
_EPOCH_NAME = re.compile(r"epoch-(\d+)\.pt")


class CheckpointSelectionError(ValueError):
    """The options name checkpoints that do not exist, or ask to average more of them than there are."""


@dataclass(frozen=True)
class CheckpointSelection:
    """The files the options select and how they are combined.

    ``files`` are in the order they are used: for ``averaged_model`` (start, end), the start excluded from the
    average; otherwise every file of the plain mean.
    """

    files: List[Path]
    averaged_model: bool


def add_checkpoint_arguments(parser: argparse.ArgumentParser, epoch: int = 30, avg: int = 9) -> None:
    """Add ``--epoch --iter --avg --use-averaged-model --exp-dir`` (defaults: decode.py's 30 and 9)."""
    group = parser.add_argument_group("checkpoint selection")
    group.add_argument(
        "--epoch", type=int, default=epoch, help=f"decode with epoch-EPOCH.pt, averaged over --avg epochs (default {epoch})"
    )
    group.add_argument(
        "--iter", type=int, default=0, help="if > 0, use checkpoint-B.pt files with B <= ITER instead of --epoch (default 0)"
    )
    group.add_argument(
        "--avg", type=int, default=avg, help=f"number of epochs (or checkpoints) to average (default {avg})"
    )
    group.add_argument(
        "--use-averaged-model",
        type=str2bool,
        default=True,
        help="average with the running averages stored in the checkpoints (model_avg), reading only the two "
        "end-point files; 0 averages the plain model weights of every file (default 1)",
    )
    group.add_argument(
        "--exp-dir", type=Path, default=DEFAULT_EXP_DIR, help=f"directory with the checkpoints (default {DEFAULT_EXP_DIR})"
    )


def checkpoint_suffix(args: argparse.Namespace) -> str:
    """``iter-N-avg-A`` with ``--iter N > 0``, else ``epoch-E-avg-A`` (icefall's result-file suffix)."""
    if args.iter > 0:
        return f"iter-{args.iter}-avg-{args.avg}"
    return f"epoch-{args.epoch}-avg-{args.avg}"


def select_checkpoints(args: argparse.Namespace) -> CheckpointSelection:
    """The checkpoint files the options select; CheckpointSelectionError naming the files looked for if the
    options are inconsistent or files are missing."""
    if args.avg < 1:
        raise CheckpointSelectionError(f"--avg must be at least 1, got {args.avg}")
    exp_dir = Path(args.exp_dir)
    if args.iter > 0:
        return _select_iteration_checkpoints(exp_dir, args.iter, args.avg, args.use_averaged_model)
    if args.epoch < 1:
        raise CheckpointSelectionError(f"--epoch must be at least 1 (or give --iter), got {args.epoch}")
    return _select_epoch_checkpoints(exp_dir, args.epoch, args.avg, args.use_averaged_model)


def _available_epochs(exp_dir: Path) -> List[int]:
    epochs = [int(m.group(1)) for path in exp_dir.glob("epoch-*.pt") if (m := _EPOCH_NAME.fullmatch(path.name))]
    return sorted(epochs)


def _select_epoch_checkpoints(exp_dir: Path, epoch: int, avg: int, use_averaged_model: bool) -> CheckpointSelection:
    available = _available_epochs(exp_dir)
    first = epoch - avg if use_averaged_model else epoch - avg + 1
    if first < 1:
        needed = "--avg < --epoch (epoch-(E-A).pt starts the average)" if use_averaged_model else "--avg <= --epoch"
        raise CheckpointSelectionError(
            f"--epoch {epoch} --avg {avg} --use-averaged-model {int(use_averaged_model)} would need epoch-{first}.pt; "
            f"with these options {needed}. Epochs available in {exp_dir}: {available or 'none'}"
        )
    epochs = [first, epoch] if use_averaged_model else list(range(first, epoch + 1))
    files = [exp_dir / f"epoch-{e}.pt" for e in epochs]
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise CheckpointSelectionError(
            f"--epoch {epoch} --avg {avg} --use-averaged-model {int(use_averaged_model)} needs {[str(f) for f in files]}; "
            f"missing: {missing}. Epochs available in {exp_dir}: {available or 'none'}"
        )
    return CheckpointSelection(files, use_averaged_model)


def _select_iteration_checkpoints(exp_dir: Path, iteration: int, avg: int, use_averaged_model: bool) -> CheckpointSelection:
    needed = avg + 1 if use_averaged_model else avg
    found = find_checkpoints(exp_dir, max_batch=iteration)[:needed]
    if len(found) < needed:
        raise CheckpointSelectionError(
            f"--iter {iteration} --avg {avg} --use-averaged-model {int(use_averaged_model)} needs the {needed} newest "
            f"{exp_dir}/checkpoint-B.pt with B <= {iteration}; found {len(found)}: {[str(f) for f in found]}"
        )
    files = [found[-1], found[0]] if use_averaged_model else found
    return CheckpointSelection(files, use_averaged_model)


def averaged_state_dict(selection: CheckpointSelection, device: Union[str, torch.device] = "cpu") -> Dict[str, Tensor]:
    """The state dict the selection describes (see the module docstring), on ``device``."""
    if selection.averaged_model:
        start, end = selection.files
        logging.info(f"Averaging the model between {start} (excluded) and {end} with the stored running averages")
        return average_checkpoints_with_averaged_model(start, end, device=device)
    logging.info(f"Averaging the model weights of {[str(f) for f in selection.files]}")
    return average_checkpoints(selection.files, device=device)


def load_model_for_inference(
    args: argparse.Namespace, model: nn.Module, device: Union[str, torch.device] = "cpu"
) -> nn.Module:
    """Load the weights the checkpoint options select into ``model``, move it to ``device``, set eval mode.

    Raises:
      CheckpointSelectionError: missing files or too large ``--avg`` (the message names the files looked for).
      CheckpointError: a file is corrupt or its weights do not fit ``model`` (e.g. other model options).
    """
    selection = select_checkpoints(args)
    state = averaged_state_dict(selection, device)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise CheckpointError(
            f"the weights in {[str(f) for f in selection.files]} do not fit the model built from the options "
            f"(check the model options such as --encoder-dims): {error}"
        ) from error
    return model.to(device).eval()
