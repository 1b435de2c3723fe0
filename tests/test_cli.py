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


@pytest.mark.parametrize("cmd", [[], ["invert"], ["evaluate"], ["train"], ["reproduce"], ["mini-data"], ["info"]])
def test_help_texts(cmd):
    out = run(*cmd, "--help")
    assert "usage: restyle-lab" in out.stdout


def test_evaluate_help_explains_methods():
    text = run("evaluate", "--help").stdout
    assert "restyle:CKPT[:STEPS]" in text and "torchrun" in text and "Resumable" in text


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
    assert out.returncode != 0 and "KIND" in out.stderr


def test_info_describes_a_checkpoint(assets):
    paths, _ = assets
    text = run("info", paths["restyle_e4e"]).stdout
    assert "family: restyle_e4e" in text and "progressive=True" in text
