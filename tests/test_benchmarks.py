"""The benchmark script runs at its smallest settings and writes a CSV that names the machine."""

from __future__ import annotations

import csv
import importlib.util

from conftest import REPO


def _load_runner():
    spec = importlib.util.spec_from_file_location("benchmarks_run", REPO / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_smoke(tmp_path, capsys):
    run = _load_runner()
    out = tmp_path / "results.csv"
    rows = run.main(["--config", "mini", "--what", ",".join(run.WHATS), "--batch", "1", "--rounds", "1",
                     "--steps", "1", "--projector-steps", "1", "--out", str(out)])
    assert {(r["what"], r["impl"]) for r in rows} == {(w, i) for w in run.WHATS for i in ("reference", "fast")}
    assert all(r["median_ms"] > 0 for r in rows)
    with out.open() as f:
        written = list(csv.DictReader(f))
    assert len(written) == len(rows) and set(written[0]) == set(run.COLUMNS)
    assert written[0]["cpu"] and written[0]["torch"] and written[0]["config"] == "mini"
    printed = capsys.readouterr().out
    assert "ratio" in printed and "appended 10 rows" in printed


def test_cpu_clock_and_operator_times(capsys):
    run = _load_runner()
    rows = run.main(["--config", "mini", "--what", "generator,projector", "--rounds", "1", "--projector-steps", "2",
                     "--threads", "1", "--clock", "cpu"])
    assert all(r["clock"] == "cpu" and r["median_ms"] > 0 for r in rows)
    spec = importlib.util.spec_from_file_location("benchmarks_op_times", REPO / "benchmarks" / "op_times.py")
    op_times = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(op_times)
    report = op_times.main(["--config", "mini", "--what", "generator", "--top", "5"])
    printed = capsys.readouterr().out
    assert report["cpu_s"] > 0 and report["minor_faults"] >= 0
    assert any(k.startswith("convolution") for k in report["operators"]) and "MB faulted" in printed
