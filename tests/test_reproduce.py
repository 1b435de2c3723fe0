"""reproduce never hangs: a notebook past its time limit is stopped and reported; widgets are not built in
batch runs; a notebook whose checkpoints are missing is skipped (or skips the missing methods) and says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import nbformat
import pandas as pd
import pytest

from restyle_lab.analysis import explorer
from restyle_lab.papermill_runs import execute, failure
from restyle_lab.reproduce import missing_requirement


def test_a_notebook_past_its_limit_is_stopped(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("import time\ntime.sleep(600)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    src = tmp_path / "slow.ipynb"
    nbformat.write(nb, src)
    t0 = time.time()
    with pytest.raises(Exception) as caught:
        execute(src, tmp_path / "out.ipynb", {}, tmp_path, timeout=10)
    assert time.time() - t0 < 120
    status, why = failure(caught.value, 10)
    assert status == "timed out" and "10 s limit" in why


def test_widgets_are_not_built_in_batch_runs(monkeypatch, capsys):
    monkeypatch.setenv(explorer.BATCH_ENV, "1")
    assert explorer.build({}, None, {}) is None
    assert "not built" in capsys.readouterr().out


def test_missing_requirement_names_what_is_missing(tmp_path):
    found = {"restyle_psp": tmp_path / "a.pt"}
    assert missing_requirement("fpn_vs_simple", found, {}) is None  # restyle_psp alone still runs
    assert "restyle_psp_toon" in missing_requirement("encoder_bootstrapping", found, {})
    assert "base and a fine-tuned generator" in missing_requirement("generator_alignment", found, {})
    assert missing_requirement("explorer", found, {"method": "restyle_e4e"}).startswith("none of its methods")


def test_missing_checkpoints_are_skipped_and_said(tmp_path):
    """On a domain without an FPN-head or toon encoder (cars), fpn_vs_simple runs on what exists and
    encoder_bootstrapping is skipped; reproduce exits 0."""
    params = tmp_path / "p.json"
    params.write_text(json.dumps({"checkpoints": {"restyle_psp_fpn": str(tmp_path / "none.pt"),
                                                  "restyle_psp_toon": str(tmp_path / "none.pt")}}))
    env = dict(os.environ, RESTYLE_LAB_DATA=str(tmp_path / "data"))
    res = subprocess.run([sys.executable, "-m", "restyle_lab.cli", "reproduce", "--smoke", "--out", str(tmp_path),
                          "--only", "fpn_vs_simple", "--only", "encoder_bootstrapping", "--params", str(params)],
                         capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "skipped encoder_bootstrapping: none of its methods" in res.stdout
    assert "1/1 notebooks ran" in res.stdout
    table = pd.read_csv(tmp_path / "mini" / "fpn_vs_simple" / "fpn_vs_simple.csv")
    assert list(table.method) == ["restyle_psp"]
    assert "**skipped**" in (tmp_path / "mini" / "index.md").read_text()
    assert "TCP without encryption" not in res.stderr



def _reproduce(tmp_path, *args, env_extra=None, launcher=None):
    env = dict(os.environ, RESTYLE_LAB_DATA=str(tmp_path / "data"), **(env_extra or {}))
    cmd = (launcher or [sys.executable, "-m"]) + ["restyle_lab.cli", "reproduce", "--out", str(tmp_path), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1200, env=env, cwd=tmp_path)


def test_the_plan_counts_what_is_left_and_probes_it(tmp_path):
    params = tmp_path / "p.json"
    params.write_text(json.dumps({"n_images": 3, "batch_size": 2}))
    dry = _reproduce(tmp_path, "--only", "fpn_vs_simple", "--params", str(params), "--dry-run")
    assert dry.returncode == 0, dry.stderr[-2000:]
    rows = {line.split()[0]: line.split() for line in dry.stdout.splitlines() if line.startswith("  restyle_psp")}
    assert set(rows) == {"restyle_psp", "restyle_psp_fpn"}
    assert rows["restyle_psp"][1:4] == ["3", "5", "3"]  # images, steps, to do
    assert float(rows["restyle_psp"][4]) > 0 and "estimated inversion time" in dry.stdout
    assert not (tmp_path / "mini" / "store").exists() or not list((tmp_path / "mini" / "store").rglob("*.parquet"))
    assert _reproduce(tmp_path, "--only", "fpn_vs_simple", "--params", str(params)).returncode == 0
    again = _reproduce(tmp_path, "--only", "fpn_vs_simple", "--params", str(params), "--dry-run")
    left = {line.split()[0]: line.split()[3] for line in again.stdout.splitlines() if line.startswith("  restyle_psp")}
    assert left == {"restyle_psp": "0", "restyle_psp_fpn": "0"} and "estimated inversion time: 0 s" in again.stdout


def test_shards_fill_the_store_the_notebooks_then_read(tmp_path):
    for k in (0, 1):
        res = _reproduce(tmp_path, "--smoke", "--only", "latent_change", "--shard", f"{k}/2")
        assert res.returncode == 0 and f"shard {k}/2 of the inversions is stored" in res.stdout, res.stderr[-2000:]
    parts = sorted((tmp_path / "mini" / "store").rglob("*.parquet"))
    assert len(parts) == 2  # two methods, one batch of 4 smoke images each: shard 0 made them, shard 1 had none
    before = {p: p.stat().st_mtime_ns for p in parts}
    res = _reproduce(tmp_path, "--smoke", "--only", "latent_change")
    assert res.returncode == 0, res.stderr[-2000:]
    assert {p: p.stat().st_mtime_ns for p in parts} == before, "the notebook recomputed stored inversions"
    bad = _reproduce(tmp_path, "--smoke", "--only", "latent_change", "--shard", "2/2")
    assert bad.returncode == 2 and "expected K/N with 0 <= K < N" in bad.stderr


def test_under_torchrun_every_rank_fills_its_shard_and_rank_0_makes_the_figures(tmp_path):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m"]
    res = _reproduce(tmp_path, "--smoke", "--only", "latent_change", launcher=launcher,
                     env_extra={"OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert res.stdout.count("1/1 notebooks ran") == 1  # rank 0 only
    assert (tmp_path / "mini" / "latent_change" / "latent_change_restyle_psp.csv").exists()
