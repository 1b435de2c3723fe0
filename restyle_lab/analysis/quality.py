"""Quality-time graphs (supplementary Figs. 6-7) and per-step tables (Table 1, Fig. 4)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..facts.metric_names import CUMULATIVE_SECONDS, IDENTITY, LPIPS, MSE, TIME_METRICS
from ..facts.palette import RED
from .visual import (
    CI,
    CI_SEED,
    display_name,
    method_style,
    metric_label,
    note_unavailable,
    note_under,
    panels_figsize,
    themed_plot,
    timing_note,
    unavailable,
)

DARK_RED = "#8c1a1a"  # the FPN head beside the simple one (pSp red)


def per_step_means(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard error and image count of every metric per (method, step), over rows with
    status 'ok'; metrics with no ok row are kept with NaN and their status (e.g. unavailable)."""
    ok = df[df["status"] == "ok"]
    g = ok.groupby(["method", "step", "metric"])["value"]
    out = g.agg(mean="mean", sem="sem", n_images="count").reset_index()
    out["status"] = "ok"
    missing = df.loc[~df.set_index(["method", "step", "metric"]).index.isin(
        out.set_index(["method", "step", "metric"]).index)]
    if len(missing):
        extra = missing.groupby(["method", "step", "metric"])["status"].first().reset_index()
        extra["mean"] = np.nan
        extra["sem"] = np.nan
        extra["n_images"] = 0
        out = pd.concat([out, extra[out.columns]], ignore_index=True)
    return out.sort_values(["method", "step", "metric"]).reset_index(drop=True)


def brief_statuses(table: pd.DataFrame) -> pd.DataFrame:
    """The table as a notebook shows it: each status cut to its first word ('unavailable'); the reason and
    the fix stay in the saved table and in the provenance."""
    out = table.copy()
    for col in [c for c in out.columns if c == "status" or str(c).endswith("_status")]:
        out[col] = out[col].astype(str).str.split(":").str[0]
    return out


def quality_time_table(df: pd.DataFrame, methods: dict, timing: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, step, metric): mean quality from the stored rows, and the cumulative seconds per image
    from one timing pass (``Lab.time_methods``: every method timed in one sitting, never the stored seconds of
    whenever each row was computed), with the method's kind and family (how it is drawn)."""
    means = per_step_means(df)
    time = timing[["method", "step", "seconds_per_image"]]
    quality = means[~means.metric.isin(TIME_METRICS)]
    table = quality.merge(time, on=["method", "step"], how="left")
    table["kind"] = table.method.map(lambda m: methods.get(m, {}).get("kind"))
    table["family"] = table.method.map(lambda m: methods.get(m, {}).get("family")
                                       or methods.get(methods.get(m, {}).get("encoder", ""), {}).get("family"))
    return table[["method", "kind", "family", "step", "metric", "mean", "sem", "n_images", "seconds_per_image",
                  "status"]]


def images_per_method(table: pd.DataFrame) -> dict:
    """method -> how many images its rows in a per-step table hold (the most of any step and metric)."""
    return {m: int(n) for m, n in table.groupby("method", sort=False)["n_images"].max().items()}


@themed_plot
def plot_quality_time(table: pd.DataFrame, methods: dict, timing: pd.DataFrame | None = None,
                      metrics: list[str] | None = None):
    """Log-log quality against time per image, one panel per available metric (a metric unavailable here
    gets a line under the figure, not a panel); ``timing``: the pass the seconds come from, named under the
    figure. A method on a seeded subset says in its legend entry how many images its rows hold."""
    import matplotlib.pyplot as plt

    metrics = metrics or [m for m in [MSE, LPIPS, IDENTITY] if m in set(table.metric)]
    missing = unavailable(table, metrics)
    shown = [m for m in metrics if m not in missing] or metrics[:1]
    counts = images_per_method(table)
    cols = min(len(shown), 2)  # the legend beside them: wider would shrink the text at the notebook's width
    rows = -(-len(shown) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols + 2.6, 4.0 * rows), squeeze=False)
    for ax, metric in zip(axes.flat, shown):
        sub = table[table.metric == metric]
        order = [m for m in methods if m in set(sub.method)] + sorted(set(sub.method) - set(methods))
        for method in order:  # the notebook's order of methods (the provenance's), so the legend's too
            sub_rows = sub[sub.method == method].sort_values("step")
            ax.plot(sub_rows.seconds_per_image, sub_rows["mean"],
                    **method_style(method, methods.get(method, {}), methods, counts.get(method)))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(metric_label(CUMULATIVE_SECONDS) + (f" on {timing.machine.iloc[0]}" if timing is not None
                                                          else ""))
        ax.set_ylabel(metric_label(metric))
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(shown):]:
        ax.set_visible(False)
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    # beside the panels, one entry per line: as many methods as there are, the labels stay whole
    fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 0.98), fontsize=9, frameon=False)
    fig.tight_layout()
    note_unavailable(fig, missing)
    if timing is not None:
        note_under(fig, timing_note(timing))
    return fig


