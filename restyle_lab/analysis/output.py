"""Writing figures and tables where ``reproduce`` (and the index page) will find them, each through the
atomic writer (``restyle_lab.records.files``), so a notebook stopped at any moment leaves whole files.

Each call also adds an entry to ``<out_dir>/outputs.json`` so the index can list every
file with its caption; the notebook's parameters go to ``<out_dir>/parameters.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..records.files import atomic_write, atomic_write_json


def _register(out_dir: Path, entry: dict) -> None:
    path = out_dir / "outputs.json"
    entries = json.loads(path.read_text()) if path.exists() else []
    entries = [e for e in entries if (e["name"], e["kind"]) != (entry["name"], entry["kind"])] + [entry]
    atomic_write_json(path, entries)


def save_parameters(out_dir, parameters: dict, provenance: dict | None = None) -> Path:
    return atomic_write_json(Path(out_dir) / "parameters.json", {"parameters": parameters,
                                                                  "provenance": provenance or {}})


def save_figure(fig, out_dir, name: str, caption: str = "") -> list[Path]:
    """``name``.png (150 dpi) and ``name``.pdf in out_dir."""
    out_dir = Path(out_dir)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    atomic_write(paths[0], lambda tmp: fig.savefig(tmp, format="png", dpi=150, bbox_inches="tight"))
    atomic_write(paths[1], lambda tmp: fig.savefig(tmp, format="pdf", bbox_inches="tight"))
    _register(out_dir, {"name": name, "kind": "figure", "files": [p.name for p in paths], "caption": caption})
    return paths


def save_table(df: pd.DataFrame, out_dir, name: str, caption: str = "") -> list[Path]:
    """``name``.csv and ``name``.parquet in out_dir (numbers stay numbers)."""
    out_dir = Path(out_dir)
    paths = [out_dir / f"{name}.csv", out_dir / f"{name}.parquet"]
    atomic_write(paths[0], lambda tmp: df.to_csv(tmp, index=False))
    atomic_write(paths[1], lambda tmp: df.to_parquet(tmp, index=False))
    _register(out_dir, {"name": name, "kind": "table", "files": [p.name for p in paths], "caption": caption,
                        "columns": list(map(str, df.columns)), "rows": int(len(df))})
    return paths
