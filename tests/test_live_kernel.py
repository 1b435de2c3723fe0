"""The notebooks in a live kernel, as a researcher runs them in JupyterLab: every figure cell displays its
figure on the first run and again when it is re-run, a plain ``plt.subplots()`` afterwards displays too, and
the outputs hold no stray ``Out`` value and no Python warning.

papermill runs each cell once, so only a kernel that keeps running can show a figure that vanishes on the
second run (the theme once switched interactive mode off after the kernel's first figure). One kernel runs
the notebooks one after the other, as a long session would (and each kernel start costs seconds of CI); they
run on the smoke run's settings and store, so nothing is inverted here.
"""

from __future__ import annotations

import pytest

from live_kernel import (PLAIN_PLOT, LiveKernel, dumps, images, is_figure_cell, kernel_environment, parametrised,
                         shown_text, smoke_parameters, texts)
from restyle_lab.notebook_params import NOTEBOOKS


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
    first = [kernel.run(src) for src in cells]
    again = {i: kernel.run(cells[i]) for i in figure_cells}
    own = kernel.run(PLAIN_PLOT)
    for i in figure_cells:
        assert images(first[i]), f"{name} cell {i} showed no figure on its first run:\n{dumps(first[i])}"
        assert images(again[i]), f"{name} cell {i} showed no figure when re-run:\n{dumps(again[i])}"
    assert images(own) == 1, f"after {name}, a plain plt.subplots() cell showed no figure:\n{dumps(own)}"
    for i, outputs in enumerate(first):
        assert not any("PosixPath" in text for text in texts(outputs, "result")), \
            f"{name} cell {i} ends with a stray Out value:\n{dumps(outputs)}"
        assert not any("Warning" in text for text in texts(outputs, "stderr")), \
            f"{name} cell {i} shows a Python warning:\n{dumps(outputs)}"
        # an unavailable metric is a short status or a note; where its weight file is and how to get it is
        # in the provenance (metrics.weights.missing_message words it)
        assert "weight file" not in shown_text(outputs), f"{name} cell {i} shows the how-to:\n{dumps(outputs)}"
