"""The loop every trainer shares: resume, per-step seeding, records, checkpoints, samples, validation
and a time budget. A trainer supplies what differs (its step, its state, its samples; optionally its
validation and its exported checkpoint).

Every step draws its randomness from ``seed`` and the step number, so a run killed at any moment and
resumed from its last state computes the same steps it would have computed anyway. The state is
written (atomically) every ``checkpoint_every`` steps, every ``STATE_MINUTES`` of wall time, and when
the time budget stops the run; the one before it is kept as ``state.prev.pt``. Under torchrun every
rank runs the loop; only the first writes.

A resume is checked before anything is written: the state must read back whole (its zip CRCs), hold
what every state holds and only finite numbers (``read_state``; a damaged one is never resumed from),
and the options must be those it was trained with, but for what the config lets a resume change
(``SavedConfig.resume_free``). One run at a time trains in a folder (a lock that dies with its process).
"""

from __future__ import annotations

import contextlib
import shlex
import time
from pathlib import Path
from typing import Protocol

import torch

from ..facts.errors import CheckpointError, UsageError
from ..records.files import (
    SpecialFile,
    atomic_torch_save,
    atomic_write_json,
    exclusive_lock,
    keep_copy,
    lock_holder,
    open_regular,
    unpickling_reason,
    zip_problem,
)
from .config import SavedConfig
from .distributed import Ranks, broadcast_flag
from .records import Records

__all__ = ["SavedConfig", "Trainer", "train_loop", "read_state", "STATE_NAME", "PREVIOUS_STATE_NAME",
           "CHECKPOINT_DIR"]

STATE_NAME = "state.pt"
PREVIOUS_STATE_NAME = "state.prev.pt"  # the state before the last one, kept for when that one is damaged
LOCK_PATH = "locks/train.lock"  # held by the run training in the folder
STATE_KEYS = ("step", "config", "elapsed_s")  # what every state holds besides its trainer's part
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


def _non_finite(value, where: str = "") -> list[str]:
    """The places in a nested state (dicts, lists, tensors) of floating-point tensors holding NaN or inf."""
    if isinstance(value, torch.Tensor):
        return [where or "the state"] if value.is_floating_point() and not torch.isfinite(value).all() else []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
    return [bad for k, v in items for bad in _non_finite(v, f"{where}.{k}" if where else str(k))]


def state_problem(path) -> tuple[dict | None, str | None]:
    """(the state, None), or (None, what is wrong with the training state file ``path``)."""
    try:
        fh = open_regular(path)
    except SpecialFile as err:
        return None, err.strerror
    except OSError as err:
        return None, err.strerror or str(err)
    with fh:
        head = fh.read(4)
        if head != b"PK\x03\x04":
            return None, "it is empty (0 bytes)" if not head else "it is not a torch.save archive"
        fh.seek(0)
        problem = zip_problem(fh)
        if problem:
            return None, problem
        fh.seek(0)
        try:
            state = torch.load(fh, map_location="cpu", weights_only=True)
        except Exception as err:  # the unpickler raises many types
            return None, f"it does not unpickle ({unpickling_reason(err)})"
    if not isinstance(state, dict) or not all(k in state for k in STATE_KEYS) or not isinstance(state["config"], dict):
        return None, f"it lacks what every state holds ({', '.join(STATE_KEYS)})"
    bad = _non_finite(state)
    if bad:
        return None, f"non-finite values (NaN or inf) in {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}"
    return state, None


def read_state(path) -> dict:
    """A training state, checked (``state_problem``); a damaged one is a CheckpointError that says how to
    resume from the state before it (``state.prev.pt``) when that one is whole."""
    path = Path(path)
    state, problem = state_problem(path)
    if problem is None:
        return state
    previous = path.with_name(PREVIOUS_STATE_NAME)
    if path.name != STATE_NAME or not previous.exists():
        fix = f"train into a new --workdir, or delete {path} to start this run again from step 0"
    else:
        _, previous_problem = state_problem(previous)
        fix = (f"to resume from the state before it, `mv {shlex.quote(str(previous))} {shlex.quote(str(path))}` and "
               "run the same command again" if previous_problem is None else
               f"the state before it, {previous}, is damaged too ({previous_problem}): train into a new --workdir")
    raise CheckpointError(f"{path}: damaged training state: {problem}; it is never resumed from: {fix}")


