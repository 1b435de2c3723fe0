"""Figures as a researcher sees them: the theme leaves matplotlib's global state alone, line plots have a
minimum size, an unavailable metric is a line under the figure (not a panel), and the explorer's view has
its colour bar, both normalisations, axis labels and a legend that stays put."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from restyle_lab import analysis  # noqa: E402
from restyle_lab.analysis import explorer  # noqa: E402
from restyle_lab.analysis.visual import MIN_PANEL, panels_figsize, theme_rc, themed  # noqa: E402
from restyle_lab.facts.metric_names import CUMULATIVE_SECONDS, LPIPS, MSE  # noqa: E402
from restyle_lab.facts.palette import CHANGE_SCALES  # noqa: E402
from restyle_lab.records.parts import unit_name  # noqa: E402
from restyle_lab.records.store import stored_latent_arrays, write_latents  # noqa: E402

GROUPS = {"coarse": [0, 1, 2, 3], "medium": [4, 5, 6, 7], "fine": [8, 9]}


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def texts_of(fig) -> list[str]:
    return [t.get_text() for t in fig.texts]


def test_theme_restores_its_own_keys_and_leaves_interactive_mode_alone():
    """The inline backend switches interactive mode on at a kernel's first figure, drawn inside the theme;
    restoring it afterwards hid every later figure of that kernel."""
    key = "axes.prop_cycle"
    before, interactive = matplotlib.rcParams[key], matplotlib.is_interactive()
    try:
        matplotlib.interactive(False)
        with themed():
            assert matplotlib.rcParams[key] == theme_rc()[key]
            matplotlib.interactive(True)  # what the backend does at the first figure
        assert matplotlib.is_interactive(), "the theme switched interactive mode off again"
        assert matplotlib.rcParams[key] == before
    finally:
        matplotlib.interactive(interactive)


def test_line_plots_have_a_minimum_size():
    assert panels_figsize(2, 4.0, 3.0) == (2 * MIN_PANEL[0], MIN_PANEL[1])
    per_group = pd.DataFrame({"step": [1, 2, 1, 2], "group": ["coarse", "coarse", "fine", "fine"],
                              "value": [1.0, 0.5, 2.0, 1.0]})
    fig = analysis.plot_latent_change(per_group)
    assert tuple(fig.get_size_inches()) >= MIN_PANEL and fig.axes[0].get_ylabel()


def quality_table(lpips_values):
    rows = []
    for method, kind in (("restyle_psp", "restyle"), ("psp", "single")):
        for step in (1, 2):
            for metric, value in ((MSE, 0.1 / step), (LPIPS, lpips_values)):
                rows.append({"method": method, "kind": kind, "family": "psp", "step": step, "metric": metric,
                             "mean": value, "sem": 0.0, "n_images": 2, "seconds_per_image": 0.1 * step,
                             "status": "ok" if value == value else "unavailable: no weights"})
    return pd.DataFrame(rows)


def test_an_unavailable_metric_is_a_line_under_the_figure_not_a_panel():
    methods = {"restyle_psp": {"kind": "restyle", "checkpoint": "restyle_psp.pt", "family": "restyle_psp", "steps": 2},
               "psp": {"kind": "single", "checkpoint": "psp.pt", "family": "psp"}}
    fig = analysis.plot_quality_time(quality_table(float("nan")), methods)
    assert [ax.get_ylabel() for ax in fig.axes] == [analysis.visual.metric_label(MSE)]
    notes = [t for t in texts_of(fig) if "unavailable" in t]
    assert len(notes) == 1 and "LPIPS" in notes[0] and "\n" not in notes[0]
    fig = analysis.plot_quality_time(quality_table(0.3), methods)
    assert len(fig.axes) == 2 and not texts_of(fig)
    bars = analysis.plot_table(pd.DataFrame({"method": ["a", "b"], MSE: [0.1, 0.2], LPIPS: [np.nan, np.nan],
                                             CUMULATIVE_SECONDS: [1.0, 2.0]}), [LPIPS, MSE, CUMULATIVE_SECONDS])
    assert len(bars.axes) == 2 and any("LPIPS" in t for t in texts_of(bars))


def stored_method(seed=0, steps=(1, 2, 3), n=2, size=16):
    rng = np.random.default_rng(seed)
    return {"names": np.array([f"img_{i}.png" for i in range(n)]), "steps": np.array(steps),
            "latents": rng.normal(size=(len(steps), n, 10, 8)).astype(np.float32),
            "images": rng.integers(0, 255, (len(steps), n, size, size, 3), dtype=np.uint8),
            "start_image": rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8),
            "start_latent": rng.normal(size=(n, 10, 8)).astype(np.float32)}


def test_per_step_normalisation_gives_every_map_its_own_maximum():
    changes = np.random.default_rng(0).random((2, 3, 4, 4)) * np.array([1.0, 0.1, 0.01])[None, :, None, None]
    per_step = analysis.normalise_per_step(changes)
    np.testing.assert_allclose(per_step.max(axis=(2, 3)), 1.0)
    np.testing.assert_allclose(per_step[1, 2], changes[1, 2] / changes[1, 2].max())
    assert analysis.normalise_per_image(changes)[:, 2].max() < 0.05  # the global view's faded late step


def test_explorer_view_has_a_colour_bar_labels_and_a_legend_that_stays_put():
    stored = stored_method()
    inputs = stored["images"][0]
    boxes = []
    for step in (1, 3):
        fig = explorer.image_view(stored, inputs, GROUPS, index=1, step=step, normalise="per step", strength=0.3)
        fig.canvas.draw()
        image, change_panel, curves, bar = fig.axes
        assert CHANGE_SCALES["per step"] in " ".join(bar.get_ylabel().split())
        assert change_panel.images[1].get_alpha() == 0.3
        assert curves.get_xlabel() == "step" and curves.get_ylabel()
        boxes.append(tuple(np.round(curves.get_legend().get_window_extent().bounds, 1)))
    assert boxes[0] == boxes[1], "the legend moved with the step"
    snapshots = explorer.image_view(stored_method(steps=(1, 10, 20)), inputs, GROUPS, index=0, step=10)
    assert [t.get_text() for t in snapshots.axes[2].get_xticklabels()] == ["1", "10", "20"]
    with pytest.raises(ValueError, match="stored steps"):
        explorer.image_view(stored_method(steps=(1, 10)), inputs, GROUPS, index=0, step=5)


def test_the_methods_stored_for_some_images_are_read_without_loading_them(tmp_path):
    full, partial = stored_method(), stored_method()
    write_latents(tmp_path, "restyle_psp", unit_name(0), full["names"], full["steps"], full["latents"], full["images"],
                  full["start_image"], full["start_latent"])
    write_latents(tmp_path, "psp_naive", unit_name(0), partial["names"], partial["steps"], partial["latents"], partial["images"],
                  partial["start_image"])
    names, arrays = stored_latent_arrays(tmp_path, "restyle_psp")
    assert names == ["img_0.png", "img_1.png"] and set(explorer.NEEDS) <= arrays
    assert not set(explorer.NEEDS) <= stored_latent_arrays(tmp_path, "psp_naive")[1]
    assert stored_latent_arrays(tmp_path, "nothing") is None


def test_a_shown_table_says_unavailable_in_one_word():
    table = pd.DataFrame({"method": ["a"], LPIPS: [np.nan], f"{LPIPS}_status": ["unavailable: the weight file x is "
                                                                               "not at /y. Copy it there."],
                          "status": ["ok"]})
    shown = analysis.brief_statuses(table)
    assert shown[f"{LPIPS}_status"].tolist() == ["unavailable"] and shown.status.tolist() == ["ok"]
    assert table[f"{LPIPS}_status"].iloc[0].startswith("unavailable: the weight file"), "the saved table keeps it"


def timing_table(machine="Test CPU (2 logical cores)"):
    from restyle_lab.inversion.timing import COLUMNS

    rows = [["restyle_psp", 1, 0.01, True, "1, 2", 2, 3], ["restyle_psp", 2, 0.02, True, "1, 2", 2, 3],
            ["psp", 1, 0.005, True, "1", 2, 3], ["optim_w", 1, 0.03, True, "1, 3", 2, 3],
            ["optim_w", 10, 0.3, False, "1, 3", 2, 3]]
    return pd.DataFrame([r + [True, machine, "cpu", 2, 0.5, "2026-12-06 10:00:00 +0000", "float32", "fast", "2.14"]
                         for r in rows], columns=COLUMNS)


def stored_rows():
    """Per-image rows as the store holds them: optim_w on 2 of the images, every stored second far from the
    timing pass's (another sitting)."""
    rows = []
    for method, steps, images in (("restyle_psp", (1, 2), 4), ("psp", (1,), 4), ("optim_w", (1, 10), 2)):
        for step in steps:
            for i in range(images):
                rows += [(f"img_{i}.png", i, method, step, MSE, 0.1 / step, "ok"),
                         (f"img_{i}.png", i, method, step, CUMULATIVE_SECONDS, 99.0, "ok")]
    return pd.DataFrame(rows, columns=["image", "image_index", "method", "step", "metric", "value", "status"])