def step_table(df: pd.DataFrame, methods: list[str], step: int, metrics=(LPIPS, MSE),
               timing: pd.DataFrame | None = None) -> pd.DataFrame:
    """Table 1's layout: per method, the mean of each metric and, given ``timing`` (one timing pass: the stored
    seconds come from whenever each row was computed), the seconds per image of ``step`` steps in all."""
    means = per_step_means(df)
    rows = []
    for method in methods:
        sub = means[(means.method == method) & (means.step == step)]
        if sub.empty:
            raise ValueError(f"no rows for method {method!r} at step {step}; methods with rows there: "
                             f"{sorted(means[means.step == step].method.unique())}")
        row = {"method": method, "step": step}
        for metric in metrics:
            m = sub[sub.metric == metric]
            row[metric] = float(m["mean"].iloc[0]) if len(m) else np.nan
            row[f"{metric}_status"] = m.status.iloc[0] if len(m) else "not computed"
        if timing is not None:
            t = timing[(timing.method == method) & (timing.step == step)].seconds_per_image
            row[CUMULATIVE_SECONDS] = float(t.iloc[0]) if len(t) else np.nan
        row["n_images"] = int(sub[sub.metric == metrics[-1]]["n_images"].max())
        rows.append(row)
    return pd.DataFrame(rows)


@themed_plot
def plot_step_curves(table: pd.DataFrame, methods: dict, pairs: list[tuple], metric: str = MSE,
                     rows: pd.DataFrame | None = None):
    """Fig. 4: the metric per step, ReStyle against the naive iteration, one panel per pair.

    With the per-image ``rows`` (the store's tidy rows): every image's value (dots) and the mean with
    its 95% bootstrap interval over images; without them, the table's means with standard errors.
    """
    import matplotlib.pyplot as plt

    sub = table[table.metric == metric]
    if unavailable(table, [metric]):  # nothing to draw: the figure is its note
        fig = plt.figure(figsize=(panels_figsize()[0], 0.3))
        note_unavailable(fig, [metric])
        return fig
    pairs = [p for p in pairs if any(m in set(sub.method) for m in p)]  # a domain may lack a pair's checkpoints
    fig, axes = plt.subplots(1, max(len(pairs), 1), figsize=panels_figsize(max(len(pairs), 1)), squeeze=False)
    for ax, pair in zip(axes[0], pairs):
        for j, method in enumerate(pair):
            if method not in set(sub.method):
                continue
            style = method_style(method, methods.get(method, {}), methods)
            if rows is None:
                means = sub[sub.method == method].sort_values("step")
                ax.errorbar(means.step, means["mean"], yerr=means["sem"], capsize=2, **style)
                continue
            _per_image_steps(ax, rows, method, metric, style, offset=(j - (len(pair) - 1) / 2) * 0.14)
        ax.set_xlabel("step")
        ax.set_ylabel(metric_label(metric))
        ax.set_xticks(sorted(sub[sub.method.isin(pair)].step.unique()))
        ax.legend(fontsize=8)
    if rows is not None:
        fig.suptitle("per-image values (dots); mean with 95% bootstrap CI over images", fontsize=8)
    fig.tight_layout()
    return fig


def _per_image_steps(ax, rows: pd.DataFrame, method: str, metric: str, style: dict, offset: float) -> None:
    """One method's per-image values per step, jittered beside the step, and their mean with its CI."""
    import seaborn as sns

    r = rows[(rows.method == method) & (rows.metric == metric) & (rows.status == "ok")]
    if r.empty:
        return
    x = r.step.to_numpy(float) + offset
    jitter = np.random.default_rng(CI_SEED).uniform(-0.04, 0.04, len(r))
    ax.scatter(x + jitter, r.value, s=6, alpha=0.25, color=style["color"], linewidths=0)
    line = {k: v for k, v in style.items() if k in ("linestyle", "marker", "markersize", "label")}
    if line.get("linestyle") == "none":
        line["linestyle"] = ""
    # seaborn draws marker edges white, which hides unfilled markers (the naive iteration's x)
    sns.lineplot(x=x, y=r.value.to_numpy(), errorbar=CI, seed=CI_SEED, err_style="bars", color=style["color"],
                 markeredgecolor=style["color"], err_kws={"capsize": 2, "elinewidth": 1.1}, ax=ax, **line)


@themed_plot
def plot_table(table: pd.DataFrame, columns: list[str], label: str = "method", timing: pd.DataFrame | None = None):
    """One bar panel per column (Table 1 at a glance), the methods by their display names; a column unavailable
    here gets a line under the figure, not a panel. A time column says what it sums (per image, the table's
    steps); ``timing``: the pass it comes from, named under the figure."""
    import matplotlib.pyplot as plt

    missing = unavailable(table, columns)
    shown = [c for c in columns if c not in missing] or columns[:1]
    fig, axes = plt.subplots(1, len(shown), figsize=(3.4 * len(shown), 3.2), squeeze=False)
    names = [display_name(m) for m in table[label]]
    for ax, col in zip(axes[0], shown):
        ax.bar(names, table[col], color=[RED if "fpn" not in str(m) else DARK_RED for m in table[label]])
        title = metric_label(col)
        if col == CUMULATIVE_SECONDS and "step" in table:
            steps = int(table.step.iloc[0])
            title = f"{title}, {steps} step{'s' if steps > 1 else ''} in all"
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", labelsize=9)
    fig.tight_layout()
    note_unavailable(fig, missing)
    if timing is not None:
        note_under(fig, timing_note(timing))
    return fig
