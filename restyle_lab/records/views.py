"""Human-readable views of result tables. Tables stay numeric; formatting happens only here."""

from __future__ import annotations

import pandas as pd


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """Mean of every metric per (method, step) over images with status 'ok'. A cell without one 'ok' value
    shows its status instead ('unavailable', 'skipped: not finite', ...): nothing is dropped."""
    ok = df[df["status"] == "ok"]
    table = ok.pivot_table(index=["method", "step"], columns="metric", values="value", aggfunc="mean")
    cells = df.groupby(["method", "step", "metric"])["status"].agg(lambda s: s.mode().iloc[0])
    index = pd.MultiIndex.from_tuples(sorted({(m, s) for m, s, _ in cells.index}), names=["method", "step"])
    columns = sorted(set(df["metric"]))
    table = table.reindex(index=index, columns=columns).astype(object)
    for (method, step, metric), status in cells.items():
        if pd.isna(table.loc[(method, step), metric]):
            table.loc[(method, step), metric] = status.split(":")[0] if status.startswith("unavailable") else status
    table.columns.name = "metric"
    return table.sort_index()


def skipped_note(df: pd.DataFrame) -> str:
    """One line per (method, metric, reason) of values left out of the means (not 'ok', not unavailable)."""
    bad = df[(df["status"] != "ok") & ~df["status"].str.startswith("unavailable")]
    if bad.empty:
        return ""
    counts = bad.groupby(["method", "metric", "status"])["image_index"].nunique()
    totals = df.groupby(["method", "metric"])["image_index"].nunique()
    return "\n".join(f"left out of the means: {m} {metric}: {n} of {totals[(m, metric)]} images ({status})"
                     for (m, metric, status), n in counts.items())
