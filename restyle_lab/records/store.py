"""The run store: tidy result rows in Parquet parts, per-step latents in npz, a provenance sidecar.

Layout of a run directory::

    provenance.json            what produced the rows (checked before a resume)
    dataset_manifest.json      every input file with its sha256, size, mtime and load status
    parts/<method>/b000012.parquet   one (batch, method) unit of rows
    latents/<method>/b000012.npz     its per-step latents (and uint8 images)
    errors/b000012.parquet           files of that batch that could not be read
    locks/b000012.lock               held while a process computes that batch

Results are kept per image. An evaluation asks for some images (the first n of a folder, or the
seeded subset an optimisation baseline inverts); the images a method has stored already, with the
same content (sha256), are read back, and only the others are computed, in batches of the batch
size. A first fill names its units ``b000012``; a later one, computing what an earlier request left
out, ``b000012-<key>`` (the key names that request). So a smaller ``--n-images`` or any subset of
the stored images reuses their rows, and a larger one computes only the new images.

A unit is complete when its Parquet part and its latents read back whole and hold what
they should (``restyle_lab.records.parts``: columns, dtypes, values against their status, npz
members, shapes, CRCs); parts are written to a temporary name and renamed, so a process
killed at any moment leaves only whole parts behind and the next run redoes exactly the
missing units (a unit damaged after the fact is found on resume, and redone, and said so).
Part names depend on the batch, not on the process, so any number of shards (torchrun
ranks) write disjoint files, and processes started on the same run directory share its
batches through the lock files.

Every part and latents file also records which images and batch it holds and the setup and
method that made it (``parts.UnitRecord``). A resume checks them: a part made by another
setup is refused, whatever ``provenance.json`` says; a missing or damaged ``provenance.json``
is rebuilt from the parts' records.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..facts.errors import StoreError
from .files import atomic_save_npy, atomic_save_npz, atomic_write, atomic_write_json, exclusive_lock, read_regular
from .parts import (
    CheckedFiles,
    UnitRecord,
    latents_problem,
    load_latents,
    read_footer,
    read_part,
    read_record,
    write_part_file,
)

ERROR_COLUMNS = ["image", "image_index", "status"]
# settings that make two runs different experiments: a resume must match them all
# (the images are matched one by one, by name and content; the batch size only groups the work)
IDENTITY_KEYS = ("domain", "metrics", "dtype", "impl", "device_type", "package_version", "align", "warmup")
# what only building a method reveals (``inversion.build.derived``): compared only where both sides know it
LEARNED_KEYS = ("family", "head", "loss", "perceptual_unavailable")
MAX_PROVENANCE_BYTES = 64 << 20
MANIFEST_NAME = "dataset_manifest.json"
# what picks a method's images without changing what it computes for each (methods.ProjectorMixin)
SELECTION_KEYS = ("images", "subset_seed")


def part_path(run_dir, method: str, unit: str) -> Path:
    return Path(run_dir) / "parts" / method / f"{unit}.parquet"


def latents_path(run_dir, method: str, unit: str) -> Path:
    return Path(run_dir) / "latents" / method / f"{unit}.npz"


def stored_units(run_dir, method: str) -> list[str]:
    """The names of a method's stored units (its parts), in order."""
    return sorted(p.stem for p in (Path(run_dir) / "parts" / method).glob("b*.parquet"))


def write_part(run_dir, method: str, unit: str, rows: pd.DataFrame, record: UnitRecord | None = None) -> Path:
    """The rows of one unit (an empty frame: every file of the batch was unreadable), with its record."""
    return atomic_write(part_path(run_dir, method, unit), lambda tmp: write_part_file(tmp, rows, record))


def write_errors(run_dir, unit: str, rows: pd.DataFrame) -> None:
    path = Path(run_dir) / "errors" / f"{unit}.parquet"
    atomic_write(path, lambda tmp: rows[ERROR_COLUMNS].to_parquet(tmp, index=False))


