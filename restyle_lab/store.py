"""The run store: tidy result rows in Parquet parts, per-step latents in npz, a provenance sidecar.

Layout of a run directory::

    provenance.json            what produced the rows (checked before a resume)
    dataset_manifest.json      every input file with its sha256 and load status
    parts/<method>/b000012.parquet   one (batch, method) unit of rows
    latents/<method>/b000012.npz     its per-step latents (and uint8 images)
    errors/b000012.parquet           files of that batch that could not be read

A unit is complete when its Parquet part exists; parts are written to a temporary name
and renamed, so a process killed at any moment leaves only whole parts behind and the
next run redoes exactly the missing units. Part names depend on the batch, not on the
process, so any number of shards (torchrun ranks) write disjoint files.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ["image", "image_index", "method", "step", "metric", "value", "status"]
TIME_METRICS = ("seconds_per_image", "cumulative_seconds_per_image")
IDENTITY_KEYS = ("domain", "dataset_manifest_sha256", "n_images", "metrics", "batch_size", "dtype", "device_type",
                 "package_version")


class StoreError(Exception):
    pass


def _atomic_write_bytes(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def part_path(run_dir, method: str, batch: int) -> Path:
    return Path(run_dir) / "parts" / method / f"b{batch:06d}.parquet"


def latents_path(run_dir, method: str, batch: int) -> Path:
    return Path(run_dir) / "latents" / method / f"b{batch:06d}.npz"


def write_part(run_dir, method: str, batch: int, rows: pd.DataFrame) -> Path:
    path = part_path(run_dir, method, batch)
    _atomic_write_bytes(path, lambda tmp: rows[COLUMNS].to_parquet(tmp, index=False))
    return path


def write_errors(run_dir, batch: int, rows: pd.DataFrame) -> None:
    path = Path(run_dir) / "errors" / f"b{batch:06d}.parquet"
    _atomic_write_bytes(path, lambda tmp: rows.to_parquet(tmp, index=False))


def write_latents(run_dir, method: str, batch: int, names, steps, latents, images=None, start_image=None,
                  start_latent=None) -> Path:
    """latents [S, N, n_styles, D] float32; images uint8 [S, N, h, w, 3]; start_image uint8 [N, h, w, 3];
    start_latent [N, n_styles, D]: the code the first step started from."""
    path = latents_path(run_dir, method, batch)
    arrays = {"names": np.asarray(names, dtype=str), "steps": np.asarray(steps, dtype=np.int64),
              "latents": np.asarray(latents, dtype=np.float32)}
    if images is not None:
        arrays["images"] = np.asarray(images, dtype=np.uint8)
    if start_image is not None:
        arrays["start_image"] = np.asarray(start_image, dtype=np.uint8)
    if start_latent is not None:
        arrays["start_latent"] = np.asarray(start_latent, dtype=np.float32)

    def write(tmp):
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    _atomic_write_bytes(path, write)
    return path


def read_results(run_dir, methods=None) -> pd.DataFrame:
    """Every row of a run (all shards), sorted; raises if a unit was written twice."""
    run_dir = Path(run_dir)
    parts = sorted((run_dir / "parts").glob("*/b*.parquet"))
    if methods is not None:
        parts = [p for p in parts if p.parent.name in set(methods)]
    if not parts:
        raise StoreError(f"{run_dir}: no result parts yet (run `restyle-lab evaluate` first)")
    df = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    key = ["image_index", "method", "step", "metric"]
    dup = df.duplicated(key)
    if dup.any():
        raise StoreError(f"{run_dir}: {int(dup.sum())} duplicate rows, e.g. {df[dup].iloc[0][key].to_dict()}")
    return df.sort_values(key, kind="stable").reset_index(drop=True)


def read_errors(run_dir) -> pd.DataFrame:
    parts = sorted((Path(run_dir) / "errors").glob("b*.parquet"))
    if not parts:
        return pd.DataFrame(columns=["image", "image_index", "status"])
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)


def read_latents(run_dir, method: str) -> dict:
    """Merged npz content of a method: names [N], steps [S], latents [S, N, ...], images, start_image."""
    files = sorted((Path(run_dir) / "latents" / method).glob("b*.npz"))
    if not files:
        raise StoreError(f"{run_dir}: no stored latents for method {method!r}")
    loaded = [dict(np.load(f)) for f in files]
    out = {"names": np.concatenate([d["names"] for d in loaded]), "steps": loaded[0]["steps"],
           "latents": np.concatenate([d["latents"] for d in loaded], axis=1)}
    for key, axis in (("images", 1), ("start_image", 0), ("start_latent", 0)):
        if all(key in d for d in loaded):
            out[key] = np.concatenate([d[key] for d in loaded], axis=axis)
    return out


def export_official_latents(run_dir, method: str, path) -> Path:
    """The official ``latents.npy``: a pickled dict {file basename: [w+ of each step, (n_styles, D)]}.

    Read it back with ``np.load(path, allow_pickle=True).item()``.
    """
    data = read_latents(run_dir, method)
    out = {Path(str(name)).name: [data["latents"][s, i] for s in range(len(data["steps"]))]
           for i, name in enumerate(data["names"])}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, out, allow_pickle=True)
    return path


# ------------------------------------------------------------------ provenance

def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def check_or_write_provenance(run_dir, provenance: dict) -> dict:
    """Write provenance.json, or check that an existing one describes the same inputs.

    The data, metrics and settings must match; each method already stored must be the
    same method (same checkpoints, steps, options); new methods join the store. A
    mismatch raises and leaves every stored row untouched.
    """
    path = Path(run_dir) / "provenance.json"
    if path.exists():
        old = json.loads(path.read_text())
        diffs = [k for k in IDENTITY_KEYS if _canon(old.get(k)) != _canon(provenance.get(k))]
        stored = old.get("methods", {})
        diffs += [f"methods[{name!r}]" for name, spec in provenance["methods"].items()
                  if name in stored and _canon(stored[name]) != _canon(spec)]
        if diffs:
            details = "; ".join(f"{k}: stored {_short(_lookup(old, k))} vs now {_short(_lookup(provenance, k))}"
                                for k in diffs)
            raise StoreError(f"{run_dir} holds results of a different setup ({details}). Its rows are kept; "
                             "write to a new --out directory, or delete that one to start over.")
        added = {k: v for k, v in provenance["methods"].items() if k not in stored}
        if not added:
            return old
        provenance = {**old, "methods": {**stored, **added}}
    _atomic_write_bytes(path, lambda tmp: tmp.write_text(json.dumps(provenance, indent=1, default=str)))
    return provenance


def _lookup(prov, key):
    if key.startswith("methods["):
        return prov.get("methods", {}).get(key[9:-2])
    return prov.get(key)


def read_provenance(run_dir) -> dict:
    path = Path(run_dir) / "provenance.json"
    if not path.exists():
        raise StoreError(f"{run_dir}: no provenance.json (not a run directory?)")
    return json.loads(path.read_text())


def _canon(value):
    return json.dumps(value, sort_keys=True, default=str)


def _short(value, n=80):
    s = _canon(value)
    return s if len(s) <= n else s[:n] + "..."
