"""The command line as a user meets it: help texts, invert outputs, clear errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from tiny import write_tiny_checkpoints, write_tiny_images


def run(*args, ok=True):
    out = subprocess.run([sys.executable, "-m", "restyle_lab.cli", *map(str, args)], capture_output=True, text=True,
                         timeout=600)
    if ok:
        assert out.returncode == 0, out.stderr[-2000:]
    return out


@pytest.mark.parametrize("cmd", [[], ["invert"], ["evaluate"], ["train"], ["reproduce"], ["mini-data"], ["info"],
                                 ["align"], ["convert"], ["mini-report"]])
def test_help_texts(cmd):
    out = run(*cmd, "--help")
    assert "usage: restyle-lab" in out.stdout


def test_evaluate_help_explains_methods():
    text = run("evaluate", "--help").stdout
    assert "restyle:CKPT[:STEPS]" in text and "torchrun" in text and "Resumable" in text


def _options(parser, command: str) -> dict:
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return {flag: action for action in sub._actions for flag in action.option_strings}


@pytest.mark.parametrize("command, names", [
    ("invert", ["steps", "device", "dtype", "impl", "batch_size"]),
    ("evaluate", ["domain", "n_images", "optim_images", "device", "dtype", "impl", "batch_size"]),
    ("reproduce", ["domain", "device", "dtype", "impl", "smoke"]),
])
def test_options_that_set_notebook_parameters_are_the_parameter_table_s(command, names):
    """Each option restating a notebook parameter takes its help, choices and default from its ``Param``; every
    parameter reproduce sets itself (``set_by``) is one of reproduce's options."""
    from restyle_lab.cli import build_parser
    from restyle_lab.run.notebook_params import PARAMS

    options = _options(build_parser(), command)
    if command == "reproduce":
        assert {p.set_by for p in PARAMS.values() if p.set_by} <= set(options)
    for name in names:
        param = PARAMS[name]
        action = options[param.set_by or f"--{name.replace('_', '-')}"]
        assert param.doc.replace("%", "%%") in action.help, (command, name)
        assert tuple(action.choices or ()) == param.choices, (command, name)
        assert action.default in (param.default, None), (command, name)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    return write_tiny_checkpoints(root / "ckpt"), write_tiny_images(root / "data", n=3)


def test_invert_writes_official_style_outputs(assets, tmp_path):
    paths, data = assets
    (data / "broken.png").write_text("not a png")
    run("invert", "--checkpoint", paths["restyle_psp"], "--images", data, "--out", tmp_path, "--steps", 3,
        "--coupled")
    for step in range(3):
        files = sorted(p.name for p in (tmp_path / "inference_results" / str(step)).iterdir())
        assert files == ["test_0000.png", "test_0001.png", "test_0002.png"]
    strip = np.asarray(Image.open(tmp_path / "inference_coupled" / "test_0001.png"))
    assert strip.shape == (64, 64 * 4, 3)
    latents = np.load(tmp_path / "latents.npy", allow_pickle=True).item()
    assert len(latents["test_0002.png"]) == 3 and latents["test_0002.png"][0].shape == (10, 32)
    assert (tmp_path / "avg_image.png").exists()
    assert "broken.png" in (tmp_path / "errors.csv").read_text()


def test_invert_single_image_with_single_pass_encoder(assets, tmp_path):
    paths, data = assets
    run("invert", "--checkpoint", paths["psp"], "--images", data / "test_0000.png", "--out", tmp_path, "--steps", 1)
    assert [p.name for p in (tmp_path / "inference_results" / "0").iterdir()] == ["test_0000.png"]


def test_clear_errors(assets, tmp_path):
    paths, data = assets
    out = run("invert", "--checkpoint", paths["generator"], "--images", data, "--out", tmp_path, ok=False)
    assert out.returncode == 2 and "generator file" in out.stderr and "Traceback" not in out.stderr
    out = run("evaluate", "--data", tmp_path / "nothing", "--out", tmp_path / "run",
              "--method", f"restyle:{paths['restyle_psp']}", ok=False)
    assert out.returncode == 2 and "no such directory" in out.stderr
    out = run("evaluate", "--data", data, "--out", tmp_path / "run", "--method", "bogus:x", ok=False)
    assert out.returncode == 2 and "KIND" in out.stderr and "Traceback" not in out.stderr


def test_info_describes_a_checkpoint(assets):
    paths, _ = assets
    text = run("info", paths["restyle_e4e"]).stdout
    assert "family: restyle_e4e" in text and "progressive=True" in text