def write_latents(run_dir, method: str, unit: str, names, steps, latents, images=None, start_image=None,
                  start_latent=None, indices=None, record: UnitRecord | None = None) -> Path:
    """latents [S, N, n_styles, D] float32; images uint8 [S, N, h, w, 3]; start_image uint8 [N, h, w, 3];
    start_latent [N, n_styles, D]: the code the first step started from; indices [N]: test-set indices."""
    arrays = {"names": np.asarray(names, dtype=str), "steps": np.asarray(steps, dtype=np.int64),
              "latents": np.asarray(latents, dtype=np.float32)}
    if indices is not None:
        arrays["indices"] = np.asarray(indices, dtype=np.int64)
    if record is not None:
        arrays["record"] = np.array(record.to_json())
    if images is not None:
        arrays["images"] = np.asarray(images, dtype=np.uint8)
    if start_image is not None:
        arrays["start_image"] = np.asarray(start_image, dtype=np.uint8)
    if start_latent is not None:
        arrays["start_latent"] = np.asarray(start_latent, dtype=np.float32)
    return atomic_save_npz(latents_path(run_dir, method, unit), compress=True, **arrays)


# --------------------------------------------------------------------------- completeness

MISSING, DONE = "missing", "done"


def unit_state(run_dir, method: str, unit: str, expected: UnitRecord | None = None,
               readable: set | None = None, checked: CheckedFiles | None = None) -> str:
    """MISSING, DONE, or 'damaged: <why>' (the caller redoes it and says so) for one (method, unit).

    ``expected``: the unit this run would write there. A part recording another setup, method or
    images raises StoreError (it is never overwritten, nor mixed with this run's rows). A part from before
    unit records must hold exactly the ``readable`` images of ``expected`` (None: not checked).
    ``checked``: files found whole before and unchanged since are not read again (their record is).
    """
    run_dir = Path(run_dir)
    part, latents = part_path(run_dir, method, unit), latents_path(run_dir, method, unit)
    if not part.exists():
        return MISSING
    if checked is not None and checked.fresh(part):
        record, n_rows = read_footer(part)
        if record is not None and (checked.fresh(latents) if n_rows else not latents.exists()):
            if expected is not None:
                _check_record(run_dir, part, record, expected, None, readable)
            return DONE
    rows, record, problem = read_part(part, method)
    if problem:
        return f"damaged: {part.name}: {problem}"
    if expected is not None:
        _check_record(run_dir, part, record, expected, rows, readable)
    if len(rows):
        problem = latents_problem(latents, rows, record) if latents.exists() else "it is missing"
        if problem:
            return f"damaged: latents {latents.name}: {problem}"
    if checked is not None:
        checked.add(part)
        checked.add(latents)
    return DONE


def save_checked(run_dir, checked: CheckedFiles) -> None:
    """Keep what a process found whole (or wrote), under the store's lock."""
    if checked.added:
        with claim(run_dir, None, wait=True):
            checked.save(lambda path, value: atomic_write_json(path, value, indent=0))


def _check_record(run_dir, part: Path, record: UnitRecord | None, expected: UnitRecord, rows, readable) -> None:
    where = f"{run_dir}: {part.relative_to(run_dir)}"
    if record is None and not expected.indices:  # written before unit records, looked at for its setup only
        return
    if record is None:  # written before unit records: its rows must hold exactly this batch's readable images
        want = {i for i in expected.indices if readable is None or i in readable}
        held = set(rows["image_index"].tolist())
        if readable is not None and held != want and len(rows):
            raise StoreError(f"{where} holds images {_span(held)} where this run puts images {_span(want)} "
                             f"(batch size {expected.batch_size}): provenance.json does not describe its parts "
                             "(edited?). Its rows are kept; restore provenance.json, or evaluate into a new --out")
        return
    diffs = []
    if expected.indices and record.geometry() != expected.geometry():
        diffs.append(f"images {_span(record.indices)} at batch size {record.batch_size} vs now "
                     f"{_span(expected.indices)} at batch size {expected.batch_size}")
    if record.setup is not None and expected.setup is not None:
        diffs += [f"{k}: {_short(record.setup.get(k))} vs now {_short(expected.setup.get(k))}"
                  for k in sorted(set(record.setup) | set(expected.setup))
                  if _canon(record.setup.get(k)) != _canon(expected.setup.get(k))]
    if record.spec is not None and expected.spec is not None and not same_method(record.spec, expected.spec):
        diffs.append(f"method: {_short(by_content(record.spec))} vs now {_short(by_content(expected.spec))}")
    if diffs:
        raise StoreError(f"{where} was made by a different setup ({'; '.join(diffs)}), whatever provenance.json "
                         "says. Its rows are kept; write to a new --out directory (or restore provenance.json if "
                         "it was edited)")


