"""What one stored unit (a method on one batch) holds, and the checks that find a damaged one.

A unit is two files: a Parquet part of result rows and an npz of per-step latents. Each carries
its own record (``UnitRecord``): which images it holds (test-set indices and names), the batch
geometry (batch number, batch size, image-list key), the method's identity and the settings that
make a run one experiment. A store therefore describes itself: its parts are checked against the
run asking for them, and a lost or edited ``provenance.json`` is rebuilt from them or refused,
never mixed with them.

``read_part`` and ``latents_problem`` say what is wrong with a file (unreadable, wrong columns or
dtypes, values that contradict their status, missing members, object arrays, wrong shapes, CRC
errors), or None when it reads back whole; callers redo such a unit and say so. Reading every
member of every unit costs minutes on a real-size store (150 ms per latents file with images), so
files found whole are listed in ``checked.json`` with their size, mtime and ctime
(``CheckedFiles``) and not read again until one of these changes: rewriting a file, even in
place with its mtime set back, gives it a new ctime.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

COLUMNS = ["image", "image_index", "method", "step", "metric", "value", "status"]
SCHEMA = pa.schema([("image", pa.string()), ("image_index", pa.int64()), ("method", pa.string()),
                    ("step", pa.int64()), ("metric", pa.string()), ("value", pa.float64()),
                    ("status", pa.string())])
RECORD_KEY = b"restyle_lab.unit"  # Parquet key-value metadata; the npz holds it as its 'record' member
RECORD_FORMAT = 1
# npz members: name -> (dtype kind, number of dimensions); images are uint8, latents float32
LATENT_MEMBERS = {"names": ("U", 1), "steps": ("i", 1), "latents": ("f", 4), "images": ("u", 5),
                  "start_image": ("u", 4), "start_latent": ("f", 3), "indices": ("i", 1), "record": ("U", 0)}
REQUIRED_MEMBERS = ("names", "steps", "latents")
CHECKED_NAME = "checked.json"


def unit_name(batch: int, images_key: str = "") -> str:
    """The name of a unit: its batch number, and the key of the request it was computed for."""
    return f"b{batch:06d}" + (f"-{images_key}" if images_key else "")


@dataclass(frozen=True)
class UnitRecord:
    """Which images a unit holds and what made it. ``indices`` / ``names``: every image the batch asked
    for (readable or not), ``sha256``: their contents (an image is reused only while its content is the
    same); ``setup``: the run's identity settings; ``spec``: the method's identity. ``images_key``: what
    the unit's name holds beside its batch number (the request it was computed for; '' for a first fill).
    ``request``: the key of what the evaluation asked of the method (its images and batch size): a second
    process making the same request lays its batches out the same way and so shares them (see ``units.plan``)."""

    method: str
    batch: int
    batch_size: int
    images_key: str
    indices: tuple
    names: tuple
    setup: dict | None = None
    spec: dict | None = None
    sha256: tuple | None = None
    request: str | None = None
    latent_shape: tuple | None = None  # (n_styles, dim) of its latents, recorded when they are written

    def to_json(self) -> str:
        return json.dumps({"format": RECORD_FORMAT, **asdict(self)}, default=list)

    @classmethod
    def from_json(cls, text) -> "UnitRecord":
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
            raise ValueError("not a unit record")
        data.pop("format")
        data["indices"], data["names"] = tuple(data["indices"]), tuple(data["names"])
        for key in ("sha256", "latent_shape"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        return cls(**data)

    @property
    def unit(self) -> str:
        """The unit's file name (without extension) in parts/<method>/ and latents/<method>/."""
        return unit_name(self.batch, self.images_key)

    def geometry(self) -> tuple:
        return (self.method, self.batch, self.batch_size, self.images_key, tuple(self.indices), tuple(self.names))


def write_part_file(tmp: Path, rows: pd.DataFrame, record: UnitRecord | None) -> None:
    table = pa.Table.from_pandas(rows[COLUMNS].astype({"image_index": "int64", "step": "int64",
                                                        "value": "float64"}), schema=SCHEMA, preserve_index=False)
    meta = {**(table.schema.metadata or {}), **({RECORD_KEY: record.to_json().encode()} if record else {})}
    pq.write_table(table.replace_schema_metadata(meta), tmp)


