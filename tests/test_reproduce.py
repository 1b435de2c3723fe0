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
from restyle_lab.reproduce import _failure, execute, missing_requirement


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
    status, why = _failure(caught.value, 10)
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

