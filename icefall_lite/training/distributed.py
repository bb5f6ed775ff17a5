"""Distributed data parallel set-up: NCCL on CUDA, gloo on CPU; spawned by train.py or launched by torchrun.

Example::

    def run(context: DistributedContext, args): ...
    launch(run, world_size=args.world_size, master_port=args.master_port, args=args)

With ``--world-size N`` the script spawns N processes itself (as icefall does). Under ``torchrun`` (single or
multi-node: ``--nnodes``, ``--node-rank``, ``--master-addr``), the ranks come from its environment variables and
the process group is initialised from them (``env://``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: global rank, number of processes, rank on this node, and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, logs to file and tensorboard."""
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def _device_for(local_rank: int) -> torch.device:
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def _backend() -> str:
    return "nccl" if torch.cuda.is_available() else "gloo"


def setup_dist(rank: int, world_size: int, master_port: int) -> DistributedContext:
    """Join the process group of a job spawned by this script (all ranks on this machine)."""
    os.environ.setdefault("MASTER_ADDR", "localhost")
    os.environ["MASTER_PORT"] = str(master_port)
    if world_size > 1:
        dist.init_process_group(_backend(), rank=rank, world_size=world_size)
    return DistributedContext(rank=rank, world_size=world_size, local_rank=rank, device=_device_for(rank))


def setup_torchrun() -> DistributedContext:
    """Join the process group described by torchrun's environment variables."""
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    if world_size > 1:
        dist.init_process_group(_backend(), init_method="env://")
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank, device=_device_for(local_rank))


def cleanup_dist(context: DistributedContext) -> None:
    if context.is_distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _spawned_entry(rank: int, run: Callable[[DistributedContext, Any], None], world_size: int, master_port: int, args: Any) -> None:
    context = setup_dist(rank, world_size, master_port)
    try:
        run(context, args)
    finally:
        cleanup_dist(context)


def launch(run: Callable[[DistributedContext, Any], None], world_size: int, master_port: int, args: Any) -> None:
    """Run ``run(context, args)`` on every rank: under torchrun, in this process; else in `world_size` processes."""
    if launched_by_torchrun():
        context = setup_torchrun()
        try:
            run(context, args)
        finally:
            cleanup_dist(context)
    elif world_size > 1:
        mp.spawn(_spawned_entry, args=(run, world_size, master_port, args), nprocs=world_size, join=True)
    else:
        _spawned_entry(0, run, 1, master_port, args)


def all_ranks_agree(flag: bool, context: DistributedContext) -> bool:
    """True on every rank if `flag` is True on every rank (so all ranks take the same branch)."""
    if not context.is_distributed:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=context.device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item() > 0)


def iter_until_all_ranks_done(items: Iterable[Any], context: DistributedContext) -> Iterator[Optional[Any]]:
    """This rank's items, then None, until every rank's items have run out (one all-reduce per step), so that
    all ranks make the same number of steps however many items each has."""
    iterator = iter(items)
    while True:
        item = next(iterator, None)
        if context.is_distributed:
            has_item = torch.tensor([0.0 if item is None else 1.0], device=context.device)
            dist.all_reduce(has_item, op=dist.ReduceOp.MAX)
            if has_item.item() == 0:
                return
        elif item is None:
            return
        yield item


def sum_over_ranks(values: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """`values` summed over all ranks (a copy on every rank)."""
    if not context.is_distributed:
        return values
    total = values.clone().to(context.device)
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total.cpu()