# --------------------------------------------------------------------------- parts

def _types_ok(schema: pa.Schema, rows: int) -> bool:
    if schema.names != COLUMNS:
        return False
    for field, want in zip(schema, SCHEMA):
        same = field.type == want.type or (want.type == pa.string() and field.type == pa.large_string())
        if not same and not (rows == 0 and field.type == pa.null()):  # an empty part written by pandas
            return False
    return True


def part_schema_problem(path: Path) -> str | None:
    """From the footer only (cheap): why the part is not one of ours, or None."""
    try:
        meta = pq.read_metadata(path)
    except Exception as err:  # pyarrow raises ArrowInvalid, OSError and friends for damaged files
        return f"unreadable ({type(err).__name__})"
    if not _types_ok(meta.schema.to_arrow_schema(), meta.num_rows):
        return "its columns or their types are not the result columns"
    return None


def read_part(path: Path, method: str) -> tuple[pd.DataFrame | None, UnitRecord | None, str | None]:
    """(rows, record, problem): the part read whole and checked; rows None when it is damaged."""
    problem = part_schema_problem(path)
    if problem:
        return None, None, problem
    try:
        table = pq.read_table(path)
        rows = table.to_pandas()
    except Exception as err:
        return None, None, f"unreadable ({type(err).__name__})"
    record = None
    raw = (table.schema.metadata or {}).get(RECORD_KEY)
    if raw is not None:
        try:
            record = UnitRecord.from_json(raw)
        except (ValueError, TypeError, KeyError):
            return None, None, "its unit record is damaged"
    problem = rows_problem(rows, method)
    return (None, record, problem) if problem else (rows, record, None)


def read_footer(path: Path) -> tuple[UnitRecord | None, int]:
    """(the unit record in a part's footer, its row count): the footer only; (None, -1) when unreadable."""
    try:
        meta = pq.read_metadata(path)
        raw = (meta.metadata or {}).get(RECORD_KEY)
        return (None if raw is None else UnitRecord.from_json(raw)), meta.num_rows
    except Exception:  # a damaged footer or record
        return None, -1


def read_record(path: Path) -> UnitRecord | None:
    """The unit record in a part's footer (None: none, or unreadable)."""
    return read_footer(path)[0]


def rows_problem(rows: pd.DataFrame, method: str) -> str | None:
    """Why result rows cannot be ours: another method's rows, a value contradicting its status."""
    if len(rows) == 0:
        return None
    if (rows["method"] != method).any():
        return f"it holds rows of another method ({rows['method'].iloc[0]!r})"
    ok = rows["status"] == "ok"
    if (ok & ~np.isfinite(rows["value"].to_numpy(dtype=np.float64))).any():
        return "it holds non-finite values marked 'ok'"
    if rows["status"].isna().any() or rows["image"].isna().any() or rows["metric"].isna().any():
        return "it holds empty cells"
    return None


# --------------------------------------------------------------------------- latents

