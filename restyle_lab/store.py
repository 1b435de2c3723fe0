"""The run store: tidy result rows in Parquet parts, per-step latents in npz, a provenance sidecar.

Layout of a run directory::

    provenance.json            what produced the rows (checked before a resume)
    dataset_manifest.json      every input file with its sha256, size, mtime and load status
    parts/<method>/b000012.parquet   one (batch, method) unit of rows
    latents/<method>/b000012.npz     its per-step latents (and uint8 images)
    errors/b000012.parquet           files of that batch that could not be read
    locks/b000012.lock               held while a process computes that batch

A method that inverts a seeded subset of the test set (the optimisation baselines at real
size) counts its batches within that subset; its errors and locks carry the subset's key
(``s64-0_b000003``).

A unit is complete when its Parquet part exists and reads back whole; parts are written
to a temporary name and renamed, so a process killed at any moment leaves only whole
parts behind and the next run redoes exactly the missing units (a part damaged after the
fact is found on resume, and redone). Part names depend on the batch, not on the
process, so any number of shards (torchrun ranks) write disjoint files, and processes
started on the same run directory share its batches through the lock files.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from .errors import StoreError
from .files import atomic_save_npy, atomic_save_npz, atomic_write, atomic_write_json

COLUMNS = ["image", "image_index", "method", "step", "metric", "value", "status"]
ERROR_COLUMNS = ["image", "image_index", "status"]
# settings that make two runs different experiments: a resume must match them all
IDENTITY_KEYS = ("domain", "dataset_manifest_sha256", "n_images", "metrics", "batch_size", "dtype", "impl",
                 "device_type", "package_version")


def _unit(batch: int) -> str:
    return f"b{batch:06d}"


def unit_name(batch: int, images_key: str = "") -> str:
    """The name of a batch of an image list ('' = the whole test set) in errors/ and locks/."""
    return f"{images_key}_{_unit(batch)}" if images_key else _unit(batch)


def part_path(run_dir, method: str, batch: int) -> Path:
    return Path(run_dir) / "parts" / method / f"{_unit(batch)}.parquet"


def latents_path(run_dir, method: str, batch: int) -> Path:
    return Path(run_dir) / "latents" / method / f"{_unit(batch)}.npz"


def write_part(run_dir, method: str, batch: int, rows: pd.DataFrame) -> Path:
    return atomic_write(part_path(run_dir, method, batch), lambda tmp: rows[COLUMNS].to_parquet(tmp, index=False))


def write_errors(run_dir, unit: str, rows: pd.DataFrame) -> None:
    path = Path(run_dir) / "errors" / f"{unit}.parquet"
    atomic_write(path, lambda tmp: rows[ERROR_COLUMNS].to_parquet(tmp, index=False))


def write_latents(run_dir, method: str, batch: int, names, steps, latents, images=None, start_image=None,
                  start_latent=None) -> Path:
    """latents [S, N, n_styles, D] float32; images uint8 [S, N, h, w, 3]; start_image uint8 [N, h, w, 3];
    start_latent [N, n_styles, D]: the code the first step started from."""
    arrays = {"names": np.asarray(names, dtype=str), "steps": np.asarray(steps, dtype=np.int64),
              "latents": np.asarray(latents, dtype=np.float32)}
    if images is not None:
        arrays["images"] = np.asarray(images, dtype=np.uint8)
    if start_image is not None:
        arrays["start_image"] = np.asarray(start_image, dtype=np.uint8)
    if start_latent is not None:
        arrays["start_latent"] = np.asarray(start_latent, dtype=np.float32)
    return atomic_save_npz(latents_path(run_dir, method, batch), compress=True, **arrays)


# --------------------------------------------------------------------------- completeness

def part_rows(path: Path) -> int | None:
    """Row count from the part's Parquet footer (cheap: the footer only); None when it does not read back
    whole with our columns."""
    try:
        meta = pq.read_metadata(path)
        return meta.num_rows if meta.schema.to_arrow_schema().names == COLUMNS else None
    except Exception:  # pyarrow raises ArrowInvalid, OSError and friends for damaged files
        return None


def latents_are_whole(path: Path) -> bool:
    """The npz's zip directory reads back (a truncated file fails here; its members are not decompressed)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return "latents.npy" in zf.namelist()
    except (OSError, zipfile.BadZipFile, EOFError):
        return False


