"""The loop every trainer shares: resume, per-step seeding, records, checkpoints, samples, validation
and a time budget. A trainer supplies what differs (its step, its state, its samples; optionally its
validation and its exported checkpoint).

Every step draws its randomness from ``seed`` and the step number, so a run killed at any moment and
resumed from its last state computes the same steps it would have computed anyway. The state is
written (atomically) every ``checkpoint_every`` steps, every ``STATE_MINUTES`` of wall time, and when
the time budget stops the run. Under torchrun every rank runs the loop; only the first writes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Protocol

import torch

from ..files import atomic_torch_save, atomic_write_json
from .config import SavedConfig
from .distributed import Ranks, broadcast_flag
from .records import Records

__all__ = ["SavedConfig", "Trainer", "train_loop", "STATE_NAME", "CHECKPOINT_DIR"]

STATE_NAME = "state.pt"
CHECKPOINT_DIR = "checkpoints"
BEST_NAME, LAST_NAME = "best_model.pt", "last_model.pt"  # the official coaches' best_model.pt, and the latest
LOG_EVERY = 25  # steps between loss records when the config names no board_interval
STATE_MINUTES = 15.0


class Trainer(Protocol):
    def start(self, log) -> None:
        """Initialise a fresh run (e.g. from another model's weights)."""

    def load(self, state: dict) -> None:
        """Restore the trainer from a saved state."""

    def state(self) -> dict:
        """What to save besides step, config and elapsed time (called on every rank)."""

    def step(self, step: int) -> dict:
        """One training step; returns its record (floats are recorded)."""

    def sample(self, step: int, record: dict, path: Path) -> str:
        """Write a picture of the current model to ``path``; returns the console line for this step."""


def _schedule(cfg) -> dict:
    if hasattr(cfg, "loop_schedule"):
        return cfg.loop_schedule()
    return {"iters": cfg.iters, "seed": cfg.seed, "checkpoint_every": cfg.checkpoint_every,
            "sample_every": cfg.sample_every}


def train_loop(trainer: Trainer, cfg, out_dir, max_minutes: float | None = None, log=print,
               ranks: Ranks = Ranks(), val_every: int | None = None) -> Path:
    """Run (or resume) ``trainer`` until the schedule's last step; returns the path of ``state.pt``.

    ``cfg``: a config with ``loop_schedule()`` (iters, seed, checkpoint_every, sample_every) or those
    attributes, and ``as_dict()``. ``max_minutes``: stop early (resumably) after this much wall time in this
    session. ``val_every``: call ``trainer.validate(step)`` this often (rank 0; a result with ``is_best``
    writes ``checkpoints/best_model.pt``). A trainer with ``export(path, step)`` also keeps
    ``checkpoints/last_model.pt``, written with every state.
    """
    sched = _schedule(cfg)
    iters, main = sched["iters"], ranks.is_main
    out_dir = Path(out_dir)
    state_path = out_dir / STATE_NAME
    if main:
        atomic_write_json(out_dir / "config.json", cfg.as_dict())
    step, elapsed = 0, 0.0
    if state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        trainer.load(state)
        step, elapsed = state["step"], state["elapsed_s"]
        log(f"resumed {state_path} at step {step} ({elapsed / 60:.1f} min so far)")
        changed = sorted(k for k, v in cfg.as_dict().items() if state["config"].get(k) != v)
        if changed:
            log("options changed since the saved state, now in force: " +
                ", ".join(f"{k}={cfg.as_dict()[k]!r} (was {state['config'].get(k)!r})" for k in changed))
    else:
        trainer.start(log)
    t_start = time.time() - elapsed
    t_session = t_saved = time.time()
    board_every = getattr(cfg, "board_interval", LOG_EVERY)
    records = Records(out_dir, iters, step, enabled=main)
    exports = hasattr(trainer, "export")

    def save():
        payload = {"step": step, "config": cfg.as_dict(), **trainer.state(), "elapsed_s": time.time() - t_start}
        if main:
            atomic_torch_save(payload, state_path)
            if exports:
                trainer.export(out_dir / CHECKPOINT_DIR / LAST_NAME, step, minutes=payload["elapsed_s"] / 60)

    try:
        while step < iters:
            torch.manual_seed(sched["seed"] * 1_000_003 + step)
            record = trainer.step(step)
            step += 1
            minutes = (time.time() - t_start) / 60
            if step % board_every == 0 or step == iters:
                records.scalars(step, "train", record, minutes)
            records.advance(step, {k: v for k, v in record.items() if k in ("loss", "d_loss", "g_loss")})
            if main and (step % sched["sample_every"] == 0 or step == iters):
                line = trainer.sample(step, record, out_dir / "samples" / f"step_{step:06d}.png")
                records.write(f"step {step}/{iters} {line} {minutes:.1f} min")
            if val_every and hasattr(trainer, "validate") and (step % val_every == 0 or step == iters):
                result = trainer.validate(step) if main else None
                if result is not None:
                    records.scalars(step, "test", result, minutes)
                    records.write(f"step {step} validation: " + " ".join(
                        f"{k}={v:.4g}" for k, v in result.items() if isinstance(v, float)))
                    if result.get("is_best") and exports:
                        trainer.export(out_dir / CHECKPOINT_DIR / BEST_NAME, step, best=True, minutes=minutes)
            over_budget = max_minutes is not None and time.time() - t_session > max_minutes * 60
            periodic = time.time() - t_saved > STATE_MINUTES * 60
            over_budget, periodic = broadcast_flag(over_budget, ranks), broadcast_flag(periodic, ranks)
            if step % sched["checkpoint_every"] == 0 or step == iters or periodic or over_budget:
                save()
                t_saved = time.time()
            if over_budget and step < iters:
                log(f"stopping after {max_minutes} min at step {step}; run the same command again to resume")
                break
    finally:
        records.close()
    return state_path