def _span(indices) -> str:
    values = sorted(indices)
    if not values:
        return "none"
    return f"{values[0]}-{values[-1]}" if values == list(range(values[0], values[-1] + 1)) else str(values[:6])


def write_manifest(run_dir, root, entries: list[dict]) -> None:
    """The run's dataset manifest: this evaluation's images (in their folder order), then those of earlier
    ones it did not ask for (their stored rows are still read back by name and content)."""
    names = {e["name"] for e in entries}
    older = [e for e in read_manifest(Path(run_dir) / MANIFEST_NAME) or [] if e.get("name") not in names]
    atomic_write_json(Path(run_dir) / MANIFEST_NAME, {"root": str(root), "files": entries + older}, indent=0)


def read_manifest(path) -> list | None:
    """The file entries of a dataset manifest (name, sha256, size, times, status), None when unreadable."""
    try:
        files = json.loads(read_regular(path, MAX_PROVENANCE_BYTES))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return [e for e in files if isinstance(e, dict) and isinstance(e.get("name"), str)] \
        if isinstance(files, list) else None


@dataclass(frozen=True)
class StoredUnit:
    """A stored unit's images (names, contents) and the request it was computed for (None: not recorded)."""

    unit: str
    request: str | None
    names: tuple
    shas: tuple


def stored_unit_images(run_dir, method: str, manifest: dict) -> list[StoredUnit]:
    """Every stored unit of a method with its images, each part's footer read once. A unit recorded before
    contents were kept takes them from ``manifest`` (name -> sha256: ``manifest_shas``)."""
    units = []
    for unit in stored_units(run_dir, method):
        path = part_path(run_dir, method, unit)
        record = read_record(path)
        # a part without a record (written before records, or rewritten): the images its rows name
        names = record.names if record is not None else tuple(dict.fromkeys(_read_part(path)["image"].tolist()))
        shas = (record.sha256 if record is not None else None) or tuple(manifest.get(n) for n in names)
        units.append(StoredUnit(unit, record.request if record is not None else None, tuple(names), tuple(shas)))
    return units


def images_held(units: list[StoredUnit], current: dict) -> dict:
    """image name -> the first of ``units`` holding it with the content ``current`` gives (name -> sha256)."""
    held = {}
    for u in units:
        for name, sha in zip(u.names, u.shas):
            if name not in held and sha is not None and current.get(name) == sha:
                held[name] = u.unit
    return held


def stored_images(run_dir, method: str, current: dict | None = None) -> dict:
    """image name -> the unit holding it, for every image a method has stored whose content is the same as
    ``current`` says (name -> sha256; None: the run's dataset manifest)."""
    manifest = manifest_shas(run_dir)
    return images_held(stored_unit_images(run_dir, method, manifest), manifest if current is None else current)


def manifest_shas(run_dir) -> dict:
    """name -> sha256 of the run's dataset manifest (empty when it has none)."""
    return {e["name"]: e.get("sha256") for e in read_manifest(Path(run_dir) / MANIFEST_NAME) or []
            if isinstance(e, dict) and "name" in e}


def requested_images(run_dir, methods) -> dict:
    """method -> {name: (index, sha256)} of the images its last evaluation asked for (indices in the run's
    dataset manifest, whose first entries are that evaluation's images in folder order)."""
    asked = read_provenance(run_dir).get("requested") or {}
    entries = _wanted(run_dir, None)
    return {m: {n: entries[n] for n in asked.get(m, []) if n in entries} for m in methods}


def completeness(run_dir) -> dict:
    """method -> (images stored, images its last evaluation asked for) for every method of a run's provenance."""
    prov = read_provenance(run_dir)
    asked = prov.get("requested") or {}
    out = {}
    for method in prov.get("methods", {}):
        wanted = asked.get(method)
        if isinstance(wanted, list):
            held = stored_images(run_dir, method)
            out[method] = (sum(1 for n in wanted if n in held), len(wanted))
    return out


def incomplete_note(run_dir, methods=None) -> str:
    """'' when every method (of ``methods``) has all the images it was asked for, else a line saying which
    do not."""
    try:
        done = {m: v for m, v in completeness(run_dir).items() if methods is None or m in methods}
    except StoreError as err:
        return f"cannot tell whether the run is complete: {err}"
    short = [f"{m} {have} of {want}" for m, (have, want) in done.items() if have < want]
    if not short:
        return ""
    return (f"incomplete run: images stored of those asked for: {', '.join(short)}; run the same "
            "`restyle-lab evaluate` command again to finish it")


