"""The visual language of every plot: pSp red, e4e blue, optimisation green (``restyle_lab.facts.palette``);
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
import textwrap
from contextlib import contextmanager

from ..facts.catalog import NAMED_METHODS, generator_label, method_label
from ..facts.methods import spec_from_record
from ..facts.metric_names import LABELS as METRIC_LABELS, label as metric_label
from ..facts.palette import GREY, PALETTE, family_colour

CI = ("ci", 95)  # seaborn's errorbar for every mean: a 95% bootstrap interval over images
CI_SEED = 0  # its bootstrap is seeded so figures regenerate identically
SAMPLES_STYLE = {"color": GREY, "linestyle": "none", "marker": "s", "markersize": 5}  # GAN samples, not a method
# the smallest panel of a line or point plot, in inches (540 x 400 px as JupyterLab shows it at 100 dpi): below
# it axis labels crowd and the markers of five steps overlap
MIN_PANEL = (5.4, 4.0)
# legible at the notebook's width: JupyterLab shows a figure at 100 dpi and shrinks one wider than its output
# area (about 1,000 px beside the file browser) to fit; the smallest text must stay this many pixels high there
NOTEBOOK_WIDTH_PX, FIGURE_DPI, MIN_TEXT_PX = 1000, 100, 9.0


def display_name(key: str) -> str:
    """How a figure names a method, metric or score (``catalog.method_label``, ``metric_names.label``); tables
    keep the keys."""
    if key in METRIC_LABELS:
        return metric_label(key)
    return method_label(key)


def raw_keys() -> set[str]:
    """The keys a figure never shows: method, metric and score names whose display name differs from them."""
    return {k for k in (*NAMED_METHODS, *METRIC_LABELS) if display_name(k) != k}


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
        note_under(fig, f"not shown: {names}, unavailable on this machine (why: the table's status column and the "
                   "provenance)")


def inversion_label(method: str, methods: dict | None = None) -> str:
    """A method's display name, with the projector's loss where the run recorded it (mini: MSE only)."""
    loss = (methods or {}).get(method, {}).get("loss")  # what an optimisation minimised
    label = display_name(method)
    if loss:
        label = f"{label[:-1]}, {loss.upper()} loss)" if label.endswith(")") else f"{label} ({loss.upper()} loss)"
    return label


def method_style(name: str, record: dict, records: dict, n_images: int | None = None) -> dict:
    """matplotlib keyword arguments for one method, drawn as its kind draws itself from its provenance
    entry, labelled with its display name (and loss); a method run on a seeded subset of the test images says
    how many images its rows hold (``n_images``, counted from the data plotted: never the count asked for)."""
    label = inversion_label(name, records)
    if not record.get("kind"):
        return {**SAMPLES_STYLE, "label": label}
    style = spec_from_record({**record, "name": name}).plot_style(record, records)
    style["label"] = label
    if record.get("images") and n_images is not None:
        style["label"] = f"{label}, {n_images} images (seed {record.get('subset_seed', 0)})"
    return style


def timing_note(timing) -> str:
    """One line: the machine and sitting a figure's seconds were timed in (``Lab.time_methods``' table), and
    which were multiplied out from a few timed steps."""
    first = timing.iloc[0].to_dict()
    line = (f"time: one timing pass on {first['machine']} ({first['device']}, {first['threads']} threads, "
            f"{first['dtype']}, load average {first['load_average']:.2f}), {str(first['date'])[:16]}; "
            + (f"median of {first['rounds']} rounds, warm-up excluded" if first["warmup"] else
               "one round, no warm-up (a smoke run: its times are not results)")
            + ", per image at each method's batch")
    multiplied = timing[~timing.timed.astype(bool)]
    if len(multiplied):
        line += (f"; optimisation: steps {multiplied.steps_timed.iloc[0]} timed, each snapshot's time multiplied out "
                 "to its step count")
    return line


NOTE_SIZE = 8  # points


def note_under(fig, text: str) -> None:
    """A note under the figure (below any note already there), in grey, wrapped to the figure's width (a longer
    line would widen the saved figure, and JupyterLab would shrink all of it)."""
    # an average character of the note's font is about half its size wide
    text = "\n".join(textwrap.wrap(text, int(fig.get_size_inches()[0] * 72 / (0.55 * NOTE_SIZE))))
    notes = [t for t in fig.texts if t.get_gid() == "note"]
    lines = sum(t.get_text().count("\n") + 1 for t in notes)
    y = -lines * NOTE_SIZE * 1.3 / 72 / fig.get_size_inches()[1]
    fig.text(0.01, y, text, ha="left", va="top", fontsize=NOTE_SIZE, color=GREY, gid="note")


__all__ = ["CI", "CI_SEED", "FIGURE_DPI", "MIN_PANEL", "MIN_TEXT_PX", "NOTEBOOK_WIDTH_PX", "display_name", "family_colour",
           "generator_label", "inversion_label", "method_label", "method_style", "metric_label", "note_under", "note_unavailable",
           "panels_figsize", "raw_keys", "themed", "themed_plot", "timing_note", "unavailable"]