def unit_done(run_dir, method: str, batch: int) -> bool:
    """Is this (method, batch) stored whole? A missing part is not; a damaged part or latents file is not
    either (the caller redoes it and says so). A batch of only unreadable files has an empty part."""
    part = part_path(run_dir, method, batch)
    if not part.exists():
        return False
    rows = part_rows(part)
    return rows == 0 or (rows is not None and latents_are_whole(latents_path(run_dir, method, batch)))


def damaged_units(run_dir, batches_of: dict) -> list:
    """(method, batch) pairs (``batches_of``: method -> batches) whose part exists but does not read back
    whole (they are redone)."""
    return [(m, b) for m, batches in batches_of.items() for b in batches
            if part_path(run_dir, m, b).exists() and not unit_done(run_dir, m, b)]


@contextlib.contextmanager
def claim(run_dir, unit: str | None, wait: bool = False):
    """Hold the lock of one batch (``unit_name``; None: the store's metadata); yields False when another
    process holds it and ``wait`` is off. The lock dies with its process."""
    path = Path(run_dir) / "locks" / f"{unit or 'store'}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- reading

def _read_part(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as err:  # pyarrow's errors for a damaged file
        raise StoreError(f"{path} is damaged ({type(err).__name__}); run the same `restyle-lab evaluate` command "
                         "again: it redoes damaged parts") from None


def read_results(run_dir, methods=None) -> pd.DataFrame:
    """Every row of a run (all shards), sorted; raises if a unit was written twice or is damaged."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise StoreError(f"{run_dir}: no such run directory")
    parts = sorted((run_dir / "parts").glob("*/b*.parquet"))
    if methods is not None:
        parts = [p for p in parts if p.parent.name in set(methods)]
    if not parts:
        raise StoreError(f"{run_dir}: no result parts yet (run `restyle-lab evaluate` first)")
    df = pd.concat([_read_part(p) for p in parts], ignore_index=True)
    key = ["image_index", "method", "step", "metric"]
    dup = df.duplicated(key)
    if dup.any():
        raise StoreError(f"{run_dir}: {int(dup.sum())} duplicate rows, e.g. {df[dup].iloc[0][key].to_dict()}")
    return df.sort_values(key, kind="stable").reset_index(drop=True)


def read_errors(run_dir) -> pd.DataFrame:
    """The input files a run skipped, with the reason (image, image_index, status)."""
    parts = sorted((Path(run_dir) / "errors").glob("*.parquet"))
    if not parts:
        return pd.DataFrame(columns=ERROR_COLUMNS)
    errors = pd.concat([_read_part(p) for p in parts], ignore_index=True)
    return errors.drop_duplicates("image_index").sort_values("image_index", ignore_index=True)


def read_latents(run_dir, method: str) -> dict:
    """Merged npz content of a method: names [N], steps [S], latents [S, N, ...], images, start_image."""
    files = sorted((Path(run_dir) / "latents" / method).glob("b*.npz"))
    if not files:
        raise StoreError(f"{run_dir}: no stored latents for method {method!r}")
    loaded = []
    for f in files:
        try:
            loaded.append(dict(np.load(f)))
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
            raise StoreError(f"{f} is damaged ({type(err).__name__}); run the same `restyle-lab evaluate` command "
                             "again: it redoes damaged units") from None
    out = {"names": np.concatenate([d["names"] for d in loaded]), "steps": loaded[0]["steps"],
           "latents": np.concatenate([d["latents"] for d in loaded], axis=1)}
    for key, axis in (("images", 1), ("start_image", 0), ("start_latent", 0)):
        if all(key in d for d in loaded):
            out[key] = np.concatenate([d[key] for d in loaded], axis=axis)
    return out


def stored_latent_arrays(run_dir, method: str) -> tuple[list[str], set[str]] | None:
    """(image names in stored order, names of the arrays every batch holds) of a method's latents, read
    without loading the arrays; None when nothing (or something damaged) is stored."""
    names, arrays = [], None
    for f in sorted((Path(run_dir) / "latents" / method).glob("b*.npz")):
        try:
            with np.load(f) as z:
                names += [str(n) for n in z["names"]]
                arrays = set(z.files) if arrays is None else arrays & set(z.files)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
            return None
    return (names, arrays) if arrays is not None else None


def export_official_latents(run_dir, method: str, path) -> Path:
    """The official ``latents.npy``: a pickled dict {image name: [w+ of each step, (n_styles, D)]}.

    Keys are the image paths relative to the test folder (the file name for a flat folder,
    as the official scripts key them). Read it back with ``np.load(path, allow_pickle=True).item()``.
    """
    data = read_latents(run_dir, method)
    out = {str(name): [data["latents"][s, i] for s in range(len(data["steps"]))]
           for i, name in enumerate(data["names"])}
    return atomic_save_npy(path, out)


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


def read_provenance(run_dir) -> dict:
    path = Path(run_dir) / "provenance.json"
    if not path.exists():
        raise StoreError(f"{run_dir}: no provenance.json (not a run directory?)")
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise StoreError(f"{path} is damaged (not JSON); restore it, or evaluate into a new --out") from None


def stored_provenance(run_dir) -> dict | None:
    return read_provenance(run_dir) if (Path(run_dir) / "provenance.json").exists() else None


def check_provenance(run_dir, provenance: dict, learned_keys=()) -> None:
    """Refuse, changing nothing, when ``run_dir`` holds results of a different setup.

    The data, metrics and settings (IDENTITY_KEYS) must match; each method already stored
    must be the same method: every entry of its description equal, except that ``learned_keys``
    (what only building the method reveals, e.g. its family) are compared only where both sides
    know them. New methods may join the store.
    """
    old = stored_provenance(run_dir)
    if old is None:
        return
    diffs = [k for k in IDENTITY_KEYS if _canon(old.get(k)) != _canon(provenance.get(k))]
    stored = old.get("methods", {})
    for name, spec in provenance["methods"].items():
        if name in stored:
            old_spec, spec = _by_content(stored[name]), _by_content(spec)
            keys = [k for k in set(spec) | set(old_spec) if k not in learned_keys or (k in spec and k in old_spec)]
            if any(_canon(old_spec.get(k)) != _canon(spec.get(k)) for k in keys):
                diffs.append(f"methods[{name!r}]")
    if diffs:
        details = "; ".join(f"{k}: stored {_short(_lookup(old, k))} vs now {_short(_lookup(provenance, k))}"
                            for k in diffs)
        raise StoreError(f"{run_dir} holds results of a different setup ({details}). Its rows are kept; "
                         "write to a new --out directory, or delete that one to start over.")


def _by_content(spec: dict) -> dict:
    """A method entry with file paths dropped where their sha256 is recorded: the same checkpoint moved
    to another folder (or checkout) is the same method."""
    out = {k: v for k, v in spec.items() if not (k in ("checkpoint", "generator") and f"{k}_sha256" in spec)}
    boot = out.get("bootstrap")
    if isinstance(boot, dict) and "sha256" in boot:
        out["bootstrap"] = {k: v for k, v in boot.items() if k != "checkpoint"}
    return out


def write_provenance(run_dir, provenance: dict) -> dict:
    """Merge ``provenance`` into the stored one (new methods join, stored entries gain new fields)."""
    old = stored_provenance(run_dir)
    if old is not None:
        methods = {**old.get("methods", {})}
        for name, spec in provenance["methods"].items():
            methods[name] = {**methods.get(name, {}), **spec}
        provenance = {**old, "methods": methods}
    atomic_write_json(Path(run_dir) / "provenance.json", provenance)
    return provenance


def _lookup(prov, key):
    if key.startswith("methods["):
        return prov.get("methods", {}).get(key[9:-2])
    return prov.get(key)


def _canon(value):
    return json.dumps(value, sort_keys=True, default=str)


def _short(value, n=80):
    s = _canon(value)
    return s if len(s) <= n else s[:n] + "..."
