"""The package's layers: ARCHITECTURE.md's table covers every module and every import goes down it, no import
circle, and no import hides inside a function except of an optional heavy dependency."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "restyle_lab"
ARCHITECTURE = PACKAGE.parent / "ARCHITECTURE.md"
# imported inside functions on purpose: only the code paths that need them pay for them
OPTIONAL_HEAVY = {"papermill", "jupyter_client", "lpips", "facenet_pytorch", "matplotlib", "cycler", "seaborn",
                  "ipywidgets", "IPython", "sklearn", "scipy", "skimage", "torchvision"}


def modules() -> dict:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _targets(name: str, path: Path, node, known) -> list:
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    if isinstance(node, ast.ImportFrom):
        base = package
        for _ in range(max(node.level - 1, 0)):
            base = base.rsplit(".", 1)[0]
        target = (base + "." + node.module if node.module else base) if node.level else (node.module or "")
        candidates = [target] + [target + "." + a.name for a in node.names]
    else:
        candidates = [a.name for a in node.names]
    # importing a.b.c runs a.b's __init__ first: the parent packages are imported too
    found = [c for c in candidates if c in known]
    return found + [p for c in found for p in (c.rsplit(".", k)[0] for k in range(1, c.count(".")))
                    if p in known]


def graph() -> dict:
    known = modules()
    edges = {m: set() for m in known}
    for name, path in known.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges[name] |= {t for t in _targets(name, path, node, known)
                                if t != name and not name.startswith(t + ".")}
    return edges


def dependency_order(edges: dict) -> list:
    order, state = [], {}

    def visit(m, trail):
        if state.get(m) == "done":
            return
        assert state.get(m) != "open", f"import circle: {' -> '.join(trail + [m])}"
        state[m] = "open"
        for dep in sorted(edges[m]):
            visit(dep, trail + [m])
        state[m] = "done"
        order.append(m)

    for m in sorted(edges):
        visit(m, [])
    return order


def declared_layers() -> dict:
    """module (dotted, with the restyle_lab prefix) -> its layer number in ARCHITECTURE.md's table."""
    text = ARCHITECTURE.read_text()
    table = text[text.index("<!-- layers:"): text.index("<!-- /layers -->")]
    layers = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].isdigit():
            for name in re.findall(r"`([\w.]+)`", cells[2]):
                full = name if name == "restyle_lab" else f"restyle_lab.{name}"
                assert full not in layers, f"{name} is in two layers"
                layers[full] = int(cells[0])
    return layers


def _package(module: str) -> str:
    """A sub-package's modules share it (restyle_lab.models.ops -> models); a top-level module is its own."""
    parts = module.split(".")
    sub = parts[1] if len(parts) > 1 else parts[0]
    return sub if (PACKAGE / sub).is_dir() else module


def test_the_layer_table_names_every_module_once():
    layers = declared_layers()
    known = set(modules())
    assert not known - set(layers), f"ARCHITECTURE.md's layer table lacks {sorted(known - set(layers))}"
    assert not set(layers) - known, f"ARCHITECTURE.md names modules that do not exist: {sorted(set(layers) - known)}"


def test_every_import_goes_down_the_layer_table():
    """A module imports only from lower layers, or from its own package within its layer."""
    layers, edges = declared_layers(), graph()
    bad = [f"{m} (layer {layers[m]}) imports {t} (layer {layers[t]})" for m, targets in edges.items() for t in targets
           if layers[t] > layers[m] or (layers[t] == layers[m] and _package(t) != _package(m))]
    assert not bad, bad


def test_no_import_circle():
    dependency_order(graph())  # raises with the circle's path


def test_every_module_imports_downwards_only_in_a_fresh_interpreter():
    """Imported leaves first, each module may only bring in modules it depends on (directly or not)."""
    edges = graph()
    order = dependency_order(edges)
    closure = {}
    for m in order:
        closure[m] = set(edges[m]).union(*(closure[d] for d in edges[m])) if edges[m] else set()
    script = f"""
import importlib, json, sys
report = {{}}
for name in {order!r}:
    before = {{m for m in sys.modules if m.startswith("restyle_lab")}}
    importlib.import_module(name)
    report[name] = sorted({{m for m in sys.modules if m.startswith("restyle_lab")}} - before - {{name}})
print(json.dumps(report))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    parents = lambda m: {m.rsplit(".", k)[0] for k in range(1, m.count(".") + 1)}  # noqa: E731
    # importing a submodule runs its packages' __init__ first: their imports come with it
    allowed = {m: closure[m].union(*(closure[p] | {p} for p in parents(m) if p in closure)) for m in closure}
    upward = {m: sorted(set(new) - allowed[m] - {p for n in new for p in parents(n)}) for m, new in report.items()}
    assert not {m: up for m, up in upward.items() if up}, "modules imported something above them"


def test_imports_inside_functions_are_only_optional_heavy_dependencies():
    found = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for sub in ast.walk(node):
                    if isinstance(sub, ast.ImportFrom):
                        top = "." if sub.level else (sub.module or "").split(".")[0]
                    elif isinstance(sub, ast.Import):
                        top = sub.names[0].name.split(".")[0]
                    else:
                        continue
                    if top not in OPTIONAL_HEAVY:
                        found.append(f"{name}.{node.name} imports {top}")
    assert not found, found


def test_the_command_line_answers_without_torch():
    out = subprocess.run([sys.executable, "-c", "import sys, restyle_lab.cli; print('torch' in sys.modules)"],
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_the_command_line_takes_its_choices_and_defaults_from_the_parameter_table():
    from restyle_lab import cli
    from restyle_lab.facts import devices, formats
    from restyle_lab.run.notebook_params import PARAMS

    assert tuple(devices.DTYPES) == formats.DTYPE_NAMES == PARAMS["dtype"].choices
    assert devices.IMPLS == PARAMS["impl"].choices
    parser = cli.build_parser()
    for argv in (["invert", "--checkpoint", "c", "--images", "i", "--out", "o"], ["evaluate", "--data", "d", "--out", "o"],
                 ["reproduce"]):
        args = parser.parse_args(argv)
        shared = [k for k in ("domain", "device", "dtype", "impl", "batch_size", "steps") if hasattr(args, k)]
        assert shared and all(getattr(args, k) == PARAMS[k].default for k in shared), argv
