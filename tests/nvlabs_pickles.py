"""Hostile and broken NVlabs-style pickles for the reader's tests (test_nvlabs.py, test_bad_inputs.py)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

SNAPSHOTS = ("sg2ada_res64_map8", "sg2ada_res128_auto")


class _RunsACommand:
    """Unpickled by plain ``pickle.load``, this runs the shell command (os.system)."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def write_code_pickle(path, marker) -> Path:
    """A snapshot-shaped dict whose G_ema, when unpickled, would create ``marker`` through os.system."""
    path = Path(path)
    path.write_bytes(pickle.dumps({"G_ema": _RunsACommand(f"touch {marker}"), "training_set_kwargs": {}}))
    return path


def write_unknown_class_pickle(path) -> Path:
    """A protocol-0 pickle calling ``training.networks.Generator()`` (a global the reader never rebuilds)."""
    path = Path(path)
    path.write_bytes(b"ctraining.networks\nGenerator\n(tR.")
    return path


def write_plain_pickle(path) -> Path:
    """A harmless snapshot-shaped pickle (dicts and strings only)."""
    path = Path(path)
    path.write_bytes(pickle.dumps({"G_ema": None, "training_set_kwargs": {"path": "~/datasets/" + "x" * 200}}))
    return path


def write_truncated(src, path, fraction: float = 0.6) -> Path:
    data = Path(src).read_bytes()
    path = Path(path)
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def write_renamed_class(src, path, old: str, new: str) -> Path:
    """The snapshot ``src`` with every ``old`` class name (and source text) spelt ``new`` (same length, so the
    pickle stays valid): a network whose records are not stylegan2-ada-pytorch's."""
    assert len(old) == len(new)
    path = Path(path)
    path.write_bytes(Path(src).read_bytes().replace(old.encode(), new.encode()))
    return path
