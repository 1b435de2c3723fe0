"""Shared fixtures. The reference bundle lives beside the checkout (``../shared``) in CI.

Outside CI a missing bundle skips the reference tests; with RESTYLE_REQUIRE_REFERENCE=1
(set by .ci/run) it is an error, so CI can never pass by skipping them.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


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
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    yield
