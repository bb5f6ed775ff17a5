"""Training checkpoints: atomic saving, safe loading, and the `checkpoint-B.pt` files of an experiment directory.

A checkpoint is a dict written by `torch.save`:

| key | content |
|---|---|
| "model" | `model.state_dict()` (DDP unwrapped: no "module." prefix) |
| "model_avg" | the averaged model's state dict, floating entries stored as float32 (absent if no model_avg) |
| "optimizer", "scheduler", "grad_scaler", "sampler" | their `state_dict()`, or None if not given |
| every key of `params` | its value: batch_idx_train, cur_epoch, best losses, average_period, CLI options, ... |

Files are only ever read with `torch.load(..., weights_only=True)`, which refuses anything that would run code
when unpickled. Hence everything saved from outside torch (`params` and the sampler state) is first converted by
`to_checkpoint_primitives`: it must consist of None, bool, int, float, str, torch.Tensor and lists, tuples and
dicts of these; paths become str, dataclasses and argparse.Namespace become dicts, numpy scalars become Python
numbers, and anything else raises TypeError naming where it was found.

icefall's own checkpoints (its pretrained.pt, epoch-N.pt, checkpoint-N.pt) load too: the one class besides
those they pickle, `pathlib.PosixPath` (the options' paths), is allowed (a path holds no code), and their
"model" and "model_avg" come back in our layout (`icefall_format`).

Usage::

    save_checkpoint(exp_dir / "epoch-3.pt", model, model_avg, optimizer, scheduler, scaler, sampler,
                    params={"batch_idx_train": 12000, "cur_epoch": 3, "average_period": 200})
    params = load_checkpoint(exp_dir / "epoch-3.pt", model, model_avg, optimizer, scheduler, scaler)
    sampler_state = params["sampler"]  # not consumed, because no sampler was passed
"""

import argparse
import dataclasses
import logging
import os
import pickle
import re
import shutil
import uuid
from pathlib import Path, PosixPath
from typing import Any, BinaryIO, Callable, Dict, List, Mapping, Optional, Protocol, Union

import numpy
import torch
from torch import nn

from icefall_lite.training.icefall_format import from_icefall_state_dict, is_icefall_state_dict

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

STATE_KEYS = ("model", "model_avg", "optimizer", "scheduler", "grad_scaler", "sampler")
"""Keys of a checkpoint that hold state dicts; `params` may not use them."""

_PRIMITIVE_TYPES = (type(None), bool, int, float, str)
_CHECKPOINT_NAME = re.compile(r"checkpoint-(\d+)\.pt")


class CheckpointError(RuntimeError):
    """A checkpoint file is corrupt, truncated, refused as unsafe, or does not fit what it is loaded into."""


class Stateful(Protocol):
    """Anything with `state_dict()` and `load_state_dict()`: optimizer, scheduler, grad scaler, lhotse sampler."""

    def state_dict(self) -> Dict[str, Any]: ...

    def load_state_dict(self, state_dict: Dict[str, Any]) -> Any: ...


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel or DataParallel wrapper, else `model` itself."""
    if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        return model.module
    return model


def to_checkpoint_primitives(value: Any, where: str = "value") -> Any:
    """`value` converted to what `torch.load(weights_only=True)` accepts, or TypeError naming `where`.

    Kept: None, bool, int, float, str (exact types, not subclasses such as str-valued enums), torch.Tensor.
    Converted: os.PathLike -> str; numpy scalars -> Python numbers; dataclass instances and argparse.Namespace ->
    dict of their fields; dicts (any Mapping) -> dict; lists -> list; tuples (including named tuples) -> tuple.
    Dict keys must be None, bool, int, float or str.
    """
    if type(value) in _PRIMITIVE_TYPES or isinstance(value, torch.Tensor):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, numpy.generic):
        return value.item()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    elif isinstance(value, argparse.Namespace):
        value = vars(value)
    if isinstance(value, Mapping):
        return {
            _checked_key(key, where): to_checkpoint_primitives(item, f"{where}[{key!r}]") for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        items = [to_checkpoint_primitives(item, f"{where}[{index}]") for index, item in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    raise TypeError(
        f"{where} is a {type(value).__qualname__}, which torch.load(weights_only=True) refuses; checkpoints hold only "
        "None, bool, int, float, str, torch.Tensor and lists, tuples and dicts of them"
    )


def _checked_key(key: Any, where: str) -> Any:
    """`key` if it is a primitive usable as a checkpoint dict key, else TypeError naming `where`."""
    if type(key) not in _PRIMITIVE_TYPES:
        raise TypeError(f"{where} has a key {key!r} of type {type(key).__qualname__}; use str or int keys")
    return key


def _float32_state_dict(model: nn.Module) -> Dict[str, torch.Tensor]:
    """`model`'s state dict with floating entries as float32 copies; the model itself is not changed."""
    return {
        name: tensor.to(torch.float32) if tensor.is_floating_point() else tensor
        for name, tensor in unwrap_model(model).state_dict().items()
    }


