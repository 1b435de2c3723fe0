"""The mini domain's images on disk: the test set (PNG renders of held-out seeds plus their
attributes), and the cached training renders the mini models are trained on.

The test set stands in for CelebA-HQ's test split: rendered from the "test" seed stream,
which the training images (the "train" stream) never share.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import numpy as np

from ..facts.errors import UsageError
from ..records.files import (
    atomic_save_npy,
    atomic_write_json,
    atomic_write_text,
    data_dir,
    record_outputs,
    refuse_foreign,
)
from ..records.images import save_png
from .render import attribute_names, render_batch, render_face

FORMAT = 1


def write_test_set(out_dir=None, n: int = 100, style: str = "photo", size: int = 64) -> Path:
    """Render test faces 0..n-1 into ``out_dir`` (default: the cache); a complete folder is reused. Files
    of the same names that mini-data did not write (the user's own) are never replaced: UsageError."""
    out_dir = Path(out_dir) if out_dir else data_dir() / "mini" / f"test_{style}_{size}_{n}"
    stamp = out_dir / "mini_test_set.json"
    meta = {"format": FORMAT, "n": n, "style": style, "size": size, "split": "test"}
    if stamp.exists() and _read_stamp(stamp) == meta:
        return out_dir
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} is a file; give a folder")
    names = [f"test_{i:04d}.png" for i in range(n)] + ["attributes.csv", stamp.name]
    old = _read_stamp(stamp)  # a folder stamped by a mini-data older than the record of outputs is its own
    old_n = old["n"] if old and isinstance(old.get("n"), int) else 0
    legacy = {f"test_{i:04d}.png" for i in range(old_n)} | {"attributes.csv", stamp.name} if old else set()
    refuse_foreign(out_dir, "mini-data", [f for f in names if f not in legacy], "--out")
    record_outputs(out_dir, "mini-data", names)
    rows = []
    for i in range(n):
        img, attrs = render_face("test", i, size, style)
        name = f"test_{i:04d}.png"
        save_png(img, out_dir / name)
        rows.append({"image": name, **attrs.as_dict()})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["image"] + attribute_names(), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out_dir / "attributes.csv", buf.getvalue())
    atomic_write_json(stamp, meta, indent=None)
    return out_dir


def _read_stamp(stamp: Path) -> dict | None:
    """The settings of a test set mini-data wrote before (None: none, or not ours)."""
    try:
        value = json.loads(stamp.read_text())
        return value if isinstance(value, dict) and value.get("split") == "test" else None
    except (OSError, ValueError):
        return None


def training_images(style: str, n: int, size: int, cache_dir: Path, log=print) -> np.ndarray:
    """uint8 [n, size, size, 3] renders of the train split, cached on disk (memory-mapped when reused)."""
    path = Path(cache_dir) / f"train_{style}_{size}_{n}.npy"
    if path.exists():
        return np.load(path, mmap_mode="r")
    log(f"rendering {n} training images ({style}) into {path} ...")
    t0 = time.time()
    arr = np.empty((n, size, size, 3), np.uint8)
    for start in range(0, n, 1000):
        arr[start: start + 1000] = render_batch("train", range(start, min(n, start + 1000)), size, style)
    atomic_save_npy(path, arr)
    log(f"rendered in {time.time() - t0:.0f} s")
    return arr