@contextlib.contextmanager
def claim(run_dir, unit: str | None, wait: bool = False):
    """Hold the lock of one batch (``unit_name``; None: the store's metadata); yields False when another
    process holds it and ``wait`` is off. The lock dies with its process."""
    with exclusive_lock(Path(run_dir) / "locks" / f"{unit or 'store'}.lock", wait) as held:
        yield held


# --------------------------------------------------------------------------- reading

def _read_part(path: Path) -> pd.DataFrame:
    rows, _, problem = read_part(path, path.parent.name)
    if problem is None:
        return rows
    raise StoreError(f"{path} is damaged: {problem}; run the same `restyle-lab evaluate` command again: it redoes "
                     "damaged parts") from None


def _read_errors(path: Path) -> pd.DataFrame:
    try:
        rows = pd.read_parquet(path)
        if list(rows.columns) == ERROR_COLUMNS:
            return rows
        problem = "its columns are not image, image_index, status"
    except Exception as err:  # pyarrow's errors for a damaged file
        problem = f"unreadable ({type(err).__name__})"
    raise StoreError(f"{path} is damaged: {problem}; delete it (the files it lists as skipped are also in the "
                     "run's dataset_manifest.json)") from None


def check_layout(run_dir) -> None:
    """StoreError when a folder of the run's layout (parts/, latents/, errors/, locks/) is something else."""
    for name in ("parts", "latents", "errors", "locks"):
        path = Path(run_dir) / name
        if os.path.lexists(path) and not path.is_dir():
            raise StoreError(f"{path} is not a folder (the run keeps its {name} there): the run directory is "
                             "damaged; move that file away, or evaluate into a new --out")


def read_results(run_dir, methods=None, images: dict | None = None) -> pd.DataFrame:
    """The rows of a run (all shards), one set per image, sorted; raises if a unit is damaged.

    ``images``: name -> (index, sha256) of the images wanted (their rows get these indices); None: every
    image of the run's dataset manifest. An image's rows come from the first unit holding its current
    content."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise StoreError(f"{run_dir}: no such run directory")
    check_layout(run_dir)
    wanted = _wanted(run_dir, images)
    names = sorted(p.name for p in (run_dir / "parts").glob("*") if p.is_dir())
    names = [m for m in names if methods is None or m in set(methods)]
    frames = []
    for method in names:
        held = stored_images(run_dir, method, {n: sha for n, (_, sha) in wanted.items()})
        for unit in sorted(set(held.values())):
            rows = _read_part(part_path(run_dir, method, unit))
            mine = [n for n, u in held.items() if u == unit]
            frames.append(rows[rows["image"].isin(mine)])
    if not frames:
        raise StoreError(f"{run_dir}: no result parts yet (run `restyle-lab evaluate` first)")
    df = pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True).astype(
        {"image_index": "int64", "step": "int64", "value": "float64"})
    df["image_index"] = df["image"].map(lambda n: wanted[n][0]).astype("int64")
    key = ["image_index", "method", "step", "metric"]
    dup = df.duplicated(key)
    if dup.any():
        raise StoreError(f"{run_dir}: {int(dup.sum())} duplicate rows, e.g. {df[dup].iloc[0][key].to_dict()}")
    return df.sort_values(key, kind="stable").reset_index(drop=True)


def _wanted(run_dir, images: dict | None) -> dict:
    """name -> (index, sha256): ``images``, or the run's dataset manifest."""
    if images is not None:
        return images
    entries = read_manifest(Path(run_dir) / MANIFEST_NAME) or []
    return {e["name"]: (i, e.get("sha256")) for i, e in enumerate(entries) if isinstance(e, dict) and "name" in e}


def read_errors(run_dir) -> pd.DataFrame:
    """The input files a run skipped, with the reason (image, image_index, status): those its dataset manifest
    lists as unreadable, and those found unreadable while a batch was read (errors/)."""
    manifest = read_manifest(Path(run_dir) / MANIFEST_NAME) or []
    frames = [pd.DataFrame([(e["name"], i, e.get("status")) for i, e in enumerate(manifest)
                            if str(e.get("status", "ok")) != "ok"], columns=ERROR_COLUMNS)]
    frames += [_read_errors(p) for p in sorted((Path(run_dir) / "errors").glob("*.parquet"))]
    errors = pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
    return errors.drop_duplicates("image").sort_values("image_index", ignore_index=True)