METHODS = {"restyle_psp": {"kind": "restyle", "checkpoint": "r.pt", "family": "restyle_psp", "steps": 2},
           "psp": {"kind": "single", "checkpoint": "p.pt", "family": "psp"},
           "optim_w": {"kind": "optim", "generator": "g.pt", "space": "w", "record_at": [1, 10], "images": 3,
                       "subset_seed": 0}}


def test_quality_time_plots_one_timing_pass_and_counts_images_from_its_rows():
    timing = timing_table()
    table = analysis.quality_time_table(stored_rows(), METHODS, timing)
    assert not (table.seconds_per_image == 99.0).any(), "a stored second reached the figure's table"
    fig = analysis.plot_quality_time(table, METHODS, timing)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    # optim_w asked for 3 images; its rows hold 2, and the legend says what the rows hold
    assert set(lines) == {"ReStyle-pSp", "pSp", "optimisation (W), 2 images (seed 0)"}
    np.testing.assert_allclose(lines["ReStyle-pSp"].get_xdata(), [0.01, 0.02])
    np.testing.assert_allclose(lines["optimisation (W), 2 images (seed 0)"].get_xdata(), [0.03, 0.3])
    assert "Test CPU" in fig.axes[0].get_xlabel()
    note = " ".join(texts_of(fig))
    assert "one timing pass on Test CPU" in note and "load average 0.50" in note and "multiplied out" in note


