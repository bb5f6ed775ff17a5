"""The training loop of every recipe: the guarded optimizer step, validation, logs and checkpoints.

The task supplies its loss through an `Objective` (icefall_lite.training.objective); the loop knows nothing else of
it. Every batch: the objective's forward under autocast (when --use-fp16), backward through the gradient scaler,
then the step, unless the loss or a gradient is not finite: such a batch is skipped (never applied), counted and
logged with its cut ids; too many in a row stop training with the batch saved to EXP/. Every named statistic of
the objective is logged per frame and written to tensorboard under its own name.

Example::

    trainer = Trainer(model, AsrObjective(sp, loss_config, model.config), config, context, params)
    trainer.resume_if_requested()
    for epoch in range(trainer.state.cur_epoch, config.num_epochs + 1):
        trainer.train_one_epoch(epoch, data, train_cuts, valid_cuts)
"""

from __future__ import annotations

import argparse
import copy
import datetime
import logging
import math
import random
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import torch
from lhotse import CutSet
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from torch.utils.tensorboard import SummaryWriter

from icefall_lite.cli import setup_logging
from icefall_lite.data.datamodule import LibriSpeechAsrDataModule
from icefall_lite.model.warmup import set_batch_count
from icefall_lite.training.averaging import update_averaged_model
from icefall_lite.training.checkpoint import (
    atomic_copy,
    atomic_torch_save,
    batch_checkpoint_path,
    load_checkpoint,
    remove_checkpoints,
    save_checkpoint,
    to_checkpoint_primitives,
)
from icefall_lite.training.distributed import (
    DistributedContext, all_ranks_agree, iter_until_all_ranks_done, sum_over_ranks,
)
from icefall_lite.training.metrics import LossStats
from icefall_lite.training.objective import Objective
from icefall_lite.training.optim import Eden, ScaledAdam
from icefall_lite.training.options import TrainConfig

FRAME_SHIFT_SECONDS = 0.01


class TooManyBadBatches(RuntimeError):
    """Training stopped because too many consecutive batches had a non-finite loss or gradient."""


@dataclass
class TrainState:
    """Progress that a checkpoint carries across restarts."""

    batch_idx_train: int = 0
    cur_epoch: int = 1
    batches_in_epoch: int = 0
    best_train_loss: float = math.inf
    best_valid_loss: float = math.inf
    best_train_epoch: int = -1
    best_valid_epoch: int = -1
    num_bad_batches: int = 0


def fix_random_seed(seed: int) -> None:
    """Seed Python's and torch's generators (icefall reseeds with seed + epoch - 1 at each epoch)."""
    random.seed(seed)
    torch.manual_seed(seed)


def begin_training_run(context: DistributedContext, args: argparse.Namespace) -> TrainConfig:
    """What every train.py does first: the TrainConfig of the options, torch's threads, this rank's log file
    EXP/log/log-train-DATE-RANK (with the options logged) and the seed."""
    config = TrainConfig.from_args(args)
    torch.set_num_threads(config.num_threads)
    date = datetime.datetime.now().strftime("%Y-%m-%d-%H-%M-%S")
    setup_logging(Path(config.exp_dir) / "log" / f"log-train-{date}-{context.rank}")
    logging.info(f"Training on {context.device}, rank {context.rank} of {context.world_size}; options: {vars(args)}")
    fix_random_seed(config.seed)
    return config


def batch_audio_seconds(batch: Dict[str, Any]) -> float:
    """Seconds of (unpadded) audio in a batch."""
    return float(batch["supervisions"]["num_frames"].sum()) * FRAME_SHIFT_SECONDS


def batch_cut_ids(batch: Dict[str, Any]) -> List[str]:
    return [cut.id for cut in batch["supervisions"].get("cut", [])]


def consumed_sampler_state(sampler: Any, batches_consumed: int) -> Dict[str, Any]:
    """The sampler's state as if exactly `batches_consumed` batches of the current epoch had been drawn.

    DataLoader workers draw batches ahead of training, so the sampler's own count runs ahead of what training
    consumed; resuming from it would skip batches. lhotse fast-forwards by kept + discarded batches.
    """
    state = copy.deepcopy(sampler.state_dict())
    diagnostics = state["diagnostics"]
    epoch_stats = diagnostics["stats_per_epoch"].setdefault(
        diagnostics["current_epoch"], {"epoch": diagnostics["current_epoch"], "kept_cuts": 0, "discarded_cuts": 0}
    )
    epoch_stats["kept_batches"] = batches_consumed
    epoch_stats["discarded_batches"] = 0
    return state


def gradients_are_finite(model: nn.Module) -> bool:
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    return bool(torch.isfinite(torch.nn.utils.get_total_norm(grads)).item()) if grads else True


