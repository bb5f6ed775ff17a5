"""train.py's own options (icefall's defaults) as a typed config.

Example::

    >>> parser = argparse.ArgumentParser(); add_training_arguments(parser)
    >>> config = TrainConfig.from_args(parser.parse_args(["--num-epochs", "2"]))
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Mapping, Optional, Sequence

from icefall_lite.cli import positive_float, positive_int, str2bool


@dataclass(frozen=True)
class TrainConfig:
    """Options of icefall's train.py (section 5.1), plus the numbers icefall fixes in get_params()."""

    world_size: int = 1
    master_port: int = 12354
    tensorboard: bool = True
    num_epochs: int = 30
    start_epoch: int = 1
    start_batch: int = 0
    exp_dir: Path = Path("pruned_transducer_stateless7_streaming/exp")
    base_lr: float = 0.05
    lr_batches: float = 5000.0
    lr_epochs: float = 3.5
    seed: int = 42
    inf_check: bool = False
    save_every_n: int = 2000
    keep_last_k: int = 30
    average_period: int = 200
    use_fp16: bool = False
    log_interval: int = 50
    reset_interval: int = 200
    valid_interval: int = 3000
    max_bad_batches_in_a_row: int = 20
    log_batch_cuts: bool = False
    num_threads: int = 2

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "TrainConfig":
        config = config_from_args(cls, args)
        config.check()
        return config

    def check(self) -> None:
        """Raise ValueError naming the option when options contradict each other."""
        if self.save_every_n < self.average_period:
            raise ValueError(
                f"--save-every-n ({self.save_every_n}) must be >= --average-period ({self.average_period})"
            )
        if self.start_epoch > self.num_epochs:
            raise ValueError(f"--start-epoch ({self.start_epoch}) is after --num-epochs ({self.num_epochs})")


def config_from_args(config_class: type, args: argparse.Namespace) -> Any:
    """The dataclass `config_class` with every field read from the option of the same name."""
    return config_class(**{f.name: getattr(args, f.name) for f in dataclasses.fields(config_class)})


HELP = {
    "world_size": "number of DDP processes (GPUs; CPU processes with gloo when there is no GPU)",
    "master_port": "port of the DDP rendezvous",
    "tensorboard": "write tensorboard scalars to EXP/tensorboard",
    "num_epochs": "train up to and including this epoch",
    "start_epoch": "resume from EXP/epoch-(start_epoch - 1).pt when > 1",
    "start_batch": "resume from EXP/checkpoint-START_BATCH.pt (with the data sampler's position) when > 0",
    "exp_dir": "experiment directory: checkpoints, logs, tensorboard",
    "base_lr": "base learning rate of ScaledAdam",
    "lr_batches": "Eden: batches after which the learning rate starts to decay",
    "lr_epochs": "Eden: epochs after which the learning rate starts to decay",
    "seed": "random seed (epoch E uses seed + E - 1)",
    "inf_check": "log every module whose output or gradient is not finite",
    "save_every_n": "write EXP/checkpoint-B.pt every this many batches",
    "keep_last_k": "keep only this many checkpoint-B.pt files",
    "average_period": "update the averaged model every this many batches",
    "use_fp16": "mixed precision: float16 autocast with a gradient scaler (CUDA; CPU autocast on CPU)",
    "log_interval": "log the losses every this many batches",
    "reset_interval": "the running loss forgets at rate 1/reset_interval per batch",
    "valid_interval": "compute the validation loss every this many batches",
    "max_bad_batches_in_a_row": "stop after this many consecutive batches with a non-finite loss or gradient",
    "log_batch_cuts": "log the cut ids of every batch (to check data order, e.g. after resuming)",
    "num_threads": "torch CPU threads per process",
}

_TYPES: dict = {bool: str2bool, float: float, int: int}
_POSITIVE_INTS = {
    "num_epochs", "start_epoch", "save_every_n", "keep_last_k", "average_period", "log_interval",
    "reset_interval", "valid_interval", "max_bad_batches_in_a_row", "num_threads", "world_size",
}
_POSITIVE_FLOATS = {"base_lr", "lr_batches", "lr_epochs"}


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """The Trainer's options (every train.py has them)."""
    add_config_arguments(
        parser.add_argument_group("training options"), TrainConfig, HELP, positive_ints=_POSITIVE_INTS,
        positive_floats=_POSITIVE_FLOATS,
    )


def add_config_arguments(
    group: Any, config_class: type, helps: Mapping[str, str], positive_ints: Collection[str] = (),
    positive_floats: Collection[str] = (), choices: Optional[Mapping[str, Sequence[str]]] = None,
) -> None:
    """One option --field-name per field of the dataclass `config_class`, typed and defaulted by the field, with
    the help text `helps[field]`; fields in `positive_ints` / `positive_floats` must be > 0, fields in `choices`
    take one of their values."""
    choices = choices or {}
    for config_field in dataclasses.fields(config_class):
        name = "--" + config_field.name.replace("_", "-")
        help_text = f"{helps[config_field.name]} (default {config_field.default})"
        if config_field.name in choices:
            group.add_argument(name, choices=choices[config_field.name], default=config_field.default, help=help_text)
            continue
        group.add_argument(
            name, type=_argument_type(config_field, positive_ints, positive_floats), default=config_field.default,
            help=help_text,
        )


def _argument_type(
    config_field: dataclasses.Field, positive_ints: Collection[str], positive_floats: Collection[str]
) -> Any:
    if config_field.name in positive_ints:
        return positive_int
    if config_field.name in positive_floats:
        return positive_float
    return Path if isinstance(config_field.default, Path) else _TYPES[type(config_field.default)]
