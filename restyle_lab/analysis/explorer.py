"""An ipywidgets explorer: pick an image and any method stored for it, slide through the steps, overlay the
step's change map (normalised over the image's steps or per step, at a chosen strength, with its colour
bar), see the per-group latent change of that image."""

from __future__ import annotations

import os

import numpy as np

from .heatmaps import normalise_per_image, normalise_per_step, step_changes
from .latents import latent_change
from ..errors import UsageError
from ..palette import GROUP_COLOURS

# set in a kernel's environment by batch runs (restyle-lab reproduce): the widget is not built
BATCH_ENV = "RESTYLE_LAB_BATCH"
# what a method must have stored to be explored: per-step images, the image and latent its step 1 starts from
NEEDS = ("images", "start_image", "start_latent")
# how the change maps are normalised: name -> (function of [N, S, H, W] maps, what the colour bar's 1 means)
NORMALISATIONS = {
    "global": (normalise_per_image, "its maximum over all steps"),
    "per step": (normalise_per_step, "its maximum in this step"),
}
STRENGTH = 0.55  # the overlay's default opacity
CMAP = "jet"  # red = large change, as in the paper's Figs. 6-7


def image_view(stored: dict, inputs: np.ndarray, groups: dict, index: int, step: int, normalise: str = "global",
               strength: float = STRENGTH, method: str = ""):
    """The explorer's figure for one image at one stored step (also usable without widgets).

    stored: a method's latents (``Lab.latents``: names, steps [S], latents [S, N, L, D], images uint8
    [S, N, H, W, 3], start_image, start_latent); inputs: uint8 [N, H, W, 3]; step: one of stored["steps"];
    normalise: a key of NORMALISATIONS; strength: the change map's opacity in [0, 1] (0: no map).
    """
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    steps = [int(s) for s in stored["steps"]]
    if step not in steps:
        raise ValueError(f"step {step} is not stored; stored steps: {steps}")
    if normalise not in NORMALISATIONS:
        raise ValueError(f"normalise must be one of {list(NORMALISATIONS)}. Got: {normalise!r}")
    at = steps.index(step)
    scale, meaning = NORMALISATIONS[normalise]
    changes = scale(step_changes(stored["images"][:, index:index + 1], stored["start_image"][index:index + 1]))[0]
    _, per_group = latent_change(stored["latents"][:, index:index + 1], stored["start_latent"][index:index + 1],
                                 groups)
    fig, axes = plt.subplots(1, 3, figsize=(12.0, 3.7), layout="constrained",
                             gridspec_kw={"width_ratios": [1, 1.2, 1.7]})
    axes[0].imshow(inputs[index])
    axes[0].set_title(f"input: {stored['names'][index]}", fontsize=9)
    axes[1].imshow(stored["images"][at, index])
    axes[1].imshow(changes[at], cmap=CMAP, alpha=float(strength), vmin=0, vmax=1)
    axes[1].set_title(f"{method + ', ' if method else ''}step {step} and its change map", fontsize=9)
    for ax in axes[:2]:
        ax.set_xticks([])
        ax.set_yticks([])
    bar = fig.colorbar(ScalarMappable(Normalize(0, 1), cmap=CMAP), ax=axes[1], fraction=0.05, pad=0.02)
    bar.set_label(f"change / {meaning}", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    for group, rows in per_group.groupby("group", sort=False):
        axes[2].plot([steps[s - 1] for s in rows.step], rows.value, marker="o", label=group,
                     color=GROUP_COLOURS.get(group))
    axes[2].axvline(step, color="k", lw=0.8, ls=":")
    axes[2].set_yscale("log")
    axes[2].set_xticks(steps)
    axes[2].set_xlabel("step")
    axes[2].set_ylabel("change of the group's inputs\n(Eq. 2, this image)", fontsize=9)
    axes[2].set_title("latent change per style group", fontsize=9)
    # outside the axes: the legend never moves as the step line does
    axes[2].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="group",
                   title_fontsize=8)
    return fig


def build(load, methods: list[str], inputs: np.ndarray, groups: dict, method: str | None = None):
    """The widget: dropdowns of images and ``methods``, a step slider, the change map's normalisation and
    strength, and the figure.

    load: method -> its stored latents (``Lab.latents``: read from the store, nothing is run), each loaded
    once; methods: those stored for these images (``Lab.stored_methods``). In a batch run (``restyle-lab
    reproduce`` sets BATCH_ENV) no widget is built: nobody can move it, and widget messages in a kernel
    nobody watches can leave papermill waiting for good.
    """
    if os.environ.get(BATCH_ENV):
        print("batch run: the interactive explorer is not built (open this notebook in JupyterLab); "
              "the static view above is saved as a figure")
        return None
    if not methods:
        raise UsageError("no method stored for these images has per-step images and the latent its steps start "
                         "from; set the explorer's method to a ReStyle method and run it again")
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    loaded = {}

    def stored(m):
        if m not in loaded:
            loaded[m] = load(m)
        return loaded[m]

    first = method if method in methods else methods[0]
    names = [str(n) for n in stored(first)["names"]]
    wide = {"description_width": "initial"}
    image = widgets.Dropdown(options=list(zip(names, range(len(names)))), value=0, description="image")
    chosen = widgets.Dropdown(options=methods, value=first, description="method")
    step = widgets.SelectionSlider(options=_step_options(stored(first)), description="step")
    # what the two mean is on the colour bar
    normalise = widgets.Dropdown(options=list(NORMALISATIONS), value="global", description="change map", style=wide)
    strength = widgets.FloatSlider(value=STRENGTH, min=0.0, max=1.0, step=0.05, description="overlay strength",
                                   style=wide, readout_format=".2f")
    out = widgets.Output()

    quiet = []  # set while the step slider is refilled: it redraws once, after

    def redraw(_=None):
        if quiet:
            return
        with out:
            out.clear_output(wait=True)
            fig = image_view(stored(chosen.value), inputs, groups, image.value, step.value, normalise.value,
                             strength.value, chosen.value)
            display(fig)
            plt.close(fig)

    def new_method(_=None):
        # a method with other stored steps (optimisation snapshots): keep the slider's position, clipped
        position = step.index
        options = _step_options(stored(chosen.value))
        quiet.append(True)
        try:
            step.options = options
            step.index = min(position, len(options) - 1)
        finally:
            quiet.clear()
        redraw()

    chosen.observe(new_method, names="value")
    for w in (image, step, normalise, strength):
        w.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([image, chosen]), widgets.HBox([step, normalise, strength]), out])


def _step_options(stored: dict) -> list[tuple[str, int]]:
    return [(str(int(s)), int(s)) for s in stored["steps"]]
