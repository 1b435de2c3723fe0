"""The notebooks in a live kernel, as a researcher runs them in JupyterLab: every figure cell displays its
figure on the first run and again when it is re-run, a plain ``plt.subplots()`` afterwards displays too, the
outputs hold no stray ``Out`` value and no Python warning, and every figure says what it shows: no raw method or
metric key in its texts, text legible at the notebook's width, no count of images its rows do not have. A
quality-time figure takes its seconds from one timing pass, whenever its methods were stored, and a changed
subset re-runs with a legend that counts the rows.

papermill runs each cell once, so only a kernel that keeps running can show a figure that vanishes on the
second run (the theme once switched interactive mode off after the kernel's first figure). One kernel runs
the notebooks one after the other, as a long session would (and each kernel start costs seconds of CI); they
run on the smoke run's settings and store, so nothing is inverted here.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from figure_texts import counted_method, raw_keys_in, stated_counts
from live_kernel import (
    PLAIN_PLOT,
    RECORD_FIGURES,
    LiveKernel,
    dumps,
    images,
    is_figure_cell,
    kernel_environment,
    parametrised,
    recorded,
    shown_text,
    smoke_parameters,
    texts,
)

from restyle_lab.analysis.visual import MIN_TEXT_PX, display_name
from restyle_lab.inversion.timing import MACHINE_COLUMNS
from restyle_lab.run.notebook_params import NOTEBOOKS

WIDGET = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def kernel(smoke_store):
    with LiveKernel(smoke_store, kernel_environment(smoke_store)) as k:
        yield k


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_figures_display_on_every_run(kernel, smoke_store, name):
    nb = parametrised(name, smoke_parameters(smoke_store, name))
    cells = ["".join(c.source) for c in nb.cells if c.cell_type == "code"]
    figure_cells = [i for i, src in enumerate(cells) if is_figure_cell(src)]
    assert figure_cells, f"{name} has no figure cell"
    kernel.run(RECORD_FIGURES + "\nglobals().pop('rows', None)")
    first = [kernel.run(src) for src in cells]
    again = {i: kernel.run(cells[i]) for i in figure_cells}
    own = kernel.run(PLAIN_PLOT)
    for i in figure_cells:
        assert images(first[i]), f"{name} cell {i} showed no figure on its first run:\n{dumps(first[i])}"
        assert images(again[i]), f"{name} cell {i} showed no figure when re-run:\n{dumps(again[i])}"
    assert images(own) == 1, f"after {name}, a plain plt.subplots() cell showed no figure:\n{dumps(own)}"
    said = recorded(kernel)
    for i, outputs in enumerate(first):
        # an Out value is a table or a widget the cell means to show, never a dict, a path or a list left at its end
        assert all({"text/html", WIDGET} & set(m["content"]["data"]) for m in outputs if m["type"] == "execute_result"), \
            f"{name} cell {i} ends with a stray Out value:\n{dumps(outputs)}"
        assert not any("Warning" in text for text in texts(outputs, "stderr")), \
            f"{name} cell {i} shows a Python warning:\n{dumps(outputs)}"
        # an unavailable metric is a short status or a note; where its weight file is and how to get it is
        # in the provenance (metrics.weights.missing_message words it)
        assert "weight file" not in shown_text(outputs), f"{name} cell {i} shows the how-to:\n{dumps(outputs)}"
    check_figures(name, said)


def check_figures(name: str, said: dict) -> None:
    """Every figure a notebook saved names methods, metrics and scores by their display names, is legible at the
    notebook's width, and states no count of images its rows do not hold."""
    assert said["figures"], f"{name} saved no figure"
    for fig in said["figures"]:
        assert not raw_keys_in(fig), f"{name}: figure {fig['name']} shows raw keys {raw_keys_in(fig)}"
        assert fig["smallest_text_px"] >= MIN_TEXT_PX, \
            f"{name}: figure {fig['name']}'s smallest text is {fig['smallest_text_px']:.1f} px high at the notebook's " \
            f"width (the figure is {fig['width_px']} px wide): {min(fig['texts'], key=lambda t: t['size'])}"
        for text, n in stated_counts(fig):
            method = counted_method(text, said["counts"])
            assert method is not None and said["counts"][method] == n, \
                f"{name}: figure {fig['name']} says {text!r}; the rows hold {said['counts']}"


def test_times_from_one_sitting_and_counts_from_the_rows(kernel, smoke_store, tmp_path):
    """psp stored again in another sitting (its clock read 50x slow: a busy machine) beside the other methods: the
    figure's seconds come from one timing pass of all of them, not from the store. The optimisation subset is
    changed (the module's kernel ran quality_time on all 4 images) and the legend counts the rows' images."""
    shutil.copytree(smoke_store / "store", tmp_path / "store")
    for folder in (tmp_path / "store").glob("psp-*"):
        shutil.rmtree(folder)
    params = {**smoke_parameters(smoke_store, "quality_time"), "out_dir": str(tmp_path / "quality_time")}
    kernel.run("import time\nfrom restyle_lab.run.lab import Lab\n_clock = time.perf_counter\n"
               "time.perf_counter = lambda: 50 * _clock()\n"
               f"try:\n    Lab.from_parameters('quality_time', None, **{params!r}).compute(['psp'], progress=False)\n"
               "finally:\n    time.perf_counter = _clock")
    subset = 2
    kernel.run(RECORD_FIGURES + "\nglobals().pop('rows', None)")
    for cell in parametrised("quality_time", {**params, "optim_images": subset}).cells:
        if cell.cell_type == "code":
            kernel.run("".join(cell.source))
    said = recorded(kernel)
    check_figures("quality_time", said)
    timing = pd.read_csv(tmp_path / "quality_time" / "timing.csv")
    assert (timing[MACHINE_COLUMNS].nunique() == 1).all(), "one pass: one machine, load and date"
    assert set(timing.method) == set(NOTEBOOKS["quality_time"].methods)
    (fig,) = [f for f in said["figures"] if f["name"] == "quality_time"]
    for label, x in fig["lines"].items():
        method = counted_method(label, timing.method.unique())
        assert method is not None, f"a line of no method: {label}"
        np.testing.assert_allclose(x, timing[timing.method == method].sort_values("step").seconds_per_image,
                                   err_msg=f"{label}: not the timing pass's seconds")
    rows = pd.read_parquet(next((tmp_path / "store").glob("psp-*/parts/psp/*.parquet")))
    stored = rows[rows.metric == "cumulative_seconds_per_image"].value.mean()
    timed = timing[timing.method == "psp"].seconds_per_image.iloc[0]
    assert stored > 10 * timed, f"psp's stored seconds {stored} are not of another sitting than {timed}"
    assert "multiplied out" in fig["caption"] and timing.machine.iloc[0] in " ".join(t["text"] for t in fig["texts"])
    subsets = [t["text"] for t in fig["texts"] if t["where"] == "legend" and "images (seed" in t["text"]]
    assert said["counts"]["optim_w"] == said["counts"]["restyle_psp+optim"] == subset
    assert any(t.startswith(display_name("optim_w")[:-1]) and t.endswith(f", {subset} images (seed 0)")
               for t in subsets), subsets
