"""The loop every trainer shares: resume, per-step seeding, logging, checkpoints, samples and a
time budget. A trainer supplies what differs (its step, its state, its samples).

Every step draws its randomness from ``seed`` and the step number, so a run killed and
resumed from its last state computes the same steps it would have computed anyway.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import ClassVar, Protocol

import torch

from ..configs import to_dict
from ..files import atomic_torch_save, atomic_write_json

LOG_EVERY = 25


class SavedConfig:
    """A training config's dict form (saved in every state) and back; ``nested`` rebuilds the
    architecture configs inside it."""

    nested: ClassVar[dict] = {}

    def as_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, d: dict):
        d = dict(d)
        for key, build in cls.nested.items():
            d[key] = build(d[key])
        return cls(**d)


class Trainer(Protocol):
    def start(self, log) -> None:
        """Initialise a fresh run (e.g. from another model's weights)."""

    def load(self, state: dict) -> None:
        """Restore the trainer from a saved state."""

    def state(self) -> dict:
        """What to save besides step, config and elapsed time."""

    def step(self, step: int) -> dict:
        """One training step; returns its log record (JSON-able)."""

    def sample(self, step: int, record: dict, path: Path) -> str:
        """Write a picture of the current model to ``path``; returns the console line for this step."""


def train_loop(trainer: Trainer, cfg, out_dir, max_minutes: float | None = None, log=print) -> Path:
    """Run (or resume) ``trainer`` until ``cfg.iters`` steps; returns the path of ``state.pt``.

    ``cfg`` needs iters, seed, checkpoint_every, sample_every and as_dict(). ``max_minutes``:
    stop early (resumably) after this much wall time in this session.
    """
    out_dir = Path(out_dir)
    state_path = out_dir / "state.pt"
    atomic_write_json(out_dir / "config.json", cfg.as_dict())
    step, elapsed = 0, 0.0
    if state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        trainer.load(state)
        step, elapsed = state["step"], state["elapsed_s"]
        log(f"resumed {state_path} at step {step} ({elapsed / 60:.1f} min so far)")
    else:
        trainer.start(log)
    t_start = time.time() - elapsed
    t_session = time.time()

    def save():
        atomic_torch_save({"step": step, "config": cfg.as_dict(), **trainer.state(),
                           "elapsed_s": time.time() - t_start}, state_path)

    while step < cfg.iters:
        torch.manual_seed(cfg.seed * 1_000_003 + step)
        record = trainer.step(step)
        step += 1
        minutes = (time.time() - t_start) / 60
        if step % LOG_EVERY == 0 or step == cfg.iters:
            with open(out_dir / "log.jsonl", "a") as fh:
                fh.write(json.dumps({"step": step, **record, "minutes": minutes}) + "\n")
        if step % cfg.checkpoint_every == 0 or step == cfg.iters:
            save()
        if step % cfg.sample_every == 0 or step == cfg.iters:
            line = trainer.sample(step, record, out_dir / f"samples_{step:06d}.png")
            log(f"step {step}/{cfg.iters} {line} {minutes:.1f} min")
        if max_minutes is not None and time.time() - t_session > max_minutes * 60:
            save()
            log(f"stopping after {max_minutes} min at step {step}; run again to resume")
            break
    return state_path
