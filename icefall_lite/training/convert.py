"""Checkpoint files converted between icefall's layout and ours (local/convert_checkpoint.py).

Either way the file keeps its model, its averaged model and its training numbers and options (batch_idx_train,
average_period, ...: what decoding with --use-averaged-model needs); the optimizer, scheduler, grad scaler and
sampler states are set to None, since each only fits the training code that wrote it.

Usage::

    convert_checkpoint_file("icefall/exp/epoch-30.pt", "exp/epoch-30.pt", to="icefall_lite")
    convert_checkpoint_file("exp/pretrained.pt", "icefall-exp/pretrained.pt", to="icefall")
"""

from __future__ import annotations

import logging
from typing import Any, Dict

from icefall_lite.training.checkpoint import (
    CheckpointError, PathLike, atomic_torch_save, read_checkpoint, to_checkpoint_primitives,
)
from icefall_lite.training.icefall_format import to_icefall_state_dict

FORMATS = ("icefall", "icefall_lite")
TRAINING_STATES = ("optimizer", "scheduler", "grad_scaler", "sampler")
MODEL_ENTRIES = ("model", "model_avg")


def converted_checkpoint(checkpoint: Dict[str, Any], to: str) -> Dict[str, Any]:
    """A checkpoint dict as `read_checkpoint` returns it (our layout) in format `to` ("icefall" or
    "icefall_lite")."""
    if to not in FORMATS:
        raise ValueError(f"--to must be one of {FORMATS}, got {to!r}")
    result: Dict[str, Any] = {}
    count = int(checkpoint.get("batch_idx_train", 0) or 0)
    for key, value in checkpoint.items():
        if key in TRAINING_STATES:
            result[key] = None
        elif key in MODEL_ENTRIES and value is not None:
            result[key] = to_icefall_state_dict(value, count) if to == "icefall" else value
        else:
            result[key] = to_checkpoint_primitives(value, f"checkpoint[{key!r}]")
    return result


def convert_checkpoint_file(source: PathLike, target: PathLike, to: str) -> None:
    """Read `source` (either layout; weights only) and write it to `target` in format `to`, atomically."""
    checkpoint = read_checkpoint(source)
    if "model" not in checkpoint:
        raise CheckpointError(f"checkpoint {source} has no 'model' entry (keys: {sorted(checkpoint)})")
    atomic_torch_save(converted_checkpoint(checkpoint, to), target)
    logging.info(f"Wrote {target} ({to} layout) from {source}")
