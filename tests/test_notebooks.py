"""Notebooks: committed clean with the documented parameters; all of them run through papermill
on the mini domain (smoke settings) and write the tables and figures they promise."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from restyle_lab.run.docs_tables import COMMAND
from restyle_lab.run.notebook_params import ALL_PARAMS, NOTEBOOKS, parameters_cell

REPO = Path(__file__).resolve().parents[1]
NB_DIR = REPO / "notebooks"

# a figure's seconds, timed in one pass, and the machine they are the seconds of
TIMING = ["method", "step", "seconds_per_image", "timed", "machine", "device", "threads", "load_average", "date"]
EXPECTED_TABLES = {
    "quality_time": {"quality_time": ["method", "kind", "family", "step", "metric", "mean", "seconds_per_image"],
                     "timing": TIMING},
    "latent_change": {"latent_change_restyle_psp": ["step", "group", "value", "method", "scheme"],
                      "latent_change_restyle_e4e": ["step", "group", "value", "method", "scheme"],
                      "latent_change_per_layer_restyle_psp": ["step", "layer", "group", "v"]},
    "step_heatmaps": {"step_changes_restyle_psp": ["image", "step", "mean_abs_change"],
                      "step_changes_restyle_e4e": ["image", "step", "mean_abs_change"]},
    "fpn_vs_simple": {"fpn_vs_simple": ["method", "step", "lpips_alex_v0.1", "mse_pm1", "cumulative_seconds_per_image"],
                      "timing": TIMING},
    "naive_vs_restyle": {"naive_vs_restyle": ["method", "step", "metric", "mean", "sem", "n_images"]},
    "generator_alignment": {"alignment_scores": ["pair", "i", "j", "value", "similarity"],
                            "alignment_summary": ["similarity", "same_w_mean", "shuffled_mean",
                                                  "auc_same_vs_shuffled"]},
    "encoder_bootstrapping": {"bootstrapping_steps": ["method", "step", "metric", "mean"]},
    "explorer": {},
    "editing": {"edit_directions": ["name", "source", "rows", "sigma", "target"],
                "edit_success": ["method", "edit", "target", "image", "target_slope", "off_target_slope", "drift_mse"],
                "edit_success_overall": ["method", "measure", "mean", "ci95_low", "ci95_high", "n_images"],
                "edit_comparison": ["method", "reference", "measure", "ratio", "difference", "difference_ci95_low"],
                "inversion_attributes": ["method", "attribute", "r2", "mae"]},
}
EXPECTED_FIGURES = {
    "quality_time": ["quality_time"], "latent_change": ["latent_change_restyle_psp", "latent_change_restyle_e4e"],
    "step_heatmaps": ["heatmaps_per_image_restyle_psp", "heatmaps_mean_restyle_psp", "heatmaps_mean_restyle_e4e"],
    "fpn_vs_simple": ["fpn_vs_simple"], "naive_vs_restyle": ["naive_vs_restyle"],
    "generator_alignment": ["alignment_pairs", "alignment_scores"], "encoder_bootstrapping": ["bootstrapping_strips"],
    "explorer": ["explorer_snapshot"],
    "editing": ["edit_grid_smile", "edit_grid_yaw", "edit_success"],
}


def load(name):
    return json.loads((NB_DIR / f"{name}.ipynb").read_text())


def test_every_notebook_is_listed():
    assert sorted(p.stem for p in NB_DIR.glob("*.ipynb")) == sorted(NOTEBOOKS)
    assert set(EXPECTED_TABLES) == set(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_without_outputs_and_with_the_tables_parameters(name):
    nb = load(name)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "strip the outputs"
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    source = "".join(tagged[0]["source"])
    assert source == parameters_cell(name), f"the parameters cell is the Param table written out: run `{COMMAND}`"
    tree = ast.parse(source)
    names = [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets]
    assert all(isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) for node in tree.body), \
        "the parameters cell holds literals only"
    assert names == list(NOTEBOOKS[name].params)
    body = "".join("".join(c["source"]) for c in code if c is not tagged[0])
    assert "def " not in body and "class " not in body, "no helpers defined in notebooks"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks_read_every_parameter_from_lab_params(name):
    """After the parameters cell, a value is read as ``lab.params.NAME`` (smoke-capped, checked), never as the
    cell's global; a name a cell assigns itself (a loop variable) is its own."""
    for cell in load(name)["cells"]:
        if cell["cell_type"] != "code" or "parameters" in cell.get("metadata", {}).get("tags", []):
            continue
        tree = ast.parse("".join(cell["source"]))
        assigned = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        assert not (read & set(ALL_PARAMS)) - assigned, f"read the parameter global(s) {(read & set(ALL_PARAMS)) - assigned}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_markdown_maths_is_latex(name):
    """Formulas in markdown are LaTeX between $ signs (JupyterLab renders them), not raw text like d_{l,t}."""
    for cell in load(name)["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"])
        assert text.count("$") % 2 == 0, "an unclosed $"
        prose = re.sub(r"`[^`]*`", "", re.sub(r"\$\$.*?\$\$|\$[^$]*\$", "", text, flags=re.S))
        assert not re.search(r"[A-Za-z]_\{|\|\||\^2", prose), f"maths outside $...$: {prose[:300]}"


def test_reproduce_smoke_runs_every_notebook(smoke_run):
    root, res = smoke_run
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert f"{len(NOTEBOOKS)}/{len(NOTEBOOKS)} notebooks ran" in res.stdout
    index = (root / "index.md").read_text()
    for name in NOTEBOOKS:
        assert (root / "notebooks" / f"{name}.ipynb").exists()
        assert f"## {name}" in index


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_outputs(smoke_run, name):
    root, res = smoke_run
    folder = root / name
    outputs = {(e["name"], e["kind"]): e for e in json.loads((folder / "outputs.json").read_text())}
    for table, columns in EXPECTED_TABLES[name].items():
        assert (table, "table") in outputs, f"{table} not written"
        df = pd.read_csv(folder / f"{table}.csv")
        assert len(df) > 0, f"{table} is empty"
        assert set(columns) <= set(df.columns), f"{table} lacks {set(columns) - set(df.columns)}"
        assert pd.read_parquet(folder / f"{table}.parquet").shape == df.shape
    for fig in EXPECTED_FIGURES[name]:
        for ext in ("png", "pdf"):
            path = folder / f"{fig}.{ext}"
            assert path.exists() and path.stat().st_size > 1000, path
    params = json.loads((folder / "parameters.json").read_text())
    assert params["parameters"]["smoke"] is True and params["parameters"]["domain"] == "mini"


def test_second_run_reuses_stored_inversions(smoke_run, tmp_path):
    root, _ = smoke_run
    parts = sorted((root / "store").glob("*/parts/*/*.parquet"))
    before = {p: p.stat().st_mtime_ns for p in parts}
    env = dict(os.environ, RESTYLE_LAB_DATA=str(root.parent / "data"))
    res = subprocess.run([sys.executable, "-m", "restyle_lab.cli", "reproduce", "--smoke", "--out", str(root.parent),
                          "--only", "naive_vs_restyle"], capture_output=True, text=True, timeout=900, env=env,
                         cwd=root.parent)
    assert res.returncode == 0, res.stderr[-2000:]
    after = {p: p.stat().st_mtime_ns for p in parts}
    assert before == after, "stored inversions were recomputed"