def _state_or_none(stateful: Optional[Stateful]) -> Optional[Dict[str, Any]]:
    return None if stateful is None else stateful.state_dict()


def save_checkpoint(
    filename: PathLike,
    model: nn.Module,
    model_avg: Optional[nn.Module] = None,
    optimizer: Optional[torch.optim.Optimizer] = None,
    scheduler: Optional[Stateful] = None,
    scaler: Optional[torch.amp.GradScaler] = None,
    sampler: Optional[Stateful] = None,
    params: Optional[Mapping[str, Any]] = None,
) -> None:
    """Write a checkpoint atomically (see the module docstring for its keys).

    Args:
        filename: where to write, e.g. `exp_dir / "checkpoint-2000.pt"`; the directory must exist.
        model: the model being trained, possibly DDP-wrapped (its inner module is saved).
        model_avg: the running average of the model (float64 in memory); saved as float32, left unchanged.
        optimizer, scheduler, scaler, sampler: saved through their `state_dict()`; the sampler state (an lhotse
            sampler's plain dict) goes through `to_checkpoint_primitives`.
        params: extra entries stored under their own keys, converted by `to_checkpoint_primitives`; keys may not be
            any of STATE_KEYS.

    Raises:
        ValueError: a params key collides with STATE_KEYS. TypeError: params or the sampler state hold a value that
        weights_only loading would refuse. Nothing is written in either case.
    """
    params = dict(params or {})
    colliding = sorted(set(params) & set(STATE_KEYS))
    if colliding:
        raise ValueError(f"save_checkpoint({filename}): params keys {colliding} collide with checkpoint state keys")
    checkpoint: Dict[str, Any] = {
        "model": unwrap_model(model).state_dict(),
        "optimizer": _state_or_none(optimizer),
        "scheduler": _state_or_none(scheduler),
        "grad_scaler": _state_or_none(scaler),
        "sampler": to_checkpoint_primitives(_state_or_none(sampler), where="sampler.state_dict()"),
    }
    if model_avg is not None:
        checkpoint["model_avg"] = _float32_state_dict(model_avg)
    checkpoint.update(to_checkpoint_primitives(params, where="params"))
    atomic_torch_save(checkpoint, filename)


def atomic_torch_save(obj: Any, filename: PathLike) -> None:
    """`torch.save(obj, filename)` such that `filename` is never seen half-written (see `_atomic_write`)."""
    _atomic_write(Path(filename), lambda file: torch.save(obj, file))


def atomic_copy(source: PathLike, target: PathLike) -> None:
    """Copy a written checkpoint to `target` such that `target` is never seen half-written (see `_atomic_write`)."""
    with open(source, "rb") as source_file:
        _atomic_write(Path(target), lambda file: shutil.copyfileobj(source_file, file))
    logging.info(f"Copied {source} to {target}")


