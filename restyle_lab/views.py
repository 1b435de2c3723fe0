"""Human-readable views of result tables. Tables stay numeric; formatting happens only here."""

from __future__ import annotations

import pandas as pd


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """Mean of every metric per (method, step) over images with status 'ok'; unavailable metrics are
    shown as the word 'unavailable' rather than dropped."""
    ok = df[df["status"] == "ok"]
    table = ok.pivot_table(index=["method", "step"], columns="metric", values="value", aggfunc="mean")
    unavailable = sorted(set(df.loc[df["status"].str.startswith("unavailable"), "metric"]))
    table = table.astype(object)
    for metric in unavailable:
        table[metric] = "unavailable"
    return table.sort_index()