def read_latents(run_dir, method: str, images: dict | None = None) -> dict:
    """A method's stored latents, one entry per image in index order (``images`` as for ``read_results``):
    names [N], steps [S], latents [S, N, ...], and where stored images [S, N, h, w, 3], start_image,
    start_latent."""
    wanted = _wanted(run_dir, images)
    held = stored_images(run_dir, method, {n: sha for n, (_, sha) in wanted.items()})
    if not held:
        raise StoreError(f"{run_dir}: no stored latents for method {method!r}")
    loaded, where = {}, {}
    for unit in sorted(set(held.values())):
        f = latents_path(run_dir, method, unit)
        arrays, problem = load_latents(f) if f.exists() else (None, "it is missing")
        if problem:
            raise StoreError(f"{f} is damaged: {problem}; run the same `restyle-lab evaluate` command again: it "
                             "redoes damaged units")
        loaded[unit] = arrays
        for k, n in enumerate(arrays["names"].tolist()):
            if held.get(n) == unit:
                where[n] = (unit, k)
    order = sorted(where, key=lambda n: wanted[n][0])
    first = loaded[where[order[0]][0]]
    if any(d["latents"].shape[2:] != first["latents"].shape[2:] or tuple(d["steps"]) != tuple(first["steps"])
           for d in loaded.values()):
        raise StoreError(f"{run_dir}: the latents files of {method!r} disagree in steps or shapes; the store mixes "
                         "runs: evaluate into a new --out")
    out = {"names": np.array(order), "steps": first["steps"],
           "latents": np.stack([loaded[u]["latents"][:, k] for u, k in (where[n] for n in order)], axis=1)}
    for key, axis in (("images", 1), ("start_image", 0), ("start_latent", 0)):
        if all(key in d for d in loaded.values()):
            pick = [np.take(loaded[u][key], k, axis=axis) for u, k in (where[n] for n in order)]
            out[key] = np.stack(pick, axis=axis)
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


def export_official_latents(run_dir, method: str, path, partial: bool = False, overwrite: bool = False) -> Path:
    """The official ``latents.npy``: a pickled dict {image name: [w+ of each step, (n_styles, D)]}.

    Keys are the image paths relative to the test folder (the file name for a flat folder,
    as the official scripts key them). Read it back with ``np.load(path, allow_pickle=True).item()``.
    An incomplete run is refused unless ``partial``; an existing file is replaced only with ``overwrite``.
    """
    path = Path(path)
    if path.is_dir():
        raise StoreError(f"{path} is a folder; give the path of the .npy file to write, e.g. {path / 'latents.npy'}")
    if os.path.lexists(path) and not overwrite:
        raise StoreError(f"{path} already exists; choose another path, or add --overwrite to replace it")
    data = read_latents(run_dir, method)
    have, want = completeness(run_dir).get(method, (0, 0))
    if have < want and not partial:
        raise StoreError(f"{run_dir}: method {method!r} has {have} of the {want} images it was asked for stored; "
                         "finish the run with the same `restyle-lab evaluate` command, or add --partial to export "
                         "the images stored")
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


def _load_provenance(run_dir) -> tuple[dict | None, str | None]:
    """(provenance, None), (None, why it is unusable), or (None, None) when there is none."""
    path = Path(run_dir) / "provenance.json"
    if not os.path.lexists(path):
        return None, None
    try:
        value = json.loads(read_regular(path, MAX_PROVENANCE_BYTES))
    except (OSError, ValueError, RecursionError) as err:
        return None, f"not readable JSON: {type(err).__name__}"
    if not isinstance(value, dict):
        return None, f"it holds a {type(value).__name__}, not a mapping"
    methods = value.get("methods")
    if not isinstance(methods, dict) or not all(isinstance(v, dict) for v in methods.values()):
        return None, "its 'methods' is not a mapping of method names to descriptions"
    return value, None


def provenance_problem(run_dir) -> str | None:
    """Why a run's provenance.json cannot be used ('missing' or 'damaged (...)'), None when it can."""
    value, problem = _load_provenance(run_dir)
    if value is not None:
        return None
    return f"damaged ({problem})" if problem else "missing"


