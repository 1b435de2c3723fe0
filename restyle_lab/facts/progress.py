"""Progress of long work, shown where the user looks.

``Progress`` counts work done out of work to do (images, or image-steps for the optimisation
baselines, whose steps are long) with a label. It drives a tqdm bar when one is wanted, and when
``$RESTYLE_LAB_PROGRESS`` names a file (``restyle-lab reproduce`` sets it in each notebook's kernel) it
also writes its state there, at most once a second, so the console that started the notebook can
show what runs inside it (``read_progress``), with a rate and an ETA.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tqdm.auto import tqdm

ENV = "RESTYLE_LAB_PROGRESS"
EVERY = 1.0  # seconds between writes of the state file


class Progress:
    """``with Progress("evaluate mini", total, "image") as p: p.label = "restyle_psp"; p.advance(8)``."""

    def __init__(self, title: str, total: int, unit: str = "image", show: bool = True):
        self.title, self.total, self.unit = title, total, unit
        self.label, self.done = "", 0
        self.started = time.time()
        self._written = 0.0
        self._path = os.environ.get(ENV) or None
        self._bar = tqdm(total=total, desc=title, unit=unit, disable=not show) if show else None

    def __enter__(self) -> "Progress":
        self._write(force=True)
        return self

    def __exit__(self, *exc) -> None:
        self._write(force=True)
        if self._bar is not None:
            self._bar.close()

    def describe(self, label: str) -> None:
        """What runs now (a method, a batch)."""
        self.label = label
        if self._bar is not None:
            self._bar.set_postfix_str(label, refresh=False)
        self._write()

    def advance(self, n: float = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        self._write()

    def _write(self, force: bool = False) -> None:
        now = time.time()
        if self._path is None or (not force and now - self._written < EVERY):
            return
        self._written = now
        state = {"title": self.title, "label": self.label, "done": self.done, "total": self.total, "unit": self.unit,
                 "started": self.started, "updated": now}
        tmp = f"{self._path}.{os.getpid()}.tmp"
        try:  # a status line: losing one write is harmless, failing the run over it is not
            Path(tmp).write_text(json.dumps(state))
            os.replace(tmp, self._path)
        except OSError:
            pass


def read_progress(path) -> dict | None:
    """The state a ``Progress`` last wrote to ``path`` (None when none or unreadable)."""
    try:
        state = json.loads(Path(path).read_text())
        return state if isinstance(state, dict) else None
    except (OSError, ValueError):
        return None


def describe_progress(state: dict) -> str:
    """'optim_w: 120/512 image-steps, ETA 3 min' from a state (rate measured since it started)."""
    done, total = state.get("done", 0), state.get("total", 0)
    label = state.get("label") or state.get("title", "")
    text = f"{label}: {done:.0f}/{total} {state.get('unit', '')}s".strip()
    spent = state.get("updated", 0) - state.get("started", 0)
    if 0 < done < total and spent > 0:
        eta = spent * (total - done) / done
        text += f", ETA {eta / 60:.1f} min" if eta >= 90 else f", ETA {eta:.0f} s"
    return text