def _atomic_write(final: Path, write: Callable[[BinaryIO], Any]) -> None:
    """Write `final` through `write(file)` such that it is never seen half-written.

    The data goes to a hidden temporary file in the same directory, is flushed to disk (fsync), and is then
    renamed over `final` (os.replace, atomic on POSIX), after which the directory entry is synced. If writing
    fails the temporary file is removed; if the process is killed it may remain as `.<name>.<pid>.<hex>.tmp`, which
    no checkpoint lookup matches, while `final` still holds its previous content (or does not exist).
    """
    temporary = final.with_name(f".{final.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "xb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(final.parent)


def _fsync_directory(directory: Path) -> None:
    """Make a rename inside `directory` durable (no-op where directories cannot be opened)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_checkpoint(filename: PathLike, device: Union[str, torch.device] = "cpu") -> Dict[str, Any]:
    """Load a checkpoint dict with `torch.load(weights_only=True)`, tensors mapped to `device`.

    Raises:
        FileNotFoundError: `filename` does not exist.
        CheckpointError: the file is truncated or corrupt, holds objects weights_only loading refuses (their code
            is not run), or is not a dict.
    """
    path = Path(filename)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        with torch.serialization.safe_globals([PosixPath]):
            checkpoint = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as error:
        if "weights only load failed" not in str(error).lower():
            raise CheckpointError(f"checkpoint {path} is corrupt: {error}") from error
        raise CheckpointError(
            f"refused to load checkpoint {path}: it holds pickled objects that could run code when loaded "
            f"({_refusal_reason(error)}); only tensors and plain Python values are accepted"
        ) from error
    except Exception as error:
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt: {type(error).__name__}: {error}") from error
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(checkpoint).__name__}, expected a dict")
    return _in_our_layout(checkpoint, path)


def _in_our_layout(checkpoint: Dict[str, Any], path: Path) -> Dict[str, Any]:
    """The checkpoint with icefall-layout "model" / "model_avg" state dicts converted to ours."""
    for key in ("model", "model_avg"):
        state = checkpoint.get(key)
        if isinstance(state, dict) and is_icefall_state_dict(state):
            logger.info(f"{path}: {key!r} is in icefall's layout; converted")
            checkpoint[key] = from_icefall_state_dict(state)
    return checkpoint


def _refusal_reason(error: pickle.UnpicklingError) -> str:
    """The line of torch's weights_only error that names the refused object."""
    lines = [line.strip() for line in str(error).splitlines()]
    return next((line for line in lines if "unsupported" in line.lower()), lines[-1] if lines else "")


def load_checkpoint(
    filename: PathLike,
    model: nn.Module,
    model_avg: Optional[nn.Module] = None,
    optimizer: Optional[torch.optim.Optimizer] = None,
    scheduler: Optional[Stateful] = None,
    scaler: Optional[torch.amp.GradScaler] = None,
    sampler: Optional[Stateful] = None,
    strict: bool = True,
) -> Dict[str, Any]:
    """Restore the given objects from a checkpoint written by `save_checkpoint`.

    The model (DDP unwrapped) always loads from "model"; every other object loads only if given and if the file
    holds a non-empty state for it (otherwise it is left as is, with a log message).

    Args:
        filename: the checkpoint file.
        model, model_avg: loaded with `load_state_dict(..., strict=strict)`; a float64 model_avg receives the
            stored float32 values.
        optimizer, scheduler, scaler, sampler: loaded with `load_state_dict` from "optimizer", "scheduler",
            "grad_scaler", "sampler".
        strict: require the model state dicts to match the modules' keys exactly.

    Returns:
        The checkpoint dict without the entries that were loaded: the saved params (batch_idx_train, cur_epoch, ...)
        and any state not consumed, e.g. "sampler" when the sampler is created after loading.

    Raises:
        FileNotFoundError, CheckpointError: see `read_checkpoint`; also CheckpointError when the file has no "model"
        entry or its model state does not fit `model` / `model_avg`.
    """
    checkpoint = read_checkpoint(filename)
    _load_module(filename, checkpoint, "model", model, strict)
    if model_avg is not None and checkpoint.get("model_avg") is not None:
        _load_module(filename, checkpoint, "model_avg", model_avg, strict)
    stateful_objects = {"optimizer": optimizer, "scheduler": scheduler, "grad_scaler": scaler, "sampler": sampler}
    for key, stateful in stateful_objects.items():
        if stateful is None:
            continue
        if not checkpoint.get(key):
            logger.info(f"{filename} holds no {key} state; the {key} keeps its current state")
            continue
        stateful.load_state_dict(checkpoint.pop(key))
    return checkpoint


def _load_module(filename: PathLike, checkpoint: Dict[str, Any], key: str, module: nn.Module, strict: bool) -> None:
    """Load `checkpoint.pop(key)` into `module` (DDP unwrapped); CheckpointError naming the file on mismatch."""
    if key not in checkpoint:
        raise CheckpointError(f"checkpoint {filename} has no {key!r} entry (keys: {sorted(checkpoint)})")
    try:
        unwrap_model(module).load_state_dict(checkpoint.pop(key), strict=strict)
    except RuntimeError as error:
        raise CheckpointError(f"checkpoint {filename}: {key!r} does not fit the module: {error}") from error


def batch_checkpoint_path(exp_dir: PathLike, batch_idx_train: int) -> Path:
    """`exp_dir/checkpoint-{batch_idx_train}.pt`, the name of a checkpoint saved every --save-every-n batches."""
    return Path(exp_dir) / f"checkpoint-{batch_idx_train}.pt"


def checkpoint_batch_index(path: PathLike) -> Optional[int]:
    """B of a file named `checkpoint-B.pt`, else None."""
    match = _CHECKPOINT_NAME.fullmatch(Path(path).name)
    return int(match.group(1)) if match else None


def find_checkpoints(exp_dir: PathLike, max_batch: Optional[int] = None) -> List[Path]:
    """The `checkpoint-B.pt` files in `exp_dir`, newest (largest B) first, optionally only those with B <= max_batch.

    For decoding with `--iter N --avg A`, the A + 1 files used are `find_checkpoints(exp_dir, N)[: A + 1]`.
    """
    found = []
    for path in Path(exp_dir).glob("checkpoint-*.pt"):
        batch = checkpoint_batch_index(path)
        if batch is not None and (max_batch is None or batch <= max_batch):
            found.append((batch, path))
    return [path for _, path in sorted(found, reverse=True)]


def remove_checkpoints(exp_dir: PathLike, keep_last_k: int) -> List[Path]:
    """Delete all but the `keep_last_k` newest `checkpoint-B.pt` files of `exp_dir`; returns the deleted paths.

    Other files (epoch-N.pt, best-*.pt) are never touched.
    """
    if keep_last_k < 1:
        raise ValueError(f"remove_checkpoints: keep_last_k must be >= 1, got {keep_last_k}")
    to_remove = find_checkpoints(exp_dir)[keep_last_k:]
    for path in to_remove:
        path.unlink()
    return to_remove