def test_two_inputs_never_share_an_output(assets, tmp_path):
    """a.jpg and a.png keep their extensions; sub/a.png has its own folder; latents are keyed by relative path."""
    paths, data = assets
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    pic = Image.open(data / "test_0000.png")
    pic.save(src / "a.png")
    pic.convert("RGB").save(src / "a.jpg", quality=95)
    pic.save(src / "sub" / "a.png")
    run("invert", "--checkpoint", paths["psp"], "--images", src, "--out", tmp_path / "out", "--steps", 1)
    written = sorted(p.relative_to(tmp_path / "out" / "inference_results" / "0").as_posix()
                     for p in (tmp_path / "out" / "inference_results" / "0").rglob("*.png"))
    assert written == ["a.jpg.png", "a.png.png", "sub/a.png"]
    latents = np.load(tmp_path / "out" / "latents.npy", allow_pickle=True).item()
    assert sorted(latents) == ["a.jpg", "a.png", "sub/a.png"]


def test_a_used_out_is_refused_unless_overwritten(assets, tmp_path):
    paths, data = assets
    out = tmp_path / "out"
    run("invert", "--checkpoint", paths["restyle_psp"], "--images", data, "--out", out, "--steps", 3)
    (out / "notes.txt").write_text("mine")
    refused = run("invert", "--checkpoint", paths["restyle_psp"], "--images", data, "--out", out, "--steps", 2,
                  ok=False)
    assert refused.returncode == 2 and "--overwrite" in refused.stderr
    assert (out / "inference_results" / "2").is_dir()
    run("invert", "--checkpoint", paths["restyle_psp"], "--images", data, "--out", out, "--steps", 2, "--overwrite")
    assert sorted(p.name for p in (out / "inference_results").iterdir()) == ["0", "1"], "stale step folders left"
    assert (out / "notes.txt").read_text() == "mine", "--overwrite removes only invert's own outputs"
    assert not list(out.glob(".invert-new-*")), "the new outputs were written aside, then moved in"


def test_summary_and_export_say_when_a_run_is_incomplete(assets, tmp_path, capsys):
    from restyle_lab.cli import main

    paths, _ = assets
    data = write_tiny_images(tmp_path / "data", n=3)  # of this test's own: others add bad files to theirs
    run_dir = tmp_path / "run"
    assert main(["evaluate", "--data", str(data), "--out", str(run_dir), "--method", f"single:{paths['psp']}",
                 "--metrics", "mse_pm1", "--batch-size", "2"]) == 0
    part = run_dir / "parts" / "single_psp" / "b000001.parquet"
    part.unlink()
    (run_dir / "latents" / "single_psp" / "b000001.npz").unlink()
    capsys.readouterr()
    assert main(["summary", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "incomplete run: images stored of those asked for: single_psp 2 of 3" in out
    assert main(["export-latents", str(run_dir), "single_psp", str(tmp_path / "l.npy")]) == 2
    assert main(["export-latents", str(run_dir), "single_psp", str(tmp_path / "l.npy"), "--partial"]) == 0
    assert len(np.load(tmp_path / "l.npy", allow_pickle=True).item()) == 2


def test_values_left_out_of_the_means_are_shown_with_their_reason():
    import pandas as pd

    from restyle_lab.records.views import skipped_note, summary_table

    rows = pd.DataFrame([("a.png", 0, "m", 1, "mse_pm1", float("nan"), "skipped: not finite"),
                         ("b.png", 1, "m", 1, "mse_pm1", float("nan"), "skipped: not finite"),
                         ("a.png", 0, "m", 1, "psnr_pm1", 20.0, "ok"),
                         ("b.png", 1, "m", 1, "psnr_pm1", float("nan"), "skipped: not finite"),
                         ("a.png", 0, "m", 1, "lpips_alex_v0.1", float("nan"), "unavailable: no weights")],
                        columns=["image", "image_index", "method", "step", "metric", "value", "status"])
    table = summary_table(rows)
    assert table.loc[("m", 1), "mse_pm1"] == "skipped: not finite"  # not dropped
    assert table.loc[("m", 1), "psnr_pm1"] == 20.0 and table.loc[("m", 1), "lpips_alex_v0.1"] == "unavailable"
    note = skipped_note(rows)
    assert "m mse_pm1: 2 of 2 images (skipped: not finite)" in note and "m psnr_pm1: 1 of 2 images" in note
