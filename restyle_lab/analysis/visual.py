"""The visual language of every plot: pSp red, e4e blue, optimisation green (``restyle_lab.palette``);
each method kind draws itself (``MethodSpec.plot_style``: stars for single passes, solid lines for
ReStyle, dashed lines for hybrids and optimisation); one seaborn theme.

Statistical plots draw inside ``themed()`` (or are decorated with ``@themed_plot``): seaborn's
whitegrid style and paper context with the paper's colours as the colour cycle. ``themed()`` sets and
restores the theme's own rc keys and nothing else, so that importing or plotting never changes a user's
global settings. It is not ``matplotlib.rc_context``: that restores every key, and the first figure of a
Jupyter kernel (drawn inside it) is where the inline backend switches interactive mode on; restoring
``interactive`` switched it off again, and no later figure of that kernel was displayed.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager

from ..catalog import method_label
from ..methods import spec_from_record
from ..metrics import label as metric_label
from ..palette import GREY, PALETTE, family_colour

CI = ("ci", 95)  # seaborn's errorbar for every mean: a 95% bootstrap interval over images
CI_SEED = 0  # its bootstrap is seeded so figures regenerate identically
SAMPLES_STYLE = {"color": GREY, "linestyle": "none", "marker": "s", "markersize": 5}  # GAN samples, not a method
# the smallest panel of a line or point plot, in inches (540 x 400 px as JupyterLab shows it at 100 dpi): below
# it axis labels crowd and the markers of five steps overlap
MIN_PANEL = (5.4, 4.0)


def theme_rc() -> dict:
    """matplotlib rc settings of the package theme (seaborn whitegrid + paper context, paper colours)."""
    import seaborn as sns
    from cycler import cycler

    rc = {**sns.axes_style("whitegrid"), **sns.plotting_context("paper", font_scale=1.15)}
    rc.update({"axes.prop_cycle": cycler(color=PALETTE), "grid.alpha": 0.5, "legend.frameon": False})
    return rc


@contextmanager
def themed():
    """Draw with the package theme; the theme's keys get their values back afterwards, and every other
    setting (the backend and interactive mode among them) is left as drawing left it."""
    import matplotlib as mpl

    rc = theme_rc()
    saved = {key: mpl.rcParams[key] for key in rc}
    mpl.rcParams.update(rc)
    try:
        yield
    finally:
        mpl.rcParams.update(saved)


def themed_plot(fn):
    """Decorator: the plot function draws inside ``themed()``."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with themed():
            return fn(*args, **kwargs)
    return wrapper


def panels_figsize(n: int = 1, width: float = MIN_PANEL[0], height: float = MIN_PANEL[1]) -> tuple[float, float]:
    """figsize of ``n`` line-plot panels side by side, each at least ``MIN_PANEL``."""
    return max(width, MIN_PANEL[0]) * n, max(height, MIN_PANEL[1])


def unavailable(table, metrics, value: str = "mean") -> list[str]:
    """The metrics of ``metrics`` with no value at all in ``table`` (a tidy table with a ``metric`` column,
    or a wide one with a column per metric): unavailable here, e.g. LPIPS without its weights offline."""
    if "metric" in table:
        return [m for m in metrics if table.loc[table.metric == m, value].isna().all()]
    return [m for m in metrics if m in table and table[m].isna().all()]


def note_unavailable(fig, metrics: list[str]) -> None:
    """One line under the figure for the metrics it leaves out because they are unavailable here (the
    reason and the fix are in the table's status column and in the provenance)."""
    if metrics:
        names = ", ".join(metric_label(m) for m in metrics)
        fig.text(0.01, 0.0, f"not shown: {names}, unavailable on this machine (why: the table's status column and "
                 "the provenance)", ha="left", va="top", fontsize=8, color=GREY)


def method_style(name: str, record: dict, records: dict) -> dict:
    """matplotlib keyword arguments for one method, drawn as its kind draws itself from its provenance
    entry; a method run on a subset of the test images says so in its label."""
    if not record.get("kind"):
        return {**SAMPLES_STYLE, "label": name}
    style = spec_from_record({**record, "name": name}).plot_style(record, records)
    if record.get("images"):
        style["label"] = f"{name} ({record['images']} images, seed {record.get('subset_seed', 0)})"
    return style


__all__ = ["CI", "CI_SEED", "MIN_PANEL", "family_colour", "method_label", "method_style", "metric_label", "note_unavailable",
           "panels_figsize", "themed", "themed_plot", "unavailable"]
