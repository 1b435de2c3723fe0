"""Where the image changes at each step (main paper Figs. 6-7, supplementary Fig. 2)."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

from ..facts.palette import CHANGE_CMAP, CHANGE_SCALES
from .visual import method_label


def step_changes(images: np.ndarray, start: np.ndarray) -> np.ndarray:
    """|y_t - y_{t-1}| averaged over channels, in [-1, 1] units: [N, S, H, W].

    images: uint8 [S, N, H, W, 3] (steps 1..S); start: uint8 [N, H, W, 3] (y_0).
    """
    y = np.concatenate([np.asarray(start)[None], np.asarray(images)]).astype(np.float64) / 127.5
    return np.abs(np.diff(y, axis=0)).mean(axis=-1).transpose(1, 0, 2, 3)


def normalise_per_image(changes: np.ndarray) -> np.ndarray:
    """Each image's maps divided by that image's maximum over all its steps (Fig. 2)."""
    peak = changes.reshape(changes.shape[0], -1).max(axis=1)
    return changes / np.where(peak > 0, peak, 1)[:, None, None, None]


def normalise_per_step(changes: np.ndarray) -> np.ndarray:
    """Each map divided by its own maximum, so every step of every image spans [0, 1] (the explorer's
    per-step view: where a late, small step changes the image): [N, S, H, W]."""
    peak = changes.max(axis=(2, 3), keepdims=True)
    return changes / np.where(peak > 0, peak, 1)


# how change maps are scaled (``palette.CHANGE_SCALES`` says what each one's 1 means): name -> function of [N, S, H, W]
NORMALISATIONS = {"global": normalise_per_image, "per step": normalise_per_step}


def normalise(changes: np.ndarray, how: str = "global") -> np.ndarray:
    """Change maps [N, S, H, W] scaled per image (``global``, Fig. 2) or per map (``per step``)."""
    if how not in NORMALISATIONS:
        raise ValueError(f"normalise must be one of {list(NORMALISATIONS)}. Got: {how!r}")
    return NORMALISATIONS[how](changes)


def mean_heatmaps(changes: np.ndarray, how: str = "global") -> np.ndarray:
    """Test-set average per step, normalised across the steps (``global``, main Figs. 6-7) or each step by its
    own maximum (``per step``): [S, H, W] in [0, 1]."""
    return normalise(changes.mean(axis=0)[None], how)[0]


def change_table(changes: np.ndarray, names) -> pd.DataFrame:
    """Mean absolute change per image and step (the numbers behind the heatmaps)."""
    return pd.DataFrame([{"image": str(names[i]), "step": t + 1, "mean_abs_change": float(changes[i, t].mean())}
                         for i in range(changes.shape[0]) for t in range(changes.shape[1])])


def colour_bar(fig, how: str, ax=None, cax=None) -> None:
    """The change maps' colour bar, beside ``ax`` or in ``cax``, saying what its 1 is (two lines: it runs along
    the bar)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    bar = fig.colorbar(ScalarMappable(Normalize(0, 1), cmap=CHANGE_CMAP), ax=ax, cax=cax, fraction=0.05, pad=0.02)
    bar.set_label("\n".join(textwrap.wrap(f"change / {CHANGE_SCALES[how]}", 30)), fontsize=8)
    bar.ax.tick_params(labelsize=8)


def _bar_beside(fig, how: str, width_in: float = 1.0, top: float = 1.0) -> None:
    """Lay out the panels (tight_layout: a constrained layout took 2.5x as long to save these grids) leaving
    ``width_in`` inches at the right, and put the colour bar there."""
    w, h = fig.get_size_inches()
    right = 1 - width_in / w
    fig.tight_layout(pad=0.2, rect=(0, 0, right, top))
    colour_bar(fig, how, cax=fig.add_axes((right + 0.1 / w, 0.5 - 0.3 * top, 0.15 / w, 0.6 * top)))


def plot_image_heatmaps(inputs, images, normalised, names=None, method: str = "", how: str = "global"):
    """Per image: input, then each step's output over its change map (red = large), normalised as ``how`` says
    (``normalise``); titled with the method, with the colour bar of the maps."""
    import matplotlib.pyplot as plt

    n, s = normalised.shape[:2]
    fig, axes = plt.subplots(2 * n, s + 1, figsize=(1.3 * (s + 1) + 1.0, 2.6 * n + 0.4), squeeze=False)
    for i in range(n):
        axes[2 * i][0].imshow(inputs[i])
        axes[2 * i][0].set_title("input" if names is None else str(names[i])[:14], fontsize=8)
        axes[2 * i + 1][0].set_visible(False)
        for t in range(s):
            axes[2 * i][t + 1].imshow(images[t, i])
            axes[2 * i + 1][t + 1].imshow(normalised[i, t], cmap=CHANGE_CMAP, vmin=0, vmax=1)
            if i == 0:
                axes[0][t + 1].set_title(f"step {t + 1}", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    top = 1.0
    if method:
        fig.suptitle(f"{method_label(method)}: output of each step, and its change map ({how})", fontsize=10)
        top = 1 - 0.4 / fig.get_size_inches()[1]
    _bar_beside(fig, how, top=top)
    return fig


def plot_mean_heatmaps(mean: np.ndarray, title: str = "", how: str = "global"):
    import matplotlib.pyplot as plt

    s = mean.shape[0]
    fig, axes = plt.subplots(1, s, figsize=(1.6 * s + 1.0, 2.3), squeeze=False)
    for t in range(s):
        axes[0][t].imshow(mean[t], cmap=CHANGE_CMAP, vmin=0, vmax=1)
        axes[0][t].set_title(f"step {t + 1}", fontsize=9)
        axes[0][t].set_xticks([])
        axes[0][t].set_yticks([])
    top = 1.0
    if title:
        fig.suptitle(title, fontsize=10)
        top = 1 - 0.35 / fig.get_size_inches()[1]
    _bar_beside(fig, how, top=top)
    return fig


def plot_strips(inputs, runs: dict, n_show: int):
    """Per image and per run: input | starting image | output of each step."""
    import matplotlib.pyplot as plt

    labels = list(runs)
    n = min(n_show, len(inputs))
    steps = max(r["images"].shape[0] for r in runs.values())
    fig, axes = plt.subplots(n * len(labels), steps + 2, figsize=(1.2 * (steps + 2), 1.3 * n * len(labels)),
                             squeeze=False)
    for i in range(n):
        for k, label in enumerate(labels):
            row = axes[i * len(labels) + k]
            run = runs[label]
            row[0].imshow(inputs[i])
            if "start_image" in run:
                row[1].imshow(run["start_image"][i])
            for t in range(run["images"].shape[0]):
                row[t + 2].imshow(run["images"][t, i])
            row[0].set_ylabel(label, fontsize=8)
            if i == 0 and k == 0:
                for j, title in enumerate(["input", "start"] + [f"step {t + 1}" for t in range(steps)]):
                    row[j].set_title(title, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout(pad=0.2)
    return fig
