"""reproduce never hangs: a notebook past its time limit is stopped and reported; widgets are not built in
batch runs; a notebook whose checkpoints are missing is skipped (or skips the missing methods) and says so."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from restyle_lab.analysis import explorer
from restyle_lab.cli.parser import sigterm_as_exception
from restyle_lab.run.papermill_runs import MAX_SOCKET_BASE, execute, failure, socket_base
from restyle_lab.run.reproduce import missing_requirement


def _notebook(path, *cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in ("x = 1", *cells)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def _run_slow_notebook(tmp_path, monkeypatch, timeout: float, signal_after=None):
    """Run a notebook that sleeps as ``reproduce`` does (SIGTERM raised as an exception), with a temp folder
    of this test's own; ``signal_after``: send this signal to the process once the kernel is in its cell.
    Returns what stopped it and the temp folder."""
    src = _notebook(tmp_path / "slow.ipynb", "import time\ntime.sleep(600)")
    # short, so the kernel's sockets go there (a worker's tmp_path can be too long a path for them)
    private_tmp = Path(tempfile.mkdtemp(prefix="rl-", dir="/tmp"))
    assert len(os.fsencode(private_tmp)) <= MAX_SOCKET_BASE
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))

    def send():
        deadline = time.time() + 120
        while time.time() < deadline and not list(private_tmp.glob("restyle-kernel-*/kernel.json")):
            time.sleep(0.2)
        time.sleep(2)  # the kernel is in its sleeping cell
        os.kill(os.getpid(), signal_after)

    if signal_after is not None:
        threading.Thread(target=send, daemon=True).start()
    # Ctrl-C as in a terminal (a pytest-xdist worker ignores SIGINT)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with sigterm_as_exception():
            execute(src, tmp_path / "out.ipynb", {}, tmp_path, timeout)
    except KeyboardInterrupt as err:
        return type(err).__name__, private_tmp
    except Exception as err:  # papermill's error for the cell that ran out of time
        return " ".join(failure(err, timeout)), private_tmp
    finally:
        signal.signal(signal.SIGINT, previous)
    return "ran", private_tmp


def test_a_notebook_past_its_limit_is_stopped_quietly_leaving_nothing(tmp_path, monkeypatch, capfd):
    t0 = time.time()
    stopped, private_tmp = _run_slow_notebook(tmp_path, monkeypatch, timeout=6)
    assert time.time() - t0 < 120
    assert stopped.startswith("timed out stopped after the 6 s limit"), stopped
    err = capfd.readouterr().err  # the kernel's own stderr included (file-descriptor level)
    assert "Traceback" not in err and "ZMQError" not in err, err  # its shutdown noise goes nowhere
    assert not list(private_tmp.iterdir()), "the kernel's sockets or connection file were left behind"
    monkeypatch.undo()  # the temp folder back before its private one goes
    private_tmp.rmdir()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_sigterm_or_ctrl_c_shut_the_kernel_down_leaving_nothing(tmp_path, monkeypatch, capfd, sig):
    stopped, private_tmp = _run_slow_notebook(tmp_path, monkeypatch, timeout=300, signal_after=sig)
    assert stopped == ("Terminated" if sig == signal.SIGTERM else "KeyboardInterrupt")
    err = capfd.readouterr().err
    assert "Traceback" not in err and "ZMQError" not in err, err
    assert not list(private_tmp.iterdir()), "the kernel's sockets or connection file were left behind"
    monkeypatch.undo()  # the temp folder back before its private one goes
    private_tmp.rmdir()


def test_kernel_sockets_fit_whatever_tmpdir_is(tmp_path, monkeypatch):
    """A Unix socket path holds 107 bytes: under a long TMPDIR the private folder goes to a short one."""
    long_tmp = tmp_path / ("t" * 80) / ("u" * 80)
    long_tmp.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(long_tmp))
    assert len(socket_base()) <= MAX_SOCKET_BASE
    src = _notebook(tmp_path / "quick.ipynb", "y = x + 1")
    execute(src, tmp_path / "out.ipynb", {"x": 2}, tmp_path, timeout=120)
    assert not list(long_tmp.iterdir())


def test_widgets_are_not_built_in_batch_runs(monkeypatch, capsys):
    monkeypatch.setenv(explorer.BATCH_ENV, "1")
    assert explorer.build(None, {}, [], None, {}) is None
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
    params.write_text(json.dumps({"n_images": 3, "batch_size": 2, "steps": 2}))  # a probe and warm-ups, in 2 steps
    dry = _reproduce(tmp_path, "--only", "fpn_vs_simple", "--params", str(params), "--dry-run")
    assert dry.returncode == 0, dry.stderr[-2000:]
    rows = {line.split()[0]: line.split() for line in dry.stdout.splitlines() if line.startswith("  restyle_psp")}
    assert set(rows) == {"restyle_psp", "restyle_psp_fpn"}
    assert rows["restyle_psp"][1:4] == ["3", "2", "3"]  # images, steps, to do
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