def register_inf_check_hooks(model: nn.Module) -> None:
    """--inf-check: warn naming every module whose output or output gradient is not finite."""

    def check(name: str, kind: str, values: Any) -> None:
        tensors = values if isinstance(values, tuple) else (values,)
        for tensor in tensors:
            if isinstance(tensor, Tensor) and tensor.is_floating_point() and not torch.isfinite(tensor).all():
                logging.warning(f"--inf-check: non-finite {kind} of module {name or 'model'}")

    for name, module in model.named_modules():
        module.register_forward_hook(lambda m, inputs, output, name=name: check(name, "output", output))
        module.register_full_backward_hook(lambda m, grad_in, grad_out, name=name: check(name, "gradient", grad_out))


class Trainer:
    """Owns the model, optimizer, scheduler, grad scaler, averaged model and the progress of one training run."""

    def __init__(
        self, model: nn.Module, objective: Objective, config: TrainConfig, context: DistributedContext,
        params: Dict[str, Any],
    ) -> None:
        self.config = config
        self.context = context
        self.objective = objective
        self.params = to_checkpoint_primitives(params, "params")
        self.exp_dir = Path(config.exp_dir)
        self.model = model.to(context.device)
        self.model_avg = copy.deepcopy(model).to(torch.float64) if context.is_main else None
        self.state = TrainState(cur_epoch=config.start_epoch)
        self.optimizer = ScaledAdam(
            self.model.parameters(), lr=config.base_lr, clipping_scale=2.0,
            parameters_names=[[name for name, _ in self.model.named_parameters()]],
        )
        self.scheduler = Eden(self.optimizer, config.lr_batches, config.lr_epochs)
        self.scaler = torch.amp.GradScaler(context.device.type, enabled=config.use_fp16, init_scale=1.0)
        self.sampler_state: Optional[Dict[str, Any]] = None
        if config.inf_check:
            register_inf_check_hooks(self.model)
        self.ddp_model: nn.Module = (
            DistributedDataParallel(self.model, find_unused_parameters=objective.find_unused_parameters)
            if context.is_distributed
            else self.model
        )
        self.writer = (
            SummaryWriter(str(self.exp_dir / "tensorboard")) if config.tensorboard and context.is_main else None
        )
        self.bad_in_a_row = 0

    # ----------------------------------------------------------------------------------------------- checkpoints
    def resume_if_requested(self) -> None:
        """Load EXP/checkpoint-START_BATCH.pt or EXP/epoch-(START_EPOCH-1).pt, as the options ask."""
        if self.config.start_batch > 0:
            filename = batch_checkpoint_path(self.exp_dir, self.config.start_batch)
        elif self.config.start_epoch > 1:
            filename = self.exp_dir / f"epoch-{self.config.start_epoch - 1}.pt"
        else:
            return
        logging.info(f"Resuming from {filename}")
        saved = load_checkpoint(
            filename, self.model, model_avg=self.model_avg, optimizer=self.optimizer,
            scheduler=self.scheduler, scaler=self.scaler,
        )
        self.state = TrainState(**{k: saved[k] for k in asdict(TrainState()) if k in saved})
        if self.config.start_batch > 0:
            self.sampler_state = saved["sampler"]
        else:
            self.state.cur_epoch = self.config.start_epoch
            self.state.batches_in_epoch = 0

    def _save(self, filename: Path, sampler_state: Optional[Dict[str, Any]]) -> None:
        params = {**self.params, **asdict(self.state), "average_period": self.config.average_period}
        save_checkpoint(
            filename, self.model, model_avg=self.model_avg, optimizer=self.optimizer, scheduler=self.scheduler,
            scaler=self.scaler, sampler=_FixedState(sampler_state) if sampler_state is not None else None,
            params=params,
        )
        logging.info(f"Saved {filename}")

    def save_batch_checkpoint(self, batches: Any) -> None:
        """EXP/checkpoint-B.pt with the data position: `batches` is a DataLoader over a sampler, or an object with
        `resume_state(batches_consumed)` (SharBatches)."""
        filename = batch_checkpoint_path(self.exp_dir, self.state.batch_idx_train)
        consumed = self.state.batches_in_epoch
        if hasattr(batches, "resume_state"):
            self._save(filename, batches.resume_state(consumed))
        else:
            self._save(filename, consumed_sampler_state(batches.sampler, consumed))
        remove_checkpoints(self.exp_dir, self.config.keep_last_k)

    def save_epoch_checkpoint(self, epoch: int, train_loss: float, valid_loss: float) -> None:
        """EXP/epoch-N.pt, copied to best-train-loss.pt / best-valid-loss.pt when it is the best so far."""
        if train_loss < self.state.best_train_loss:
            self.state.best_train_loss, self.state.best_train_epoch = train_loss, epoch
        if valid_loss < self.state.best_valid_loss:
            self.state.best_valid_loss, self.state.best_valid_epoch = valid_loss, epoch
        filename = self.exp_dir / f"epoch-{epoch}.pt"
        self._save(filename, None)
        for best_epoch, name in ((self.state.best_train_epoch, "best-train-loss.pt"), (self.state.best_valid_epoch, "best-valid-loss.pt")):
            if best_epoch == epoch:
                atomic_copy(filename, self.exp_dir / name)

    # ---------------------------------------------------------------------------------------------------- steps
    def compute_loss(self, model: nn.Module, batch: Dict[str, Any]) -> Tuple[Tensor, LossStats]:
        """The objective's loss and statistics of a batch, under autocast when --use-fp16."""
        device = self.context.device
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=self.config.use_fp16):
            return self.objective(model, batch, self.state.batch_idx_train, device)

    def _step(self, loss: Tensor, batch: Dict[str, Any]) -> bool:
        """Backward and (unless the loss or a gradient is not finite on any rank) the optimizer step.

        Returns whether the step was applied.
        """
        self.scaler.scale(loss).backward()
        finite = all_ranks_agree(bool(torch.isfinite(loss).item()) and gradients_are_finite(self.model), self.context)
        if finite:
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.bad_in_a_row = 0
        else:
            self._skip_bad_batch(batch)
        self.optimizer.zero_grad(set_to_none=True)
        return finite

    def _skip_bad_batch(self, batch: Dict[str, Any]) -> None:
        self.state.num_bad_batches += 1
        self.bad_in_a_row += 1
        if self.config.use_fp16:
            self.scaler.update(self.scaler.get_scale() * 0.5)
        logging.warning(
            f"Skipped batch {self.state.batch_idx_train} (non-finite loss or gradient; {self.state.num_bad_batches} "
            f"skipped so far), cuts: {batch_cut_ids(batch)}"
        )
        if self.bad_in_a_row >= self.config.max_bad_batches_in_a_row:
            filename = self.exp_dir / f"batch-{uuid.uuid4()}.pt"
            if self.context.is_main:
                atomic_torch_save({"inputs": batch["inputs"], "text": batch["supervisions"].get("text"),
                                   "cut_ids": batch_cut_ids(batch)}, filename)
            raise TooManyBadBatches(
                f"{self.bad_in_a_row} batches in a row had a non-finite loss or gradient (the last saved to "
                f"{filename}). Check that batch's data, or lower --base-lr"
                + (" (with --use-fp16 1, also try without it)" if self.config.use_fp16 else "")
            )

    def _after_step(self, batches: Any) -> None:
        batch_idx = self.state.batch_idx_train
        set_batch_count(self.model, batch_idx)
        self.scheduler.step_batch(batch_idx)
        if self.model_avg is not None and batch_idx % self.config.average_period == 0:
            update_averaged_model(self.config.average_period, batch_idx, self.model, self.model_avg)
        if self.context.is_main and batch_idx % self.config.save_every_n == 0:
            self.save_batch_checkpoint(batches)

    # ------------------------------------------------------------------------------------------------- epochs
    def train_one_epoch(
        self, epoch: int, train_dl: DataLoader, valid_cuts: CutSet, data: LibriSpeechAsrDataModule,
        epoch_audio_seconds: float,
    ) -> LossStats:
        """Train over `train_dl` (one epoch); returns the epoch's loss statistics (summed over ranks)."""
        self.model.train()
        running = epoch_total = LossStats.zeros(self.objective.stat_names, self.objective.stat_unit)
        start, audio_seconds, prefix = time.time(), 0.0, f"Epoch {epoch}"
        for batch, is_new in self._in_lockstep(train_dl):
            self.state.batch_idx_train += 1
            self.state.batches_in_epoch += 1
            if self.config.log_batch_cuts and is_new:
                logging.info(f"{prefix}, batch {self.state.batches_in_epoch} cuts: {batch_cut_ids(batch)}")
            loss, stats = self.compute_loss(self.ddp_model, batch)
            if not is_new:
                loss, stats = loss * 0.0, LossStats.zeros(self.objective.stat_names, self.objective.stat_unit)
            if self._step(loss, batch):
                running = running.decayed(1 - 1 / self.config.reset_interval) + stats
                epoch_total = epoch_total + stats
            audio_seconds += batch_audio_seconds(batch) * self.context.world_size * is_new
            self._after_step(train_dl)
            if self.state.batch_idx_train % self.config.log_interval == 0:
                self._log_progress(prefix, stats, running, audio_seconds, time.time() - start, epoch_audio_seconds)
            if self.state.batch_idx_train % self.config.valid_interval == 0:
                self.validate(data, valid_cuts)
                self.model.train()
        self.state.batches_in_epoch = 0
        return epoch_total.with_values(sum_over_ranks(epoch_total.to_tensor(), self.context))

    def fit(
        self, train_batches: Callable[[int], Any], data: Any, valid_cuts: CutSet, epoch_audio_seconds: float
    ) -> None:
        """Every epoch from the resumed one to --num-epochs: reseed (seed + epoch - 1), step the scheduler's epoch,
        train on ``train_batches(epoch)`` (built while ``self.sampler_state`` still holds a mid-epoch resume
        position; a DataLoader's sampler gets ``set_epoch(epoch - 1)`` unless it was resumed), validate and write
        EXP/epoch-N.pt; then close the tensorboard writer."""
        for epoch in range(self.state.cur_epoch, self.config.num_epochs + 1):
            fix_random_seed(self.config.seed + epoch - 1)
            self.scheduler.step_epoch(epoch - 1)
            train_dl = train_batches(epoch)
            sampler = getattr(train_dl, "sampler", None)
            if self.sampler_state is None and hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch - 1)
            self.sampler_state = None
            self.state.cur_epoch = epoch
            train_stats = self.train_one_epoch(epoch, train_dl, valid_cuts, data, epoch_audio_seconds)
            valid_stats = self.validate(data, valid_cuts)
            logging.info(f"Epoch {epoch} done: train loss{train_stats}, valid loss{valid_stats}")
            if self.context.is_main:
                self.save_epoch_checkpoint(epoch, train_stats.per_frame()["loss"], valid_stats.per_frame()["loss"])
        self.close()

    def _in_lockstep(self, batches: Iterable[Dict[str, Any]]) -> Iterator[Tuple[Dict[str, Any], bool]]:
        """(batch, True) for each of this rank's batches, while any rank has one left; a rank whose batches ran
        out first repeats its last batch as (batch, False), trained with weight 0, so that every rank takes the
        same number of steps (Shar shards give ranks different numbers of batches) and no cut is used twice."""
        last = None
        for batch in iter_until_all_ranks_done(batches, self.context):
            if batch is not None:
                last = batch
                yield batch, True
            elif last is None:
                raise RuntimeError(f"rank {self.context.rank} got no training batch this epoch while others did")
            else:
                yield last, False

    def _log_progress(
        self, prefix: str, stats: LossStats, running: LossStats, audio_seconds: float, elapsed: float,
        epoch_audio_seconds: float,
    ) -> None:
        rate = audio_seconds / max(elapsed, 1e-6)
        remaining = max(epoch_audio_seconds - audio_seconds, 0.0) / max(rate, 1e-6)
        lr = self.scheduler.get_last_lr()[0]
        grad_scale = self.scaler.get_scale() if self.config.use_fp16 else 1.0
        logging.info(
            f"{prefix}, batch {self.state.batches_in_epoch}, loss{stats}, tot_loss{running}, "
            f"lr: {lr:.3e}, grad_scale: {grad_scale:g}, {rate:.1f} audio-s/s, "
            f"epoch ETA {remaining / 60:.1f} min, skipped batches: {self.state.num_bad_batches}"
        )
        if self.writer is not None:
            step = self.state.batch_idx_train
            for name, value in running.per_frame().items():
                self.writer.add_scalar(f"train/{name}", value, step)
            self.writer.add_scalar("train/learning_rate", lr, step)
            self.writer.add_scalar("train/grad_scale", grad_scale, step)
            self.writer.add_scalar("train/audio_seconds_per_second", rate, step)

    @torch.no_grad()
    def validate(self, data: LibriSpeechAsrDataModule, valid_cuts: CutSet) -> LossStats:
        """Loss on the validation cuts (summed over ranks); logged and written to tensorboard."""
        self.model.eval()
        total = LossStats.zeros(self.objective.stat_names, self.objective.stat_unit)
        for batch in data.eval_dataloaders(valid_cuts):
            _, stats = self.compute_loss(self.model, batch)
            total = total + stats
        total = total.with_values(sum_over_ranks(total.to_tensor(), self.context))
        logging.info(f"Validation at batch {self.state.batch_idx_train}: loss{total}")
        if self.writer is not None:
            for name, value in total.per_frame().items():
                self.writer.add_scalar(f"valid/{name}", value, self.state.batch_idx_train)
        return total

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class _FixedState:
    """Hands a precomputed state dict to save_checkpoint in place of a live sampler."""

    def __init__(self, state: Dict[str, Any]) -> None:
        self._state = state

    def state_dict(self) -> Dict[str, Any]:
        return self._state