def check_resume(cfg, saved: dict, state_path: Path) -> list[str]:
    """Refuse (UsageError) a resume whose options differ from the saved ones in anything but what
    ``cfg.resume_free()`` allows; returns the allowed changes, described. An option the saved config lacks
    (added since) counts as its default."""
    now = cfg.as_dict()
    try:
        defaults = type(cfg)().as_dict()
    except Exception:  # a config without defaults: a missing option counts as changed
        defaults = {}
    missing = object()
    changed = {k: (saved.get(k, defaults.get(k, missing)), v) for k, v in now.items()
               if saved.get(k, defaults.get(k, missing)) != v}
    free = cfg.resume_free() if hasattr(cfg, "resume_free") else set()
    shown = {k: f"{k}: {_short(old)} now {_short(new)}" for k, (old, new) in changed.items()}
    refused = [shown[k] for k in changed if k not in free]
    if refused:
        raise UsageError(f"{state_path}: the run was trained with other options ({'; '.join(refused[:4])}"
                         f"{f'; and {len(refused) - 4} more' if len(refused) > 4 else ''}); a resume computes exactly "
                         "what the run would have, so give the options it was started with (its config.json), or "
                         f"train into a new --workdir (a resume may change only {', '.join(sorted(free)) or 'nothing'})")
    return [shown[k] for k in changed]


def _short(value, n: int = 60) -> str:
    text = "(not set)" if value is None else repr(value)
    return text if len(text) <= n else text[:n] + "..."


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
    out_dir = Path(out_dir)
    lock = exclusive_lock(out_dir / LOCK_PATH) if ranks.is_main else contextlib.nullcontext(True)
    with lock as held:
        if not held:
            pid = lock_holder(out_dir / LOCK_PATH)
            raise UsageError(f"{out_dir}: another training run{f' (process {pid})' if pid else ''} is training in "
                             "this folder; wait for it to end (or stop it), or train into another --workdir")
        return _train_locked(trainer, cfg, out_dir, max_minutes, log, ranks, val_every)


def _train_locked(trainer: Trainer, cfg, out_dir: Path, max_minutes, log, ranks: Ranks, val_every) -> Path:
    sched = _schedule(cfg)
    iters, main = sched["iters"], ranks.is_main
    state_path = out_dir / STATE_NAME
    step, elapsed = 0, 0.0
    if state_path.exists() or state_path.is_symlink():
        state = read_state(state_path)
        changes = check_resume(cfg, state["config"], state_path)
        trainer.load(state)
        step, elapsed = state["step"], state["elapsed_s"]
        log(f"resumed {state_path} at step {step} ({elapsed / 60:.1f} min so far)")
        if changes:
            log("options changed since the saved state, now in force: " + "; ".join(changes))
    else:
        trainer.start(log)
    if main:  # only now: a refused resume leaves the run's config.json as it was
        atomic_write_json(out_dir / "config.json", cfg.as_dict())
    t_start = time.time() - elapsed
    t_session = t_saved = time.time()
    board_every = getattr(cfg, "board_interval", LOG_EVERY)
    records = Records(out_dir, iters, step, enabled=main)
    exports = hasattr(trainer, "export")

    def save():
        payload = {"step": step, "config": cfg.as_dict(), **trainer.state(), "elapsed_s": time.time() - t_start}
        if main:
            if state_path.exists():  # the state before, whole: what a damaged state's refusal resumes from
                keep_copy(state_path, out_dir / PREVIOUS_STATE_NAME)
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

