"""An ipywidgets explorer: pick an image, slide through the steps, toggle its change map, see the
per-group latent change of that image."""

from __future__ import annotations

import os

import numpy as np

from .heatmaps import normalise_per_image, step_changes
from .latents import latent_change
from ..palette import GROUP_COLOURS

# set in a kernel's environment by batch runs (restyle-lab reproduce): the widget is not built
BATCH_ENV = "RESTYLE_LAB_BATCH"


def image_view(stored: dict, inputs: np.ndarray, groups: dict, index: int, step: int, heatmap: bool):
    """The explorer's figure for one image and step (also usable without widgets)."""
    import matplotlib.pyplot as plt

    changes = normalise_per_image(step_changes(stored["images"][:, index:index + 1],
                                               stored["start_image"][index:index + 1]))[0]
    _, per_group = latent_change(stored["latents"][:, index:index + 1], stored["start_latent"][index:index + 1],
                                 groups)
    fig, axes = plt.subplots(1, 3, figsize=(9.5, 3.0), gridspec_kw={"width_ratios": [1, 1, 1.4]})
    axes[0].imshow(inputs[index])
    axes[0].set_title(f"input: {stored['names'][index]}", fontsize=8)
    axes[1].imshow(stored["images"][step - 1, index])
    if heatmap:
        axes[1].imshow(changes[step - 1], cmap="jet", alpha=0.55, vmin=0, vmax=1)
    axes[1].set_title(f"step {step}" + (" + change map" if heatmap else ""), fontsize=8)
    for ax in axes[:2]:
        ax.set_xticks([])
        ax.set_yticks([])
    for group, rows in per_group.groupby("group", sort=False):
        axes[2].plot(rows.step, rows.value, marker="o", label=group, color=GROUP_COLOURS.get(group))
    axes[2].axvline(step, color="k", lw=0.8, ls=":")
    axes[2].set_yscale("log")
    axes[2].set_xlabel("step")
    axes[2].set_title("latent change per group (this image)", fontsize=8)
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    return fig


def build(stored: dict, inputs: np.ndarray, groups: dict):
    """The widget: a dropdown of images, a step slider, a heatmap toggle and the figure.

    In a batch run (``restyle-lab reproduce`` sets BATCH_ENV) no widget is built: nobody can move
    it, and widget messages in a kernel nobody watches can leave papermill waiting for good.
    """
    if os.environ.get(BATCH_ENV):
        print("batch run: the interactive explorer is not built (open this notebook in JupyterLab); "
              "the static view above is saved as a figure")
        return None
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    names = [str(n) for n in stored["names"]]
    image = widgets.Dropdown(options=list(zip(names, range(len(names)))), value=0, description="image")
    step = widgets.IntSlider(value=1, min=1, max=stored["images"].shape[0], description="step")
    heat = widgets.Checkbox(value=False, description="heatmap")
    out = widgets.Output()

    def redraw(_=None):
        with out:
            out.clear_output(wait=True)
            fig = image_view(stored, inputs, groups, image.value, step.value, heat.value)
            display(fig)
            plt.close(fig)

    for w in (image, step, heat):
        w.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([image, step, heat]), out])
