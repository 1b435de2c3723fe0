"""Edit grids (supplementary Figs. 22-24) and the edit-success plot (mini)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..records.images import to_uint8
from .visual import CI, CI_SEED, MIN_PANEL, display_name, method_style, panels_figsize, themed_plot


def edit_grid_canvas(inputs: np.ndarray, edited: dict, pad: int = 2, gap: int = 6) -> tuple[np.ndarray, list]:
    """uint8 canvas of Figs. 22-24's layout, and the (row label, tile row) of each method row.

    inputs: uint8 [N, h, w, 3]; edited: row label -> images [A, N, 3, h, w] in [-1, 1]. Per image,
    one row per method: the input (first row only), then the A strengths; ``gap`` white pixels
    between images.
    """
    labels = list(edited)
    n = inputs.shape[0]
    a = next(iter(edited.values())).shape[0]
    h, w = inputs.shape[1:3]
    rows_px = n * len(labels) * (h + pad) + (n - 1) * gap + pad
    canvas = np.full((rows_px, (a + 1) * (w + pad) + pad, 3), 255, np.uint8)
    placed = []
    for i in range(n):
        for j, label in enumerate(labels):
            top = pad + (i * len(labels) + j) * (h + pad) + i * gap
            tiles = to_uint8(edited[label][:, i])
            if tiles.shape[1:3] != (h, w):
                raise ValueError(f"{label}: edited images are {tiles.shape[1:3]}, the inputs {(h, w)}")
            if j == 0:
                canvas[top: top + h, pad: pad + w] = inputs[i]
            for k in range(a):
                left = pad + (k + 1) * (w + pad)
                canvas[top: top + h, left: left + w] = tiles[k]
            placed.append((label, top + h / 2))
    return canvas, placed


def plot_edit_grid(inputs: np.ndarray, edited: dict, strengths, title: str = ""):
    """Figs. 22-24's layout for one edit: per image the input, then one row per inversion method
    (e.g. ReStyle-e4e, optimisation) through the strengths; strength 0 is the inversion itself.

    inputs: uint8 [N, h, w, 3]; edited: row label -> images [A, N, 3, h, w] in [-1, 1]; strengths: the A
    strengths (in standard deviations of mapped w along the direction).
    """
    import matplotlib.pyplot as plt

    canvas, placed = edit_grid_canvas(inputs, edited)
    w = inputs.shape[2]
    scale = 1.1 / 64  # inches per pixel at 64 px tiles; larger tiles are drawn at the same size
    scale = scale * 64 / max(w, 64)
    fig_w, fig_h = canvas.shape[1] * scale + 1.5, canvas.shape[0] * scale + 0.55
    fig = plt.figure(figsize=(fig_w, fig_h))
    ax = fig.add_axes((1.5 / fig_w, 0.05 / fig_h, 1 - 1.5 / fig_w, 1 - 0.6 / fig_h))
    ax.imshow(canvas, interpolation="nearest")
    ax.set_axis_off()
    pad = 2
    for k, s in enumerate(["input", *[("inversion" if v == 0 else f"{v:+g}σ") for v in strengths]]):
        ax.text(pad + k * (w + pad) + w / 2, -3, s, ha="center", va="bottom", fontsize=8)
    for label, y in placed:
        ax.text(-4, y, label, ha="right", va="center", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9, y=1 - 0.02 / fig_h)
    return fig


MEASURE_LABELS = {
    "target_slope": "target change\n(attribute std per σ)",
    "off_target_slope": "off-target |change|\n(attribute std per σ)",
    "drift_mse": "MSE outside the edited region\n(largest |strength|)",
}


@themed_plot
def plot_edit_success(per_image: pd.DataFrame, methods: list[str], labels: dict | None = None,
                      records: dict | None = None, measures=tuple(MEASURE_LABELS)):
    """One panel per measure: per-image values (dots) and the mean with its 95% bootstrap interval,
    per edit (x) and inversion method, each in its kind's colour and marker (``records``: the run's
    provenance entries; GAN samples grey)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    labels = labels or {}
    data = per_image[per_image.method.isin(methods)].copy()
    data["inversion"] = data.method.map(lambda m: labels.get(m, display_name(m)))
    order = [labels.get(m, display_name(m)) for m in methods if m in set(data.method)]
    records = records or {}
    styles = {m: method_style(m, records.get(m, {}), records) for m in methods}
    palette = {labels.get(m, display_name(m)): styles[m]["color"] for m in methods}
    markers = [styles[m]["marker"] for m in methods if m in set(data.method)]
    measures = [m for m in measures if data[m].notna().any()]
    # two panels a row, the legend in a free place: three side by side would be shrunk to the notebook's width
    # until the legend was 6 px high
    cols = min(len(measures), 2)
    rows = -(-(len(measures) + 1) // cols) if cols > 1 else len(measures)
    fig, axes = plt.subplots(rows, cols, figsize=(panels_figsize(cols)[0], MIN_PANEL[1] * rows), squeeze=False)
    flat = list(axes.flat)
    for ax, measure in zip(flat, measures):
        sns.stripplot(data=data, x="edit", y=measure, hue="inversion", hue_order=order, palette=palette, dodge=True,
                      alpha=0.25, size=2.5, jitter=0.15, legend=False, ax=ax)
        sns.pointplot(data=data, x="edit", y=measure, hue="inversion", hue_order=order, palette=palette,
                      dodge=0.6, errorbar=CI, seed=CI_SEED, markers=markers, linestyles="none", capsize=0.08,
                      err_kws={"linewidth": 1.2}, ax=ax)
        ax.set_ylabel(MEASURE_LABELS.get(measure, measure))
        ax.set_xlabel("edit")
        if measure == "drift_mse":
            ax.set_yscale("log")
        if ax is not flat[0]:
            ax.get_legend().remove()
    handles, texts = flat[0].get_legend_handles_labels()
    flat[0].get_legend().remove()
    for ax in flat[len(measures):]:
        ax.set_axis_off()
    spare = flat[len(measures)] if len(flat) > len(measures) else None
    if spare is not None:
        spare.legend(handles, texts, loc="center", fontsize=10, title="inversion", title_fontsize=10)
    else:
        fig.legend(handles, texts, loc="upper left", bbox_to_anchor=(1.0, 0.95), fontsize=10, title="inversion")
    fig.tight_layout()
    return fig


def edit_success_view(summary: pd.DataFrame, methods: list[str], labels: dict | None = None, digits: int = 3):
    """Markdown-ready view: per method, each measure's mean over all edits and images with its 95% CI."""
    labels = labels or {}
    rows = []
    for m in methods:
        sub = summary[summary.method == m].set_index("measure")
        if sub.empty:
            continue
        row = {"inversion": labels.get(m, display_name(m))}
        for measure in MEASURE_LABELS:
            if measure in sub.index and np.isfinite(sub.loc[measure, "mean"]):
                r = sub.loc[measure]
                row[measure] = f"{r['mean']:.{digits}g} [{r.ci95_low:.{digits}g}, {r.ci95_high:.{digits}g}]"
            else:
                row[measure] = "n/a"
        rows.append(row)
    return pd.DataFrame(rows)


def comparison_view(comparison: pd.DataFrame, labels: dict | None = None, digits: int = 3) -> pd.DataFrame:
    """The paired comparison (``editing.compare``) narrow enough for a notebook page: per method and measure,
    both means, their ratio and the mean difference with its 95% CI in one column (the saved table keeps
    every number in its own column)."""
    labels = labels or {}
    if comparison.empty:
        return comparison
    reference = labels.get(comparison.reference.iloc[0], display_name(comparison.reference.iloc[0]))
    g = f".{digits}g"
    return pd.DataFrame({
        "inversion": comparison.method.map(lambda m: labels.get(m, display_name(m))),
        "measure": comparison.measure,
        "mean": comparison.method_mean.map(lambda v: f"{v:{g}}"),
        f"{reference} mean": comparison.reference_mean.map(lambda v: f"{v:{g}}"),
        "ratio": comparison.ratio.map(lambda v: f"{v:{g}}"),
        "difference [95% CI]": [f"{d:{g}} [{lo:{g}}, {hi:{g}}]" for d, lo, hi in
                                zip(comparison.difference, comparison.difference_ci95_low,
                                    comparison.difference_ci95_high)],
        "images": comparison.n_images,
    })
