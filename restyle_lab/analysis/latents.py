"""Latent change per style group across ReStyle steps (supplementary Eq. 1-2, Fig. 3)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..facts.palette import GROUP_COLOURS
from .visual import panels_figsize, themed_plot


def latent_change(latents: np.ndarray, start: np.ndarray, groups: dict[str, list[int]]) -> tuple:
    """Eq. 1-2 of the supplementary text.

    latents: [S, N, L, D], the w+ after steps 1..S; start: [N, L, D], the code step 1 starts
    from (latent_avg). d_{l,t} = mean_i (w_{l,t} - w_{l,t-1})^2 (a D-vector);
    v_{l,t} = ||d_{l,t}||_2. Returns (per-layer frame: step, layer, group, v;
    per-group frame: step, group, value = mean of v over the group's layers).
    """
    latents = np.asarray(latents, dtype=np.float64)
    start = np.asarray(start, dtype=np.float64)
    if latents.ndim != 4 or start.shape != latents.shape[1:]:
        raise ValueError(f"expected latents [S, N, L, D] and start [N, L, D]. Got: {latents.shape}, {start.shape}")
    w = np.concatenate([start[None], latents])
    d = ((w[1:] - w[:-1]) ** 2).mean(axis=1)  # [S, L, D]
    v = np.linalg.norm(d, axis=-1)  # [S, L]
    layer_group = {l: g for g, ls in groups.items() for l in ls}
    per_layer = pd.DataFrame([{"step": t + 1, "layer": l, "group": layer_group.get(l), "v": float(v[t, l])}
                              for t in range(v.shape[0]) for l in range(v.shape[1])])
    per_group = pd.DataFrame([{"step": t + 1, "group": g, "value": float(v[t, ls].mean()), "n_layers": len(ls)}
                              for t in range(v.shape[0]) for g, ls in groups.items() if ls])
    return per_layer, per_group


@themed_plot
def plot_latent_change(per_group: pd.DataFrame, title: str = ""):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=panels_figsize())
    for group, rows in per_group.groupby("group", sort=False):
        ax.plot(rows.step, rows.value, marker="o", label=group, color=GROUP_COLOURS.get(group))
    ax.set_xlabel("step $t$")
    ax.set_ylabel(r"$v_{l,t}$, mean over the group's inputs $l$ (Eq. 2)")
    ax.set_xticks(sorted(per_group.step.unique()))
    ax.set_yscale("log")
    ax.legend(title="style group")
    ax.grid(True, alpha=0.3)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
