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
from typing import Any

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
    bpe_model: Path = Path("data/lang_bpe_500/bpe.model")
    base_lr: float = 0.05
    lr_batches: float = 5000.0
    lr_epochs: float = 3.5
    transducer_loss: str = "pruned"
    prune_range: int = 5
    lm_scale: float = 0.25
    am_scale: float = 0.0
    simple_loss_scale: float = 0.5
    ctc_loss_scale: float = 0.2
    attention_decoder_loss_scale: float = 0.8
    seed: int = 42
    inf_check: bool = False
    save_every_n: int = 2000
    keep_last_k: int = 30
    average_period: int = 200
    use_fp16: bool = False
    log_interval: int = 50
    reset_interval: int = 200
    valid_interval: int = 3000
    warm_step: int = 2000
    max_bad_batches_in_a_row: int = 20
    log_batch_cuts: bool = False
    num_threads: int = 2

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "TrainConfig":
        config = cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})
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


HELP = {
    "world_size": "number of DDP processes (GPUs; CPU processes with gloo when there is no GPU)",
    "master_port": "port of the DDP rendezvous",
    "tensorboard": "write tensorboard scalars to EXP/tensorboard",
    "num_epochs": "train up to and including this epoch",
    "start_epoch": "resume from EXP/epoch-(start_epoch - 1).pt when > 1",
    "start_batch": "resume from EXP/checkpoint-START_BATCH.pt (with the data sampler's position) when > 0",
    "exp_dir": "experiment directory: checkpoints, logs, tensorboard",
    "bpe_model": "sentencepiece model of the BPE units",
    "base_lr": "base learning rate of ScaledAdam",
    "lr_batches": "Eden: batches after which the learning rate starts to decay",
    "lr_epochs": "Eden: epochs after which the learning rate starts to decay",
    "transducer_loss": "pruned: icefall's simple + pruned RNN-T losses; full: the exact RNN-T loss on packed "
    "logits (icefall_lite.transducer_loss; no simple loss, no pruning)",
    "prune_range": "symbols per frame kept by the pruned RNN-T loss",
    "lm_scale": "weight of the LM-only term in the smoothed simple loss",
    "am_scale": "weight of the AM-only term in the smoothed simple loss",
    "simple_loss_scale": "weight of the simple loss after warm-up",
    "ctc_loss_scale": "weight of the CTC loss (--use-ctc 1); 1 when it is the only loss",
    "attention_decoder_loss_scale": "weight of the attention-decoder loss (--use-attention-decoder 1); without the "
    "transducer, it and --ctc-loss-scale must sum to 1",
    "seed": "random seed (epoch E uses seed + E - 1)",
    "inf_check": "log every module whose output or gradient is not finite",
    "save_every_n": "write EXP/checkpoint-B.pt every this many batches",
    "keep_last_k": "keep only this many checkpoint-B.pt files",
    "average_period": "update the averaged model every this many batches",
    "use_fp16": "mixed precision: float16 autocast with a gradient scaler (CUDA; CPU autocast on CPU)",
    "log_interval": "log the losses every this many batches",
    "reset_interval": "the running loss forgets at rate 1/reset_interval per batch",
    "valid_interval": "compute the validation loss every this many batches",
    "warm_step": "batches over which the loss weights move from (1.0, 0.1) to (simple_loss_scale, 1.0)",
    "max_bad_batches_in_a_row": "stop after this many consecutive batches with a non-finite loss or gradient",
    "log_batch_cuts": "log the cut ids of every batch (to check data order, e.g. after resuming)",
    "num_threads": "torch CPU threads per process",
}

_TYPES: dict = {bool: str2bool, float: float, int: int}
_POSITIVE = {
    "num_epochs", "start_epoch", "save_every_n", "keep_last_k", "average_period", "log_interval",
    "reset_interval", "valid_interval", "prune_range", "max_bad_batches_in_a_row", "num_threads", "world_size",
}


_CHOICES = {"transducer_loss": ("pruned", "full")}


def _argument_type(field: dataclasses.Field) -> Any:
    if field.name in _POSITIVE:
        return positive_int
    if field.name in ("base_lr", "lr_batches", "lr_epochs"):
        return positive_float
    return Path if isinstance(field.default, Path) else _TYPES[type(field.default)]


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training options")
    for field in dataclasses.fields(TrainConfig):
        name = "--" + field.name.replace("_", "-")
        help_text = f"{HELP[field.name]} (default {field.default})"
        if field.name in _CHOICES:
            group.add_argument(name, choices=_CHOICES[field.name], default=field.default, help=help_text)
        else:
            group.add_argument(name, type=_argument_type(field), default=field.default, help=help_text)
