"""The optimisation baseline's snapshot schedule (supplementary Figs. 6-7), in one place.

torch-free, so the command line's help can print it without importing torch.
"""

from __future__ import annotations

# step counts at which one projector run's snapshots are recorded
SNAPSHOTS = (1, 10, 50, 100, 250, 500, 1000)


def snapshot_schedule(n_steps: int) -> tuple:
    """The snapshot steps of an ``n_steps`` run: SNAPSHOTS below it, then n_steps itself (the run's end)."""
    if n_steps < 1:
        raise ValueError(f"an optimisation needs at least 1 step. Got: {n_steps}")
    return tuple(s for s in SNAPSHOTS if s < n_steps) + (n_steps,)
