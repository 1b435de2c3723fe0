"""What torchrun tells a process about its place in a job, read in one place, and the --shard K/N a process
may be given instead (torch-free)."""

from __future__ import annotations

import os

from .errors import UsageError

# the variables torchrun sets; a notebook kernel started by a rank must not inherit them
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK",
                      "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID")


def torchrun_env() -> tuple[int, int, int, int]:
    """(rank, world size, local rank, local world size) of this process (0, 1, 0, 1 outside torchrun)."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    return (int(os.environ.get("RANK", 0)), world, int(os.environ.get("LOCAL_RANK", 0)),
            int(os.environ.get("LOCAL_WORLD_SIZE", world)))


def under_torchrun() -> bool:
    return "WORLD_SIZE" in os.environ


def parse_shard(text: str | None) -> tuple | None:
    """'K/N' -> (K, N) with 0 <= K < N; under torchrun without --shard: (RANK, WORLD_SIZE)."""
    if text is None:
        rank, world, _, _ = torchrun_env()
        return (rank, world) if world > 1 else None
    k, sep, n = text.partition("/")
    if not (sep and k.isdigit() and n.isdigit() and int(k) < int(n)):
        raise UsageError(f"--shard {text!r}: expected K/N with 0 <= K < N, e.g. 0/4")
    return int(k), int(n)