def test_a_time_panel_says_it_sums_the_steps_per_image():
    rows = stored_rows()
    table = analysis.step_table(rows, ["restyle_psp"], step=2, metrics=(MSE,), timing=timing_table())
    assert table[CUMULATIVE_SECONDS].tolist() == [0.02]
    fig = analysis.plot_table(table, [MSE, CUMULATIVE_SECONDS], timing=timing_table())
    assert fig.axes[1].get_title() == "seconds per image, 2 steps in all"
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["ReStyle-pSp"]
    assert CUMULATIVE_SECONDS not in analysis.step_table(rows, ["restyle_psp"], step=2, metrics=(MSE,))


def test_per_image_change_maps_name_their_method_and_have_a_colour_bar():
    stored = stored_method(steps=(1, 2, 3), n=2)
    changes = analysis.step_changes(stored["images"], stored["start_image"])
    per_step = analysis.normalise(changes, "per step")
    fig = analysis.plot_image_heatmaps(stored["images"][0], stored["images"], per_step, stored["names"],
                                       "restyle_e4e", "per step")
    assert "ReStyle-e4e" in fig._suptitle.get_text()
    bars = [ax for ax in fig.axes if ax.get_ylabel().startswith("change /")]
    assert len(bars) == 1 and "in that step" in " ".join(bars[0].get_ylabel().split())
    mean = analysis.mean_heatmaps(changes, "per step")
    np.testing.assert_allclose(mean.max(axis=(1, 2)), 1.0)
    with pytest.raises(ValueError, match="normalise must be one of"):
        analysis.normalise(changes, "local")


def test_figures_name_methods_metrics_and_scores_by_their_display_names():
    from restyle_lab.analysis.visual import display_name, raw_keys
    from restyle_lab.facts.catalog import NAMED_METHODS
    from restyle_lab.facts.metric_names import LABELS

    assert display_name("restyle_psp+optim") == "ReStyle-pSp + optimisation"
    assert display_name("same_w") == "same w" and display_name(MSE).startswith("MSE")
    assert {"restyle_psp+optim", "optim_w", "luma_lowpass16_pearson", "same_w", MSE} <= raw_keys()
    unlabelled = [k for k in (*NAMED_METHODS, *LABELS) if display_name(k) == k]
    assert unlabelled == ["e4e"], f"keys shown as they are: {unlabelled}"
