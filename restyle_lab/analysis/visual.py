"""The visual language of every plot: pSp red, e4e blue, optimisation green; stars for single
passes, solid lines for ReStyle, dashed lines for hybrids and optimisation; one seaborn theme.

Statistical plots draw inside ``themed()`` (or are decorated with ``@themed_plot``): seaborn's
whitegrid style and paper context with the paper's colours as the colour cycle, applied through
``matplotlib.rc_context`` so that importing or plotting never changes a user's global settings.
``apply_theme()`` sets the same theme globally, for a notebook or script that wants it everywhere.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager

RED, BLUE, GREEN, ORANGE, GREY = "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#7f7f7f"
PALETTE = [RED, BLUE, GREEN, ORANGE, GREY]
GROUP_COLOURS = {"coarse": RED, "medium": GREEN, "fine": BLUE}
CI = ("ci", 95)  # seaborn's errorbar for every mean: a 95% bootstrap interval over images
CI_SEED = 0  # its bootstrap is seeded so figures regenerate identically


def theme_rc() -> dict:
    """matplotlib rc settings of the package theme (seaborn whitegrid + paper context, paper colours)."""
    import seaborn as sns
    from cycler import cycler

    rc = {**sns.axes_style("whitegrid"), **sns.plotting_context("paper", font_scale=1.15)}
    rc.update({"axes.prop_cycle": cycler(color=PALETTE), "grid.alpha": 0.5, "legend.frameon": False})
    return rc


@contextmanager
def themed():
    """Draw with the package theme; the global settings are restored afterwards."""
    import matplotlib as mpl

    with mpl.rc_context(theme_rc()):
        yield


def themed_plot(fn):
    """Decorator: the plot function draws inside ``themed()``."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with themed():
            return fn(*args, **kwargs)
    return wrapper


def apply_theme() -> None:
    """Set the package theme globally (matplotlib rcParams)."""
    import matplotlib as mpl

    mpl.rcParams.update(theme_rc())


def family_colour(family: str | None) -> str:
    if not family:
        return GREY
    if "e4e" in family:
        return BLUE
    if "psp" in family:
        return RED
    return GREY


def method_style(name: str, spec: dict, specs: dict) -> dict:
    """matplotlib keyword arguments for one method, from its provenance entry; a method run on a subset
    of the test images says so in its label."""
    style = _kind_style(name, spec, specs)
    if spec.get("images"):
        style["label"] = f"{name} ({spec['images']} images, seed {spec.get('subset_seed', 0)})"
    return style


def _kind_style(name: str, spec: dict, specs: dict) -> dict:
    kind = spec.get("kind")
    if kind == "optim":
        return {"color": GREEN, "linestyle": "--", "marker": "o", "markersize": 3, "label": name}
    if kind == "hybrid":
        enc = specs.get(spec.get("encoder"), {})
        return {"color": family_colour(enc.get("family")), "linestyle": "--", "marker": "o", "markersize": 3,
                "label": name}
    colour = family_colour(spec.get("family"))
    if kind == "single":
        return {"color": colour, "linestyle": "none", "marker": "*", "markersize": 14, "label": name}
    if kind == "naive":
        return {"color": colour, "linestyle": ":", "marker": "x", "markersize": 5, "label": name}
    style = {"color": colour, "linestyle": "-", "marker": "o", "markersize": 4, "label": name}
    if "fpn" in name:
        style.update(linestyle="-.", marker="s")
    return style


METHOD_LABELS = {"restyle_psp": "ReStyle-pSp", "restyle_e4e": "ReStyle-e4e", "restyle_psp_fpn": "ReStyle-pSp (FPN)",
                 "psp": "pSp", "e4e": "e4e", "psp_naive": "pSp, naive", "e4e_naive": "e4e, naive",
                 "restyle_psp_toon": "ReStyle-pSp (toon)", "toon_bootstrap": "bootstrapped (toon)",
                 "optim_w": "optimisation (W)", "optim_w+": "optimisation (W+)", "w_samples": "GAN samples (W)"}


def method_colour(name: str) -> str:
    """The paper's colour of a method from its name: optimisation green, e4e blue, pSp red, else grey."""
    if name.startswith("optim"):
        return GREEN
    return family_colour(name) if ("e4e" in name or "psp" in name) else GREY


def method_label(name: str) -> str:
    return METHOD_LABELS.get(name, name)


METRIC_LABELS = {
    "mse_pm1": "MSE ([-1, 1])",
    "lpips_alex_v0.1": "LPIPS (alex, v0.1)",
    "psnr_pm1": "PSNR (dB)",
    "ssim_pm1": "SSIM",
    "id_facenet_vggface2": "ID similarity (facenet, not CurricularFace)",
    "cumulative_seconds_per_image": "time per image (s)",
}
