"""Shared fixtures. The reference bundle lives beside the checkout (``../shared``) in CI.

Outside CI a missing bundle skips the reference tests; with RESTYLE_REQUIRE_REFERENCE=1
(set by .ci/run) it is an error, so CI can never pass by skipping them.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from restyle_lab.models.host_memory import reuse_freed_memory

REPO = Path(__file__).resolve().parents[1]
WORKER = os.environ.get("PYTEST_XDIST_WORKER")  # under ``make test``'s two workers (pytest-xdist)
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
SMOKE_RUN_FILES = {"test_notebooks.py", "test_live_kernel.py", "test_browser.py"}
SPREAD_FILES = {"test_reference.py"}
FIRST_FILES = ("test_real_domain.py", "test_browser.py", "test_live_kernel.py", "test_notebooks.py",
               "test_mini_assets.py")  # the longest scopes start first, so neither worker is left with one at the end


def pytest_collection_modifyitems(config, items):
    if WORKER:
        rank = {name: k for k, name in enumerate(FIRST_FILES)}
        items.sort(key=lambda item: rank.get(item.path.name, len(FIRST_FILES)))  # stable: file order kept otherwise


# the float64 reference cases allocate and free 100 MB tensors per layer; kept for reuse they take 1.7x less time
# (models/host_memory.py: the process keeps its peak heap, which a test process can afford)
reuse_freed_memory()
if WORKER:
    # the notebook kernels and commands tests start take the worker's share of the cores: with both cores each,
    # beside the other worker, the cars run took 1.8x its time (509 s vs 289 s in CI)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // WORKERS)))
    # each worker its own cache folder: two workers never render one test set into the same place
    os.environ["RESTYLE_LAB_DATA"] = str(Path(os.environ.get("RESTYLE_LAB_DATA", Path.home() / ".cache" /
                                                            "restyle-lab")) / f"pytest-{WORKER}")


def pytest_xdist_make_scheduler(config, log):
    """Whole files to a worker (their module fixtures are built once), the files reading the smoke run's store
    to one worker (it is made once), and the reference cases, which share nothing, one by one."""
    from xdist.scheduler import LoadScopeScheduling

    class FileScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            name = path.rsplit("/", 1)[-1]
            return "smoke_run" if name in SMOKE_RUN_FILES else nodeid if name in SPREAD_FILES else path

    return FileScheduling(config, log)


def shared_dir() -> Path:
    return Path(os.environ.get("RESTYLE_SHARED", REPO.parent / "shared"))


def reference_dir() -> Path | None:
    ref = shared_dir() / "reference"
    return ref if (ref / "fill.py").exists() else None


@pytest.fixture(scope="session")
def reference() -> Path:
    ref = reference_dir()
    if ref is None:
        msg = f"reference bundle not found at {shared_dir() / 'reference'} (set RESTYLE_SHARED)"
        if os.environ.get("RESTYLE_REQUIRE_REFERENCE") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return ref


@pytest.fixture(scope="session")
def fill(reference):
    """The bundle's fill.py, imported from its own location (never copied here)."""
    spec = importlib.util.spec_from_file_location("reference_fill", reference / "fill.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // WORKERS)))
    yield


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """``reproduce --smoke`` on mini, once per session: (its domain folder, the finished process). The
    notebook tests check what it wrote; the live-kernel and browser tests run the notebooks again on its
    store, so no inversion is computed twice."""
    out = tmp_path_factory.mktemp("reproduce")
    env = dict(os.environ, RESTYLE_LAB_DATA=str(out / "data"))
    res = subprocess.run([sys.executable, "-m", "restyle_lab.cli", "reproduce", "--smoke", "--out", str(out)],
                         capture_output=True, text=True, timeout=3000, env=env, cwd=out)
    return out / "mini", res


@pytest.fixture(scope="session")
def smoke_store(smoke_run) -> Path:
    """The smoke run's domain folder, its store complete (a failed run fails the tests that need it)."""
    root, res = smoke_run
    if res.returncode != 0:
        pytest.fail("the papermill smoke run failed (test_notebooks says why): " + res.stdout[-1500:])
    return root
