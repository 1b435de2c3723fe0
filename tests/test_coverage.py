"""The mini coverage measures (restyle_lab.mini.coverage, `restyle-lab mini-report`) on hand-made samples and
tiny seeded networks: their numbers mean nothing as a model's coverage, only that the measures behave."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from restyle_lab.facts.configs import TINY
from restyle_lab.mini.attributes import AttributeRegressor, RegressorConfig
from restyle_lab.mini.coverage import (
    DISTRIBUTION_COLUMNS,
    INVERSION_COLUMNS,
    SUMMARY_COLUMNS,
    coverage,
    distribution_table,
    frechet_distance,
    inversion_table,
    judge_readings,
    r2_per_attribute,
    wasserstein_1d,
)
from restyle_lab.models.stylegan2 import Generator


def test_wasserstein_by_hand():
    assert wasserstein_1d([0, 1, 2], [0, 1, 2]) == 0
    assert wasserstein_1d([0, 1, 2], [3, 4, 5]) == pytest.approx(3)  # a shift moves every quantile by 3
    # {0, 1} against {0, 0, 3}: the CDFs (1/2 then 1; 2/3 until 3) differ by 1/6 on [0, 1) and 1/3 on [1, 3)
    assert wasserstein_1d([0, 1], [0, 0, 3]) == pytest.approx(1 / 6 + 2 * 1 / 3)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        wasserstein_1d([], [1.0])


def test_frechet_of_gaussians_with_known_moments():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-8)
    # a mean shift adds |d|^2; a scale of 2 in every direction adds 3 * (1 + 4 - 2 * 2) = 3
    assert frechet_distance(a, a + [1.0, 2.0, 0.0]) == pytest.approx(5, rel=1e-6)
    assert frechet_distance(a, 2 * a) == pytest.approx(3 * np.var(a, axis=0, ddof=1).mean(), rel=0.02)


def test_distribution_table_zero_for_the_same_set_and_larger_for_a_shifted_one():
    rng = np.random.default_rng(1)
    data, other = rng.normal(size=(500, 2)), rng.normal(size=(500, 2))
    same = distribution_table(data, data, other, ["a", "b"])
    assert list(same.columns) == DISTRIBUTION_COLUMNS
    assert (same.wasserstein_std == 0).all()
    shifted = distribution_table(data + [0.5, 0.0], data, other, ["a", "b"])
    assert shifted.wasserstein_std[0] == pytest.approx(0.5 / data[:, 0].std())
    assert shifted.wasserstein_std[0] > 3 * shifted.floor_wasserstein_std[0]
    assert shifted.wasserstein_std[1] == 0


def test_r2_per_attribute():
    true = np.array([[0.0, 1.0], [1.0, 2.0], [2.0, 6.0]])
    assert np.allclose(r2_per_attribute(true, true), 1)
    assert np.allclose(r2_per_attribute(np.repeat(true.mean(0, keepdims=True), 3, 0), true), 0)


@pytest.fixture(scope="module")
def tiny_judge():
    torch.manual_seed(0)
    cfg = RegressorConfig(channels=(4, 4, 4, 4, 4), squeeze=2, hidden=8)
    return AttributeRegressor(cfg).eval()


def test_coverage_on_tiny_networks(tiny_judge):
    torch.manual_seed(0)
    gen = Generator(TINY["tiny-generator"]).eval()
    dist, summary = coverage(gen, tiny_judge, n=24, seed=0)
    assert list(dist.columns) == DISTRIBUTION_COLUMNS and list(summary.columns) == SUMMARY_COLUMNS
    assert list(dist.attribute) == list(tiny_judge.config.attributes)
    assert np.isfinite(dist.drop(columns="attribute").to_numpy()).all()
    again, _ = coverage(gen, tiny_judge, n=24, seed=0)  # seeded: samples and noise inputs
    assert again.equals(dist)


def test_inversion_table_one_for_perfect_inversions_lower_for_shifted_ones(tiny_judge):
    x = torch.rand(12, 3, 64, 64) * 2 - 1
    table = inversion_table(tiny_judge, {"m": (x, {1: x.flip(0), 2: x})})
    assert list(table.columns) == INVERSION_COLUMNS
    assert np.allclose(table[table.step == 2].r2, 1)
    assert (table[table.step == 1].r2 < 1).all()
    attrs, feats = judge_readings(tiny_judge, x)
    assert attrs.shape == (12, len(tiny_judge.config.attributes)) and feats.shape == (12, 8)


def test_mini_report_command_on_a_tiny_run(tiny_judge, tmp_path):
    """`restyle-lab mini-report` reads a stored run's inversions and inputs and writes the three tables."""
    import dataclasses
    import subprocess
    import sys

    import pandas as pd
    from tiny import write_tiny_checkpoints, write_tiny_images

    from restyle_lab.records.files import atomic_torch_save

    paths, data = write_tiny_checkpoints(tmp_path / "ckpt"), write_tiny_images(tmp_path / "data", n=3)
    judge_file = tmp_path / "judge.pt"
    atomic_torch_save({"kind": "mini_attribute_regressor", "config": dataclasses.asdict(tiny_judge.config),
                       "state_dict": tiny_judge.state_dict()}, judge_file)

    def cli(*args):
        out = subprocess.run([sys.executable, "-m", "restyle_lab.cli", *map(str, args)], capture_output=True,
                             text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout

    cli("evaluate", "--domain", "mini", "--data", data, "--out", tmp_path / "run", "--metrics", "mse_pm1",
        "--method", f"rp=restyle:{paths['restyle_psp']}:2")
    text = cli("mini-report", "--generator", paths["generator"], "--judge", judge_file, "--n", 16,
               "--run", tmp_path / "run", "--out", tmp_path / "report")
    assert "worst_wasserstein_std" in text and "inversions:" in text
    inv = pd.read_csv(tmp_path / "report" / "inversions.csv")
    assert list(inv.columns) == INVERSION_COLUMNS
    assert sorted(set(zip(inv.method, inv.step))) == [("rp", 1), ("rp", 2)] and (inv.n == 3).all()
    assert list(pd.read_csv(tmp_path / "report" / "coverage.csv").columns) == DISTRIBUTION_COLUMNS
