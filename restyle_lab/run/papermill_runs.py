"""Running one notebook through papermill so that it cannot hang: a time limit for the whole notebook,
a kernel reached over IPC sockets in a private folder, no widgets, no torchrun variables inherited.

The private folder holds the sockets and the connection file, so nothing is left in the temp folder
when it goes (also after Ctrl-C or SIGTERM: ``cli`` turns SIGTERM into an exception, so cleanups
run). Its path is kept short whatever TMPDIR is (a Unix socket path holds at most 107 bytes), and
the kernel's own stderr goes nowhere: a kernel stopped mid-cell prints ZMQ tracebacks while its
sockets close, which say nothing about the notebook (its errors are in the executed notebook).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from traitlets.config import Config

from ..analysis.explorer import BATCH_ENV
from ..facts.errors import UsageError
from ..facts.progress import ENV as PROGRESS_ENV, read_progress
from ..facts.torchrun import TORCHRUN_VARIABLES

# room left in a Unix socket path (107 bytes) for "<base>/restyle-kernel-XXXXXXXX/k-NNNNN"
MAX_SOCKET_BASE = 107 - len("/restyle-kernel-xxxxxxxx/k-65535") - 8


@dataclass
class Outcome:
    name: str
    status: str  # "ran", "failed", "timed out", "skipped"
    seconds: float = 0.0
    why: str = ""


def notebook_dir() -> Path:
    """The notebooks: inside the installed package (a wheel), else the source checkout's notebooks/."""
    here = Path(__file__).resolve().parents[1]  # the package: restyle_lab/
    for folder in (here / "notebooks", here.parent / "notebooks"):
        if folder.is_dir() and any(folder.glob("*.ipynb")):
            return folder
    raise UsageError(f"the notebooks are neither in {here / 'notebooks'} nor in {here.parent / 'notebooks'}; "
                     "reinstall restyle-lab")


@contextlib.contextmanager
def kernel_environment(progress_file=None):
    """Kernels started inside see BATCH_ENV (no widgets are built), none of torchrun's variables, and where
    to report their progress (``restyle_lab.facts.progress``)."""
    saved = dict(os.environ)
    os.environ[BATCH_ENV] = "1"
    if progress_file is not None:
        os.environ[PROGRESS_ENV] = str(progress_file)
    for key in TORCHRUN_VARIABLES:
        os.environ.pop(key, None)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def socket_base() -> str:
    """A folder for the kernel's private one whose socket paths fit: the temp folder, else /tmp, /dev/shm."""
    for base in (tempfile.gettempdir(), "/tmp", "/dev/shm", "/var/tmp"):
        if len(os.fsencode(base)) <= MAX_SOCKET_BASE and os.path.isdir(base) and os.access(base, os.W_OK | os.X_OK):
            return base
    raise UsageError(f"the temp folder {tempfile.gettempdir()} is too long a path for the kernel's IPC sockets "
                     f"(at most {MAX_SOCKET_BASE} bytes) and /tmp is not writable: set TMPDIR to a short folder")


def _quiet_kernel_manager():
    """nbclient's kernel manager with the kernel's stderr sent nowhere (see the module docstring)."""
    from jupyter_client.manager import AsyncKernelManager

    class QuietKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            kw["stderr"] = subprocess.DEVNULL
            return await super()._async_launch_kernel(kernel_cmd, **kw)

    return QuietKernelManager


def execute(src: Path, dst: Path, parameters: dict, cwd: Path, timeout: float, on_progress=None) -> None:
    """One notebook through papermill, stopped after ``timeout`` seconds in all (nbclient's per-cell limit is
    set to what is left of it). The kernel listens on IPC sockets in a private folder, not on TCP ports.
    ``on_progress(state)``: called about every second with what the notebook reports running."""
    import papermill as pm

    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory(prefix="restyle-kernel-", dir=socket_base()) as private, \
            kernel_environment(Path(private) / "progress.json"), _watch(Path(private) / "progress.json", on_progress):
        # configured, not handed over as a ready KernelManager: nbclient ignores its time limits for the latter
        config = Config({"KernelManager": {"transport": "ipc", "ip": str(Path(private) / "k"),
                                           "connection_file": str(Path(private) / "kernel.json")},
                         "NotebookClient": {"kernel_manager_class": _quiet_kernel_manager()}})
        pm.execute_notebook(str(src), str(dst), parameters=parameters, kernel_name="python3", cwd=str(cwd),
                            progress_bar=False, log_output=False, config=config, execution_timeout=max(1, int(timeout)),
                            timeout_func=lambda cell: max(1, int(deadline - time.monotonic())))


@contextlib.contextmanager
def _watch(path: Path, on_progress):
    """Pass the progress a kernel writes to ``path`` to ``on_progress`` from a thread, every second."""
    if on_progress is None:
        yield
        return
    stop = threading.Event()

    def poll():
        while not stop.wait(1.0):
            state = read_progress(path)
            if state is not None:
                on_progress(state)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def failure(err: Exception, timeout: float) -> tuple[str, str]:
    """(status, reason) of a notebook that raised ``err``."""
    kind = type(err).__name__
    if kind == "CellTimeoutError" or "timed out" in str(err).lower():
        return "timed out", f"stopped after the {timeout:.0f} s limit (--timeout)"
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    return "failed", f"{kind}: {lines[-1][:300] if lines else ''}"


def run_notebook(src: Path, dst: Path, name: str, parameters: dict, cwd: Path, timeout: float,
                 on_progress=None) -> Outcome:
    t0 = time.time()
    try:
        execute(src, dst, parameters, cwd, timeout, on_progress)
        return Outcome(name, "ran", time.time() - t0)
    except Exception as err:  # papermill wraps the cell's error; the other notebooks go on
        status, why = failure(err, timeout)
        return Outcome(name, status, time.time() - t0, why)