def read_provenance(run_dir) -> dict:
    """The run's provenance.json; when it is missing or damaged but parts exist, the provenance rebuilt
    from the parts' own records (StoreError when they cannot rebuild it)."""
    path = Path(run_dir) / "provenance.json"
    value, problem = _load_provenance(run_dir)
    if value is not None:
        return value
    if any((Path(run_dir) / "parts").glob("*/b*.parquet")):
        return provenance_from_parts(run_dir, f"provenance.json is {provenance_problem(run_dir)}")
    if problem:
        raise StoreError(f"{path} is damaged ({problem}); restore it, or evaluate into a new --out")
    raise StoreError(f"{run_dir}: no provenance.json (not a run directory?)")


def stored_provenance(run_dir) -> dict | None:
    """The provenance a resume must match: provenance.json, or rebuilt from the parts; None for a new run
    (or one with no result yet, whose damaged provenance.json protects nothing)."""
    value, _ = _load_provenance(run_dir)
    if value is not None:
        return value
    if any((Path(run_dir) / "parts").glob("*/b*.parquet")):
        return read_provenance(run_dir)
    return None


def provenance_from_parts(run_dir, why: str) -> dict:
    """The identity settings and method entries recorded in every part (each must carry its record and all
    must agree), as a provenance dict."""
    setup, methods = None, {}
    for part in sorted((Path(run_dir) / "parts").glob("*/b*.parquet")):
        record = read_record(part)
        if record is None or record.setup is None or record.spec is None:
            raise StoreError(f"{run_dir}: {why}, and {part.relative_to(run_dir)} does not record the setup that made "
                             "it (written before restyle-lab recorded it, or damaged); restore provenance.json, or "
                             "evaluate into a new --out")
        if setup is not None and _canon(setup) != _canon(record.setup):
            raise StoreError(f"{run_dir}: {why}, and its parts record different setups (e.g. "
                             f"{part.relative_to(run_dir)}); evaluate into a new --out")
        setup = record.setup
        if record.method in methods and not same_method(methods[record.method], record.spec, LEARNED_KEYS):
            raise StoreError(f"{run_dir}: {why}, and the parts of method {record.method!r} record different "
                             "methods; evaluate into a new --out")
        methods[record.method] = {**methods.get(record.method, {}), **record.spec}
    return {**setup, "methods": methods, "rebuilt_from_parts": why}


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
        if name in stored and not same_method(stored[name], spec, learned_keys):
            diffs.append(f"methods[{name!r}]")
    if diffs:
        details = "; ".join(f"{k}: stored {_short(_lookup(old, k))} vs now {_short(_lookup(provenance, k))}"
                            for k in diffs)
        raise StoreError(f"{run_dir} holds results of a different setup ({details}). Its rows are kept; "
                         "write to a new --out directory, or delete that one to start over.")


def same_method(a: dict, b: dict, learned_keys=LEARNED_KEYS) -> bool:
    """Two method entries describe one method: equal by content (``by_content``), ``learned_keys`` compared
    only where both know them."""
    a, b = by_content(a), by_content(b)
    keys = [k for k in set(a) | set(b) if k not in learned_keys or (k in a and k in b)]
    return all(_canon(a.get(k)) == _canon(b.get(k)) for k in keys)


def by_content(spec: dict) -> dict:
    """A method entry with file paths dropped where their sha256 is recorded: the same checkpoint moved
    to another folder (or checkout) is the same method; and without the keys that only pick its images
    (``SELECTION_KEYS``): a subset of a method's images is the same method."""
    out = {k: v for k, v in spec.items() if not (k in ("checkpoint", "generator") and f"{k}_sha256" in spec)
           and k not in SELECTION_KEYS}
    boot = out.get("bootstrap")
    if isinstance(boot, dict) and "sha256" in boot:
        out["bootstrap"] = {k: v for k, v in boot.items() if k != "checkpoint"}
    return out


def write_provenance(run_dir, provenance: dict) -> dict:
    """Merge ``provenance`` into the stored one (new methods join, stored entries gain new fields; what each
    method was last asked for, ``requested``, is this evaluation's for its methods)."""
    old = stored_provenance(run_dir)
    if old is not None:
        methods = {**old.get("methods", {})}
        for name, spec in provenance["methods"].items():
            methods[name] = {**methods.get(name, {}), **spec}
        asked = old.get("requested") if isinstance(old.get("requested"), dict) else {}
        provenance = {**provenance, **{k: v for k, v in old.items() if k != "rebuilt_from_parts"},
                      "methods": methods, "requested": {**asked, **provenance.get("requested", {})}}
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
