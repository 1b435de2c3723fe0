"""Training on several processes started by torchrun: NCCL between GPUs, gloo between CPU processes.

Each rank trains on its own shard of every batch (``training.data.ShardedOrder``). The encoder is
wrapped in DistributedDataParallel, and only the last backward pass of a step all-reduces: ReStyle
accumulates the gradients of its n_iters_per_batch iterations (and of the micro-batches) before one
optimiser step, so the earlier passes run under ``no_sync``. DDP averages over ranks; each rank scales
its loss by 1 / accumulate, so a step's gradient is the mean over every micro-batch of every rank.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def start(device: torch.device) -> Ranks:
    """This process's place under torchrun (a single process otherwise); joins the process group."""
    ranks = Ranks(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                  int(os.environ.get("LOCAL_RANK", 0)))
    if ranks.distributed:
        if device.type == "cuda":  # NCCL's collectives (all_gather_object too) run on the current device
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        if device.type == "cpu":  # CPU processes on one machine share its cores
            local = int(os.environ.get("LOCAL_WORLD_SIZE", ranks.world_size))
            torch.set_num_threads(max(1, (os.cpu_count() or 2) // local))
    return ranks


def wrap(module: torch.nn.Module, ranks: Ranks, device: torch.device, find_unused: bool):
    """DDP around ``module`` when distributed (``find_unused``: e4e's heads outside the current stage get
    no gradient); the module itself otherwise."""
    if not ranks.distributed:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=find_unused)


def sync_context(wrapped, sync: bool):
    """``no_sync`` for every backward pass of a step but the last."""
    if sync or not isinstance(wrapped, DistributedDataParallel):
        return contextlib.nullcontext()
    return wrapped.no_sync()


def average_gradients(module: torch.nn.Module, ranks: Ranks) -> None:
    """Mean of the gradients over ranks, in place (the latent discriminator, whose R1 pass DDP cannot wrap)."""
    if not ranks.distributed:
        return
    for p in module.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= ranks.world_size


def gather(obj, ranks: Ranks) -> list:
    """Every rank's ``obj`` (picklable), in rank order, on every rank."""
    if not ranks.distributed:
        return [obj]
    out = [None] * ranks.world_size
    dist.all_gather_object(out, obj)
    return out


def mean_over_ranks(values: dict, ranks: Ranks) -> dict:
    """The mean of each float over ranks (logged losses)."""
    if not ranks.distributed:
        return values
    return {k: sum(v[k] for v in gather(values, ranks)) / ranks.world_size for k in values}


def broadcast_flag(flag: bool, ranks: Ranks) -> bool:
    """Rank 0's decision (stop for the time budget) on every rank."""
    if not ranks.distributed:
        return flag
    return bool(gather(flag, ranks)[0])


def finish(ranks: Ranks) -> None:
    if ranks.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
