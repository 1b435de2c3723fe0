"""A real domain's layout kept working: seeded random-weight checkpoints in the official layouts for cars
(192x256 inputs, 384x512 crops, ResNet34 ReStyle encoders, IR-SE50 pSp / e4e, official option sets, a 512
generator) through every notebook cars supports, on a handful of stand-in photos. Mechanics only: no
number from these weights is reported anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from official_layouts import write_official_checkpoints, write_photos

# what cars supports: no FPN-head ReStyle or toon encoder was released, and there is no toon generator
RUNS = ["quality_time", "latent_change", "step_heatmaps", "fpn_vs_simple", "naive_vs_restyle", "explorer", "editing"]
SKIPPED = ["generator_alignment", "encoder_bootstrapping"]


@pytest.fixture(scope="module")
def cars_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cars")
    write_official_checkpoints(root / "ckpt", "cars")
    photos = write_photos(root / "photos", 2, (340, 256))  # Stanford Cars-like aspect, resized to 192x256
    params = root / "smoke.json"
    # 2 projector steps in both notebooks that optimise (at 512 px a step costs seconds per image on a CPU;
    # the smoke cap is 20), so they share optim_w's store
    params.write_text(json.dumps({"n_images": 2, "steps": 2, "batch_size": 2, "quality_time": {"optim_steps": 2},
                                  "editing": {"optim_steps": 2, "n_show": 1, "strengths": "0,2"}}))
    env = dict(os.environ, RESTYLE_LAB_DATA=str(root / "cache"))
    res = subprocess.run([sys.executable, "-m", "restyle_lab.cli", "reproduce", "--domain", "cars", "--smoke",
                          "--checkpoints", str(root / "ckpt"), "--data", str(photos), "--out", str(root / "out"),
                          "--params", str(params)], capture_output=True, text=True, timeout=1800, env=env, cwd=root)
    return root / "out" / "cars", res


def test_every_supported_notebook_runs_and_the_others_are_skipped(cars_run):
    out, res = cars_run
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert f"{len(RUNS)}/{len(RUNS)} notebooks ran" in res.stdout
    for name in SKIPPED:
        assert f"skipped {name}:" in res.stdout
    assert "estimated inversion time" in res.stdout and "restyle_psp_fpn" not in res.stdout.split("store ")[-1]


def test_tables_have_the_expected_shapes(cars_run):
    out, _ = cars_run
    quality = pd.read_csv(out / "quality_time" / "quality_time.csv")
    assert set(quality.method) == {"psp", "e4e", "restyle_psp", "restyle_e4e", "optim_w", "restyle_psp+optim",
                                   "restyle_e4e+optim"}
    mse = quality[quality.metric == "mse_pm1"]
    assert mse.groupby("method").step.max().to_dict() == {"psp": 1, "e4e": 1, "restyle_psp": 2, "restyle_e4e": 2,
                                                          "optim_w": 2, "restyle_psp+optim": 2, "restyle_e4e+optim": 2}
    assert (mse.n_images == 2).all()
    groups = pd.read_csv(out / "latent_change" / "latent_change_restyle_psp.csv")
    assert len(groups) == 2 * 3 and set(groups.group) == {"coarse", "medium", "fine"}
    per_layer = pd.read_csv(out / "latent_change" / "latent_change_per_layer_restyle_psp.csv")
    assert per_layer.layer.nunique() == 16  # a 512 generator has 16 style inputs
    changes = pd.read_csv(out / "step_heatmaps" / "step_changes_restyle_e4e.csv")
    assert len(changes) == 2 * 2
    fpn = pd.read_csv(out / "fpn_vs_simple" / "fpn_vs_simple.csv")
    assert list(fpn.method) == ["restyle_psp"]
    naive = pd.read_csv(out / "naive_vs_restyle" / "naive_vs_restyle.csv")
    assert set(naive.method) == {"restyle_psp", "psp_naive", "restyle_e4e", "e4e_naive"}
    directions = pd.read_csv(out / "editing" / "edit_directions.csv")  # the paper's cars pairing: GANSpace
    assert list(directions.name) == ["viewpoint", "cube", "colour"] and set(directions.source) == {"ganspace"}


def test_figures_exist_and_the_crops_are_cars(cars_run):
    import numpy as np

    from restyle_lab.records.store import read_latents

    out, _ = cars_run
    for folder, figure in [("quality_time", "quality_time"), ("latent_change", "latent_change_restyle_e4e"),
                           ("step_heatmaps", "heatmaps_mean_restyle_psp"), ("fpn_vs_simple", "fpn_vs_simple"),
                           ("naive_vs_restyle", "naive_vs_restyle"), ("explorer", "explorer_snapshot"),
                           ("editing", "edit_grid_viewpoint"), ("editing", "edit_grid_cube")]:
        assert (out / folder / f"{figure}.png").stat().st_size > 1000, figure
    store = next((out / "store").glob("restyle_psp-*"))  # each method keeps its own store
    stored = read_latents(store, "restyle_psp")
    assert stored["images"].shape == (2, 2, 192, 256, 3)  # pooled 256 and cropped to rows 32:224
    assert stored["latents"].shape == (2, 2, 16, 512) and np.isfinite(stored["latents"]).all()
