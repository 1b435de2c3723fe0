"""Notebooks as a researcher runs them: one Jupyter kernel per notebook (jupyter_client, not papermill), cells
sent one at a time and again, every output message kept per cell.

Both the live-kernel test and the browser test run the notebooks on the papermill smoke run's settings and
store (``smoke_run`` in conftest.py), so they compute no inversion of their own.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import nbformat

from restyle_lab.analysis.explorer import BATCH_ENV
from restyle_lab.run.notebook_params import NOTEBOOKS

REPO = Path(__file__).resolve().parents[1]
NB_DIR = REPO / "notebooks"
# sent to a kernel first: every figure a notebook saves is then described (``figure_texts``)
RECORD_FIGURES = (f"import sys\nsys.path.insert(0, {str(REPO / 'tests')!r})\nimport figure_texts\n"
                  "figure_texts.install()\nfigure_texts.FIGURES.clear()")
# what the recorded figures say and how many images each method's rows of the notebook hold (``rows``)
READ_FIGURES = ("import json as _json\nprint(_json.dumps({'figures': figure_texts.FIGURES, 'counts': "
                "rows.groupby('method').image.nunique().to_dict() if 'rows' in globals() else {}}))")
FIGURE_CALLS = ("save_figure(", "explorer.build(")  # a cell that makes one of these calls shows a figure
PLAIN_PLOT = "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([0, 1, 2], [2, 0, 1]);"


# fewer edits than the smoke run for the editing notebook (one direction, three strengths): what is checked here
# is what the cells display, and the smoke run has measured every edit already
LIGHTER = {"editing": {"edits": "smile", "strengths": "-2,0,2", "n_samples": 100}}


def smoke_parameters(root: Path, name: str, suffix: str = "live") -> dict:
    """The parameters the smoke run gave ``name`` (lighter where LIGHTER says), with its own output folder
    beside the smoke run's (so the store, ``root/store``, is the same one)."""
    params = {"domain": "mini", "smoke": True, "out_dir": str(root / f"{name}_{suffix}"), **LIGHTER.get(name, {})}
    return {k: v for k, v in params.items() if k in NOTEBOOKS[name].params}


def parametrised(name: str, params: dict):
    """The committed notebook with a cell of ``params`` after its parameters cell, as papermill injects it."""
    nb = nbformat.read(NB_DIR / f"{name}.ipynb", as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", []))
    source = "# injected parameters\n" + "".join(f"{k} = {v!r}\n" for k, v in params.items())
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))
    return nb


def kernel_environment(root: Path) -> dict:
    """The environment of a kernel JupyterLab starts: the smoke run's rendered test set, no batch flag, the
    kernel's own matplotlib backend."""
    env = {k: v for k, v in os.environ.items() if k not in (BATCH_ENV, "MPLBACKEND")}
    env["RESTYLE_LAB_DATA"] = str(root.parent / "data")
    return env


def is_figure_cell(source: str) -> bool:
    return any(call in source for call in FIGURE_CALLS)


class LiveKernel:
    """A python3 kernel over IPC sockets in a private folder; ``run(code)`` -> the cell's output messages."""

    def __init__(self, cwd: Path, env: dict, timeout: float = 300):
        self.cwd, self.env, self.timeout = cwd, env, timeout

    def __enter__(self):
        from jupyter_client import KernelManager

        self._sockets = tempfile.TemporaryDirectory(prefix="restyle-live-")
        self.km = KernelManager(kernel_name="python3", transport="ipc", ip=str(Path(self._sockets.name) / "k"))
        self.km.start_kernel(cwd=str(self.cwd), env=self.env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)
        return self

    def __exit__(self, *exc):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)
        self._sockets.cleanup()

    def run(self, code: str) -> list[dict]:
        """Execute ``code`` as one cell; its iopub messages (type and content). A cell that raises fails
        the calling test with the kernel's traceback."""
        messages = []
        reply = self.kc.execute_interactive(code, timeout=self.timeout, allow_stdin=False,
                                            output_hook=lambda m: messages.append(
                                                {"type": m["msg_type"], "content": m["content"]}))
        if reply["content"]["status"] != "ok":
            tb = "\n".join(reply["content"].get("traceback", []))
            raise AssertionError(f"cell failed:\n{code}\n{tb}")
        return messages


def recorded(kernel) -> dict:
    """The figures a kernel's notebook saved since ``RECORD_FIGURES`` and its rows' image counts (READ_FIGURES)."""
    return json.loads("".join(texts(kernel.run(READ_FIGURES), "stdout")))


def images(messages: list[dict]) -> int:
    """How many PNG images the messages display."""
    return sum("image/png" in m["content"].get("data", {}) for m in messages
               if m["type"] in ("display_data", "execute_result", "update_display_data"))


def texts(messages: list[dict], kind: str) -> list[str]:
    """'stdout' / 'stderr': the cell's stream text; 'result': the text of its Out value."""
    if kind == "result":
        return [m["content"]["data"].get("text/plain", "") for m in messages if m["type"] == "execute_result"]
    return [m["content"]["text"] for m in messages if m["type"] == "stream" and m["content"]["name"] == kind]


def shown_text(messages: list[dict]) -> str:
    """Everything a cell shows as text: its streams, and the plain-text and HTML forms of its outputs."""
    parts = [m["content"].get("text", "") for m in messages if m["type"] == "stream"]
    parts += [m["content"].get("data", {}).get(kind, "") for m in messages for kind in ("text/plain", "text/html")]
    return "\n".join(parts)


def dumps(messages: list[dict]) -> str:
    """A cell's outputs for an assertion message (images shortened)."""
    def short(value):
        return value[:60] + "..." if isinstance(value, str) and len(value) > 200 else value
    return json.dumps([{k: ({d: short(x) for d, x in v.get("data", {}).items()} if k == "content" and "data" in v
                            else v) for k, v in m.items()} for m in messages], indent=1, default=str)[:4000]
