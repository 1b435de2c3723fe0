"""Running one notebook through papermill so that it cannot hang: a time limit for the whole notebook,
a kernel reached over IPC sockets in a private folder, no widgets, no torchrun variables inherited."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from traitlets.config import Config

from .analysis.explorer import BATCH_ENV
from .errors import UsageError
from .torchrun import TORCHRUN_VARIABLES

@dataclass
class Outcome:
    name: str
    status: str  # "ran", "failed", "timed out", "skipped"
    seconds: float = 0.0
    why: str = ""


def notebook_dir() -> Path:
    """The notebooks: inside the installed package (a wheel), else the source checkout's notebooks/."""
    here = Path(__file__).resolve().parent
    for folder in (here / "notebooks", here.parent / "notebooks"):
        if folder.is_dir() and any(folder.glob("*.ipynb")):
            return folder
    raise UsageError(f"the notebooks are neither in {here / 'notebooks'} nor in {here.parent / 'notebooks'}; "
                     "reinstall restyle-lab")


@contextlib.contextmanager
def kernel_environment():
    """Kernels started inside see BATCH_ENV (no widgets are built) and none of torchrun's variables."""
    saved = dict(os.environ)
    os.environ[BATCH_ENV] = "1"
    for key in TORCHRUN_VARIABLES:
        os.environ.pop(key, None)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def execute(src: Path, dst: Path, parameters: dict, cwd: Path, timeout: float) -> None:
    """One notebook through papermill, stopped after ``timeout`` seconds in all (nbclient's per-cell limit is
    set to what is left of it). The kernel listens on IPC sockets in a private folder, not on TCP ports."""
    import papermill as pm

    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory(prefix="restyle-kernel-") as sockets, kernel_environment():
        # configured, not handed over as a ready KernelManager: nbclient ignores its time limits for the latter
        ipc = Config({"KernelManager": {"transport": "ipc", "ip": str(Path(sockets) / "k")}})
        pm.execute_notebook(str(src), str(dst), parameters=parameters, kernel_name="python3", cwd=str(cwd),
                            progress_bar=False, log_output=False, config=ipc, execution_timeout=max(1, int(timeout)),
                            timeout_func=lambda cell: max(1, int(deadline - time.monotonic())))


def failure(err: Exception, timeout: float) -> tuple[str, str]:
    """(status, reason) of a notebook that raised ``err``."""
    kind = type(err).__name__
    if kind == "CellTimeoutError" or "timed out" in str(err).lower():
        return "timed out", f"stopped after the {timeout:.0f} s limit (--timeout)"
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    return "failed", f"{kind}: {lines[-1][:300] if lines else ''}"


def run_notebook(src: Path, dst: Path, name: str, parameters: dict, cwd: Path, timeout: float) -> Outcome:
    t0 = time.time()
    try:
        execute(src, dst, parameters, cwd, timeout)
        return Outcome(name, "ran", time.time() - t0)
    except Exception as err:  # papermill wraps the cell's error; the other notebooks go on
        status, why = failure(err, timeout)
        return Outcome(name, status, time.time() - t0, why)
