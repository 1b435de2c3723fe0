"""Writing figures and tables where ``reproduce`` (and the index page) will find them.

Each call also appends an entry to ``<out_dir>/outputs.json`` so the index can list every
file with its caption; the notebook's parameters go to ``<out_dir>/parameters.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


def _register(out_dir: Path, entry: dict) -> None:
    path = out_dir / "outputs.json"
    entries = json.loads(path.read_text()) if path.exists() else []
    entries = [e for e in entries if (e["name"], e["kind"]) != (entry["name"], entry["kind"])] + [entry]
    path.write_text(json.dumps(entries, indent=1))


def save_parameters(out_dir, parameters: dict, provenance: dict | None = None) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "parameters.json"
    path.write_text(json.dumps({"parameters": parameters, "provenance": provenance or {}}, indent=1, default=str))
    return path


def save_figure(fig, out_dir, name: str, caption: str = "") -> list[Path]:
    """``name``.png (150 dpi) and ``name``.pdf in out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    _register(out_dir, {"name": name, "kind": "figure", "files": [p.name for p in paths], "caption": caption})
    return paths


def save_table(df: pd.DataFrame, out_dir, name: str, caption: str = "") -> list[Path]:
    """``name``.csv and ``name``.parquet in out_dir (numbers stay numbers)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.csv", out_dir / f"{name}.parquet"]
    df.to_csv(paths[0], index=False)
    df.to_parquet(paths[1], index=False)
    _register(out_dir, {"name": name, "kind": "table", "files": [p.name for p in paths], "caption": caption,
                        "columns": list(map(str, df.columns)), "rows": int(len(df))})
    return paths
