"""An ipywidgets explorer: pick an image and any method stored for it, slide through the steps, overlay the
step's change map (normalised over the image's steps or per step, at a chosen strength, with its colour
bar), see the per-group latent change of that image."""

from __future__ import annotations

import html
import os

import numpy as np

from ..facts.errors import UsageError
from ..facts.palette import CHANGE_CMAP, CHANGE_SCALES, GROUP_COLOURS
from .heatmaps import colour_bar, normalise as scale_changes, step_changes
from .latents import latent_change
from .visual import method_label

# set in a kernel's environment by batch runs (restyle-lab reproduce): the widget is not built
BATCH_ENV = "RESTYLE_LAB_BATCH"
# what a method must have stored to be explored: per-step images, the image and latent its step 1 starts from
NEEDS = ("images", "start_image", "start_latent")
STRENGTH = 0.55  # the overlay's default opacity


def image_view(stored: dict, inputs: np.ndarray, groups: dict, index: int, step: int, normalise: str = "global",
               strength: float = STRENGTH, method: str = ""):
    """The explorer's figure for one image at one stored step (also usable without widgets).

    stored: a method's latents (``Lab.latents``: names, steps [S], latents [S, N, L, D], images uint8
    [S, N, H, W, 3], start_image, start_latent); inputs: uint8 [N, H, W, 3], aligned with stored["names"];
    step: one of stored["steps"]; normalise: a key of ``palette.CHANGE_SCALES``; strength: the change map's
    opacity in [0, 1] (0: no map).
    """
    import matplotlib.pyplot as plt

    steps = [int(s) for s in stored["steps"]]
    if step not in steps:
        raise ValueError(f"step {step} is not stored; stored steps: {steps}")
    if normalise not in CHANGE_SCALES:
        raise ValueError(f"normalise must be one of {list(CHANGE_SCALES)}. Got: {normalise!r}")
    at = steps.index(step)
    changes = scale_changes(step_changes(stored["images"][:, index:index + 1],
                                         stored["start_image"][index:index + 1]), normalise)[0]
    _, per_group = latent_change(stored["latents"][:, index:index + 1], stored["start_latent"][index:index + 1],
                                 groups)
    fig, axes = plt.subplots(1, 3, figsize=(10.0, 3.4), layout="constrained",
                             gridspec_kw={"width_ratios": [1, 1.2, 1.7]})
    axes[0].imshow(inputs[index])
    axes[0].set_title(f"input: {stored['names'][index]}", fontsize=9)
    axes[1].imshow(stored["images"][at, index])
    axes[1].imshow(changes[at], cmap=CHANGE_CMAP, alpha=float(strength), vmin=0, vmax=1)
    axes[1].set_title(f"{method_label(method) + ', ' if method else ''}step {step}\nand its change map", fontsize=9)
    for ax in axes[:2]:
        ax.set_xticks([])
        ax.set_yticks([])
    colour_bar(fig, normalise, ax=axes[1])
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


def absent_note(name: str, available: dict, absent: dict, n_images: int) -> str:
    """HTML, one line per reason: the methods not offered for image ``name`` and why (``Lab.explorable``)."""
    reasons = {m: f"stored for {len(held)} of the {n_images} images, not this one"
               for m, held in available.items() if name not in held}
    reasons.update(absent)
    by_reason = {}
    for m, why in reasons.items():
        by_reason.setdefault(why, []).append(method_label(m))
    if not by_reason:
        return ""
    lines = [f"{'; '.join(map(html.escape, ms))}: {html.escape(why)}" for why, ms in by_reason.items()]
    return "<b>not offered for this image</b><br>" + "<br>".join(lines)


def build(load, available: dict, names, inputs: np.ndarray, groups: dict, method: str | None = None,
          absent: dict | None = None):
    """The widget: dropdowns of the images and of the methods stored for the chosen one, a step slider, the
    change map's normalisation and strength, the figure, and a line saying which methods are not offered and
    why.

    load: method -> its stored latents (``Lab.latents``: read from the store, nothing is run), each loaded
    once; available: method -> the names of the images it has stored (``Lab.explorable``); names, inputs: the
    notebook's images and their uint8 [N, H, W, 3] inputs; absent: method -> why it is not offered at all. In a
    batch run (``restyle-lab reproduce`` sets BATCH_ENV) no widget is built: nobody can move it, and widget
    messages in a kernel nobody watches can leave papermill waiting for good.
    """
    if os.environ.get(BATCH_ENV):
        print("batch run: the interactive explorer is not built (open this notebook in JupyterLab); "
              "the static view above is saved as a figure")
        return None
    names = [str(n) for n in names]
    shown = [n for n in names if any(n in held for held in available.values())]
    if not shown:
        raise UsageError("no method stored for these images has per-step images and the latent its steps start "
                         "from; set the explorer's method to a ReStyle method and run it again")
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    loaded, aligned = {}, {}

    def stored(m):
        if m not in loaded:
            loaded[m] = load(m)
            aligned[m] = inputs[[names.index(str(n)) for n in loaded[m]["names"]]]
        return loaded[m]

    def offered(name):
        return [(method_label(m), m) for m in available if name in available[m]]

    first_image = next((n for n in shown if method in available and n in available[method]), shown[0])
    options = offered(first_image)
    first = method if method in dict((v, k) for k, v in options) else options[0][1]
    wide = {"description_width": "initial"}
    image = widgets.Dropdown(options=shown, value=first_image, description="image")
    chosen = widgets.Dropdown(options=options, value=first, description="method")
    step = widgets.SelectionSlider(options=_step_options(stored(first)), description="step")
    # what the two mean is on the colour bar
    scale = widgets.Dropdown(options=list(CHANGE_SCALES), value="global", description="change map", style=wide)
    strength = widgets.FloatSlider(value=STRENGTH, min=0.0, max=1.0, step=0.05, description="overlay strength",
                                   style=wide, readout_format=".2f")
    note = widgets.HTML()
    out = widgets.Output()

    busy = [0]  # while controls are refilled: the figure is redrawn once, after

    def quietly(fill):
        busy[0] += 1
        try:
            fill()
        finally:
            busy[0] -= 1

    def redraw(_=None):
        if busy[0]:
            return
        note.value = absent_note(image.value, available, absent or {}, len(names))
        data = stored(chosen.value)
        index = [str(n) for n in data["names"]].index(image.value)
        with out:
            out.clear_output(wait=True)
            fig = image_view(data, aligned[chosen.value], groups, index, step.value, scale.value, strength.value,
                             chosen.value)
            display(fig)
            plt.close(fig)

    def fill_steps():
        # a method with other stored steps (optimisation snapshots): keep the slider's position, clipped
        position = step.index
        steps = _step_options(stored(chosen.value))
        step.options = steps
        step.index = min(position, len(steps) - 1)

    def fill_methods():
        # the methods stored for this image; the chosen one stays where it can
        keep = chosen.value
        chosen.options = offered(image.value)
        chosen.value = keep if image.value in available.get(keep, ()) else chosen.options[0][1]
        fill_steps()

    def new_method(_=None):
        if not busy[0]:
            quietly(fill_steps)
            redraw()

    def new_image(_=None):
        if not busy[0]:
            quietly(fill_methods)
            redraw()

    image.observe(new_image, names="value")
    chosen.observe(new_method, names="value")
    for w in (step, scale, strength):
        w.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([image, chosen]), widgets.HBox([step, scale, strength]), note, out])


def _step_options(stored: dict) -> list[tuple[str, int]]:
    return [(str(int(s)), int(s)) for s in stored["steps"]]
