"""The analysis math against hand-computed values on tiny arrays, one family per function (kornia's style:
the failing value is printed by the assertion)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from restyle_lab.analysis import (
    alignment_summary,
    change_table,
    latent_change,
    luma_lowpass_pearson,
    mean_heatmaps,
    normalise_per_image,
    per_step_means,
    quality_time_table,
    step_changes,
    step_table,
)
from restyle_lab.records.parts import COLUMNS

# ---------------------------------------------------------------- latent_change (supplementary Eq. 1-2)

def _two_steps():
    start = np.zeros((2, 3, 2))  # N=2 images, L=3 style rows, D=2
    step1 = np.array([[[1, 0], [0, 0], [2, 2]],
                      [[3, 0], [0, 0], [0, 0]]], dtype=float)
    return np.stack([step1, step1]), start  # step 2 changes nothing


def test_latent_change_values():
    latents, start = _two_steps()
    per_layer, per_group = latent_change(latents, start, {"coarse": [0, 1], "fine": [2]})
    v = per_layer.set_index(["step", "layer"]).v
    # d_{0,1} = mean_i w^2 = ([1,0] + [9,0]) / 2 = [5, 0]; d_{2,1} = ([4,4] + [0,0]) / 2 = [2, 2]
    assert v[(1, 0)] == pytest.approx(5.0) and v[(1, 1)] == 0.0 and v[(1, 2)] == pytest.approx(math.sqrt(8))
    assert (v.loc[2] == 0).all(), v.loc[2]
    g = per_group.set_index(["step", "group"]).value
    assert g[(1, "coarse")] == pytest.approx(2.5) and g[(1, "fine")] == pytest.approx(math.sqrt(8))
    assert list(per_group.n_layers) == [2, 1, 2, 1]


def test_latent_change_cardinality_and_exceptions():
    latents, start = _two_steps()
    per_layer, per_group = latent_change(latents, start, {"all": [0, 1, 2], "none": []})
    assert len(per_layer) == 2 * 3 and len(per_group) == 2  # empty groups are left out
    with pytest.raises(ValueError, match=r"\[S, N, L, D\]"):
        latent_change(latents[0], start, {"all": [0]})
    with pytest.raises(ValueError, match="Got"):
        latent_change(latents, start[:1], {"all": [0]})


# ---------------------------------------------------------------- step_changes and their normalisations

def test_step_changes_values():
    start = np.zeros((1, 1, 1, 3), np.uint8)
    images = np.array([[[[[255, 0, 0]]]], [[[[255, 255, 0]]]]], np.uint8)  # [S=2, N=1, 1, 1, 3]
    changes = step_changes(images, start)
    assert changes.shape == (1, 2, 1, 1)
    # |255 - 0| / 127.5 = 2 in [-1, 1] units, averaged over the 3 channels
    np.testing.assert_allclose(changes[0, :, 0, 0], [2 / 3, 2 / 3])


def test_normalise_per_image_divides_by_each_images_peak():
    changes = np.array([[[[1.0]], [[2.0]]], [[[4.0]], [[0.0]]], [[[0.0]], [[0.0]]]])  # N=3, S=2
    out = normalise_per_image(changes)
    np.testing.assert_allclose(out[:, :, 0, 0], [[0.5, 1.0], [1.0, 0.0], [0.0, 0.0]])  # a still image stays 0


def test_mean_heatmaps_are_normalised_across_steps():
    changes = np.array([[[[1.0, 3.0]], [[2.0, 2.0]]], [[[3.0, 1.0]], [[0.0, 0.0]]]])  # N=2, S=2, 1x2
    out = mean_heatmaps(changes)
    # mean over images: step 1 [2, 2], step 2 [1, 1]; divided by the global max 2
    np.testing.assert_allclose(out[:, 0], [[1.0, 1.0], [0.5, 0.5]])
    assert mean_heatmaps(np.zeros((2, 2, 1, 1))).max() == 0


def test_change_table_rows():
    changes = np.arange(8, dtype=float).reshape(2, 2, 1, 2)
    table = change_table(changes, ["a.png", "b.png"])
    assert list(table.columns) == ["image", "step", "mean_abs_change"]
    assert table.mean_abs_change.tolist() == [0.5, 2.5, 4.5, 6.5]
    assert table.image.tolist() == ["a.png", "a.png", "b.png", "b.png"] and table.step.tolist() == [1, 2, 1, 2]


# ---------------------------------------------------------------- alignment

def _scores(same, shuffled, similarity="luma_lowpass16_pearson"):
    rows = [("same_w", i, i, v) for i, v in enumerate(same)] + [("shuffled", i, i + 1, v) for i, v in enumerate(shuffled)]
    df = pd.DataFrame(rows, columns=["pair", "i", "j", "value"])
    df["similarity"] = similarity
    return df


@pytest.mark.parametrize("same, shuffled, similarity, auc", [
    ([3.0, 4.0], [1.0, 2.0], "luma_lowpass16_pearson", 1.0),
    ([3.0, 1.0], [2.0, 2.0], "luma_lowpass16_pearson", 0.5),
    ([2.0, 2.0], [2.0, 2.0], "luma_lowpass16_pearson", 0.5),  # ties count half
    ([0.1, 0.2], [0.5, 0.15], "lpips_alex_v0.1", 0.75),  # a distance: lower is more similar
])
def test_alignment_auc(same, shuffled, similarity, auc):
    summary = alignment_summary(_scores(same, shuffled, similarity)).iloc[0]
    assert summary.auc_same_vs_shuffled == pytest.approx(auc), summary
    assert summary.same_w_mean == pytest.approx(np.mean(same)) and summary.n_shuffled == len(shuffled)


def test_luma_lowpass_pearson():
    x = torch.linspace(-1, 1, 3 * 32 * 32).reshape(1, 3, 32, 32)
    assert luma_lowpass_pearson(x, x).item() == pytest.approx(1.0)
    assert luma_lowpass_pearson(x, -x).item() == pytest.approx(-1.0)  # luma is linear: negated, anti-correlated
    assert luma_lowpass_pearson(x, torch.zeros_like(x)).item() == 0.0  # a flat image correlates with nothing


# ---------------------------------------------------------------- per-step tables

def _rows():
    rows = [("a.png", 0, "m", 1, "mse_pm1", 1.0, "ok"), ("b.png", 1, "m", 1, "mse_pm1", 3.0, "ok"),
            ("a.png", 0, "m", 1, "lpips_alex_v0.1", float("nan"), "unavailable: no weights"),
            ("b.png", 1, "m", 1, "lpips_alex_v0.1", float("nan"), "unavailable: no weights"),
            ("a.png", 0, "m", 1, "cumulative_seconds_per_image", 0.5, "ok"),
            ("b.png", 1, "m", 1, "cumulative_seconds_per_image", 1.5, "ok"),
            ("a.png", 0, "m", 2, "mse_pm1", 2.0, "ok"), ("b.png", 1, "m", 2, "mse_pm1", float("nan"), "skipped: x")]
    return pd.DataFrame(rows, columns=COLUMNS)


def test_per_step_means_values_and_kept_statuses():
    means = per_step_means(_rows()).set_index(["method", "step", "metric"])
    mse1 = means.loc[("m", 1, "mse_pm1")]
    assert (mse1["mean"], mse1["sem"], mse1["n_images"]) == (2.0, 1.0, 2)  # sem = std(ddof=1) / sqrt(2)
    assert means.loc[("m", 2, "mse_pm1")]["n_images"] == 1  # the skipped row does not count
    lp = means.loc[("m", 1, "lpips_alex_v0.1")]
    assert np.isnan(lp["mean"]) and lp["n_images"] == 0 and lp["status"].startswith("unavailable")


def _timing():
    """A timing pass's table (``inversion.timing``): its seconds, not the stored rows' 0.5 and 1.5."""
    return pd.DataFrame({"method": ["m", "m"], "step": [1, 2], "seconds_per_image": [0.25, 0.5]})


def test_quality_time_table_joins_time_from_the_timing_pass_and_kind():
    table = quality_time_table(_rows(), {"m": {"kind": "restyle", "family": "restyle_psp"}}, _timing())
    row = table[(table.step == 1) & (table.metric == "mse_pm1")].iloc[0]
    assert row.seconds_per_image == 0.25 and row.kind == "restyle" and row.family == "restyle_psp"
    assert "cumulative_seconds_per_image" not in set(table.metric)


def test_step_table_layout_and_missing_method():
    table = step_table(_rows(), ["m"], step=1, timing=_timing())
    row = table.iloc[0]
    assert row.mse_pm1 == 2.0 and row.cumulative_seconds_per_image == 0.25
    assert row["lpips_alex_v0.1_status"].startswith("unav")
    with pytest.raises(ValueError, match="no rows for method 'other' at step 1"):
        step_table(_rows(), ["other"], step=1)
