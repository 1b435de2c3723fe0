"""Reading, writing and hashing files: the one place where the package touches the disk.

Every file the package writes goes through ``atomic_write``: the content lands under a
temporary name in the same folder and is renamed over the target, so a process killed at
any moment leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import secrets
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import yaml

from .errors import CheckpointError, UsageError

HASH_CACHE_NAME = "sha256_cache.json"


def data_dir() -> Path:
    """The package's cache folder: $RESTYLE_LAB_DATA, else ~/.cache/restyle-lab."""
    return Path(os.environ.get("RESTYLE_LAB_DATA", Path.home() / ".cache" / "restyle-lab"))


# --------------------------------------------------------------------------- writing

def atomic_write(path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def atomic_write_json(path, value, indent: int | None = 1) -> Path:
    return atomic_write_text(path, json.dumps(value, indent=indent, default=str))


def atomic_save_npy(path, value) -> Path:
    """``np.save`` (pickling allowed: the official latents.npy is a pickled dict)."""
    def write(tmp):
        with open(tmp, "wb") as fh:
            np.save(fh, value, allow_pickle=True)

    return atomic_write(path, write)


def atomic_save_npz(path, compress: bool = False, **arrays) -> Path:
    def write(tmp):
        with open(tmp, "wb") as fh:
            (np.savez_compressed if compress else np.savez)(fh, **arrays)

    return atomic_write(path, write)


def atomic_torch_save(payload, path) -> str:
    """``torch.save`` through ``atomic_write``; returns the file's sha256."""
    atomic_write(path, lambda tmp: torch.save(payload, tmp))
    return sha256_file(path)


# --------------------------------------------------------------------------- hashing

def _sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_file(path, cache: bool = True) -> str:
    """sha256 of a file. Hashes of files over 16 MB are remembered on disk by (path, size,
    mtime), so a 1 GB checkpoint is read once, not once per notebook."""
    path = Path(path).resolve()
    stat = path.stat()
    if not cache or stat.st_size < (16 << 20):
        return _sha256(path)
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    cache_path = data_dir() / HASH_CACHE_NAME
    known = _read_hash_cache(cache_path)
    if key not in known:
        known = {**_read_hash_cache(cache_path), key: _sha256(path)}  # re-read: another process may have added
        try:
            atomic_write_json(cache_path, known, indent=0)
        except OSError:  # a read-only cache folder only costs time
            pass
    return known[key]


def _read_hash_cache(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
        return value if isinstance(value, dict) else {}
    except (OSError, ValueError):
        return {}


# --------------------------------------------------------------------------- reading

def read_torch(path) -> object:
    """``torch.load(path, map_location='cpu', weights_only=True)`` with errors that name the file.

    No code stored in a file is ever run: pickled classes are refused with the reason.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, expected a checkpoint file (.pt)")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if not head.startswith((b"PK\x03\x04", b"\x80")):  # torch.save's zip archive, or its legacy pickle
        what = "an empty file" if not head else "text" if all(32 <= c < 127 or c in (9, 10, 13) for c in head) \
            else f"bytes {head!r}"
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (it starts with {what}; torch.save files are zip "
                              "archives). Give the .pt file itself, or download it again.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        found = re.search(r"(?:GLOBAL|global)\s+([\w.]+(?:\s[\w.]+)?)", text)
        if "Weights only load failed" in text or found:
            what = f" ({found.group(0)})" if found else ""
            raise CheckpointError(
                f"{path}: refused: the file holds pickled Python objects{what} that only run as code. "
                "restyle-lab loads checkpoints with weights_only=True and never executes a file's code. "
                "If you trust the file, load it yourself and re-save plain dicts of tensors, numbers and "
                "strings with torch.save.") from None
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (unpickling failed: {text})") from None
    except Exception as err:  # the unpickler raises many types (IndexError on text, EOFError, ...)
        size = path.stat().st_size
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint ({size} bytes; truncated or corrupt download?): "
            f"{type(err).__name__}: {first_line(err)}. Download the file again and compare its sha256.") from None


def first_line(err: BaseException) -> str:
    text = str(err)
    return text.splitlines()[0] if text else ""


def read_settings(path, what: str):
    """A JSON or YAML file (by its extension) of settings; a missing or malformed file is a UsageError
    naming ``what`` (the option that gave it)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{what} {path}: no such file")
    text = path.read_text()
    try:
        if path.suffix.lower() in (".yml", ".yaml"):
            return yaml.safe_load(text)
        return json.loads(text)
    except (ValueError, yaml.YAMLError) as err:
        kind = "YAML" if path.suffix.lower() in (".yml", ".yaml") else "JSON"
        raise UsageError(f"{what} {path}: not valid {kind} ({first_line(err)})") from None