def load_latents(path: Path) -> tuple[dict | None, str | None]:
    """(arrays, problem): every member of a latents npz read with its CRC and checked (no pickled objects,
    the members and shapes ``write_latents`` writes)."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        return None, f"unreadable ({type(err).__name__})"
    missing = [m for m in REQUIRED_MEMBERS if m not in members]
    if missing:
        return None, f"it lacks {', '.join(missing)}"
    arrays = {}
    try:
        with np.load(path, allow_pickle=False) as npz:
            for name in members:
                if name in LATENT_MEMBERS:
                    arrays[name] = npz[name]
    except ValueError as err:  # an object array (pickled)
        return None, f"a member holds pickled objects ({str(err).splitlines()[0][:60]})"
    except (OSError, zipfile.BadZipFile, EOFError, zlib.error) as err:  # a CRC error, a cut member
        return None, f"a member is damaged ({type(err).__name__}: {str(err).splitlines()[0][:60]})"
    problem = _shapes_problem(arrays)
    return (None, problem) if problem else (arrays, None)


def _shapes_problem(a: dict) -> str | None:
    for name, value in a.items():
        kind, ndim = LATENT_MEMBERS[name]
        if value.dtype.kind != kind or value.ndim != ndim:
            return f"{name} has dtype {value.dtype} and {value.ndim} dimensions"
    s, n = len(a["steps"]), len(a["names"])
    if a["latents"].shape[:2] != (s, n):
        return f"latents have shape {a['latents'].shape}; expected ({s}, {n}, n_styles, dim)"
    if "start_latent" in a and a["start_latent"].shape[1:] != a["latents"].shape[2:]:
        return (f"its latents have {_styles(a['latents'].shape[2:])} where its start_latent has "
                f"{_styles(a['start_latent'].shape[1:])}")
    if "record" in a:
        try:
            recorded = UnitRecord.from_json(str(a["record"])).latent_shape
        except (ValueError, TypeError, KeyError):
            return "its unit record is damaged"
        problem = latent_shape_problem(a["latents"].shape, recorded)
        if problem:
            return problem
    if "images" in a and a["images"].shape[:2] != (s, n) or "images" in a and a["images"].shape[-1] != 3:
        return f"images have shape {a['images'].shape}; expected ({s}, {n}, h, w, 3)"
    for name in ("start_image", "start_latent", "indices"):
        if name in a and a[name].shape[0] != n:
            return f"{name} has {a[name].shape[0]} entries for {n} names"
    return None


def _styles(shape) -> str:
    return f"{shape[0]} style vectors of {shape[1]} values" if len(shape) == 2 else f"shape {tuple(shape)}"


def latent_shape_problem(shape, recorded) -> str | None:
    """Why latents of ``shape`` [S, N, n_styles, dim] are not what a record says was written, or None."""
    if recorded is not None and tuple(shape[2:]) != tuple(recorded):
        return f"its latents have {_styles(shape[2:])}; {_styles(recorded)} were written (cut or damaged)"
    return None


def latents_problem(path: Path, rows: pd.DataFrame, record: UnitRecord | None = None) -> str | None:
    """Why the latents of a unit whose rows are ``rows`` (and whose part records ``record``) are damaged, or None."""
    arrays, problem = load_latents(path)
    if problem:
        return problem
    problem = latent_shape_problem(arrays["latents"].shape, record.latent_shape if record else None)
    if problem:
        return problem
    names = rows.drop_duplicates("image_index").sort_values("image_index")["image"].tolist()
    if sorted(arrays["names"].tolist()) != sorted(names):
        return "its image names are not those of the rows"
    if sorted(arrays["steps"].tolist()) != sorted(set(rows["step"].tolist())):
        return "its steps are not those of the rows"
    return None


# --------------------------------------------------------------------------- files already checked

class CheckedFiles:
    """The unit files of a run found whole, by path relative to the run, with (size, mtime, ctime)."""

    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)
        self.known = self._read()
        self.added = {}

    def _read(self) -> dict:
        try:
            value = json.loads((self.run_dir / CHECKED_NAME).read_text())
            return value if isinstance(value, dict) else {}
        except (OSError, ValueError):
            return {}

    def _stamp(self, path: Path) -> list | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return [st.st_size, st.st_mtime_ns, st.st_ctime_ns]

    def fresh(self, path: Path) -> bool:
        """Was ``path`` found whole, and has it not changed since?"""
        key = str(path.relative_to(self.run_dir))
        stamp = self._stamp(path)
        return stamp is not None and (self.added.get(key) or self.known.get(key)) == stamp

    def add(self, path: Path) -> None:
        stamp = self._stamp(path)
        if stamp is not None:
            self.added[str(path.relative_to(self.run_dir))] = stamp

    def save(self, write) -> None:
        """Merge what this process found into the file (``write(path, value)``: an atomic JSON writer; the
        caller holds the store's lock)."""
        if self.added:
            write(self.run_dir / CHECKED_NAME, {**self._read(), **self.added})
            self.known.update(self.added)
            self.added = {}
