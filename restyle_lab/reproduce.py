"""``restyle-lab reproduce``: every analysis notebook through papermill, then an index page.

Writes into ``<out>/<domain>/``: one folder per notebook (PNG/PDF figures, CSV/Parquet
tables, parameters.json, outputs.json), the executed notebooks in ``notebooks/``, the
shared run store in ``store/``, and ``index.md`` listing every figure and table with the
parameters and provenance behind it.

Nothing here can hang: each notebook runs under a time limit (``--timeout``), in a kernel
reached over local IPC sockets, with interactive widgets switched off; a notebook that
fails or runs out of time is reported and the others go on (the exit status says so).
A notebook none of whose methods has its checkpoints is skipped, and said so.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm
from traitlets.config import Config

from .catalog import GENERATOR_PAIRS, named_method_keys, resolve_checkpoints
from .errors import UsageError
from .files import atomic_write_text, read_settings
from .mini.registry import ASSETS, MINI_MODELS
from .analysis.explorer import BATCH_ENV
from .notebook_params import NOTEBOOK_METHODS, NOTEBOOKS, params_from_file

DEFAULT_TIMEOUT = {"mini": 1800.0}  # seconds per notebook
DEFAULT_TIMEOUT_REAL = 6 * 3600.0


@dataclass
class Outcome:
    name: str
    status: str  # "ran", "failed", "timed out", "skipped"
    seconds: float = 0.0
    why: str = ""


def notebook_dir() -> Path:
    folder = Path(__file__).resolve().parents[1] / "notebooks"
    if not folder.is_dir():
        raise UsageError(f"the notebooks folder {folder} is missing; `reproduce` runs from a source checkout "
                         "(git clone + make setup)")
    return folder


def missing_requirement(name: str, found: dict, params: dict) -> str | None:
    """Why notebook ``name`` cannot run with the checkpoints ``found`` (None when it can)."""
    if name == "generator_alignment":
        if any(base in found and toon in found for base, toon in GENERATOR_PAIRS):
            return None
        return "needs a base and a fine-tuned generator (" + " or ".join(f"{a} + {b}" for a, b in GENERATOR_PAIRS) + ")"
    methods = [params["method"]] if "method" in params else NOTEBOOK_METHODS[name]
    if any(all(k in found for k in named_method_keys(m)) for m in methods):
        return None
    keys = sorted({k for m in methods for k in named_method_keys(m)})
    return f"none of its methods ({', '.join(methods)}) has its checkpoints (looked for: {', '.join(keys)})"


def _check_inputs(args) -> None:
    if args.domain == "mini":
        missing = [m.file for m in MINI_MODELS if not m.path.exists()]
        if len(missing) == len(MINI_MODELS):
            raise UsageError(f"the shipped mini weights are missing from {ASSETS} (a partial checkout? "
                             "regenerate them with `restyle-lab train --preset list`)")
        if missing:
            print(f"warning: {', '.join(missing)} missing from {ASSETS}; the methods that need them are skipped "
                  "(regenerate with `restyle-lab train --preset list`)")
        return
    if not (args.checkpoints and args.data):
        raise UsageError(f"--domain {args.domain} needs --checkpoints DIR (the official files, see README) and "
                         "--data DIR (the test images)")
    for flag, path in (("--checkpoints", args.checkpoints), ("--data", args.data)):
        if not Path(path).is_dir():
            raise UsageError(f"{flag} {path}: no such folder")


def params_for(name: str, args, own: dict, out_root: Path) -> dict:
    params = {"domain": args.domain, "device": args.device, "smoke": bool(args.smoke),
              "out_dir": str(out_root / name)}
    if args.checkpoints:
        params["checkpoints"] = str(Path(args.checkpoints).resolve())
    if args.data:
        params["data_root"] = str(Path(args.data).resolve())
    return {**params, **own}


@contextlib.contextmanager
def batch_mode():
    """Kernels started inside see BATCH_ENV (no widgets are built)."""
    before = os.environ.get(BATCH_ENV)
    os.environ[BATCH_ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(BATCH_ENV, None)
        else:
            os.environ[BATCH_ENV] = before


def execute(src: Path, dst: Path, parameters: dict, cwd: Path, timeout: float) -> None:
    """One notebook through papermill, stopped after ``timeout`` seconds in all (nbclient's per-cell limit is
    set to what is left of it). The kernel listens on IPC sockets in a private folder, not on TCP ports."""
    import papermill as pm

    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory(prefix="restyle-kernel-") as sockets, batch_mode():
        # configured, not handed over as a ready KernelManager: nbclient ignores its time limits for the latter
        ipc = Config({"KernelManager": {"transport": "ipc", "ip": str(Path(sockets) / "k")}})
        pm.execute_notebook(str(src), str(dst), parameters=parameters, kernel_name="python3", cwd=str(cwd),
                            progress_bar=False, log_output=False, config=ipc, execution_timeout=max(1, int(timeout)),
                            timeout_func=lambda cell: max(1, int(deadline - time.monotonic())))


def _failure(err: Exception, timeout: float) -> tuple[str, str]:
    kind = type(err).__name__
    if kind == "CellTimeoutError" or "timed out" in str(err).lower():
        return "timed out", f"stopped after the {timeout:.0f} s limit (--timeout)"
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    return "failed", f"{kind}: {lines[-1][:300] if lines else ''}"


def run_reproduce(args) -> int:
    names = list(args.only or NOTEBOOKS)
    unknown = [n for n in names if n not in NOTEBOOKS]
    if unknown:
        raise UsageError(f"unknown notebook(s) {unknown}; known: {', '.join(NOTEBOOKS)}")
    if args.list:
        print("\n".join(NOTEBOOKS))
        return 0
    _check_inputs(args)
    settings = params_from_file(read_settings(args.params, "--params") if args.params else None, args.domain)
    timeout = args.timeout or DEFAULT_TIMEOUT.get(args.domain, DEFAULT_TIMEOUT_REAL)
    out_root = Path(args.out).resolve() / args.domain
    src = notebook_dir()
    outcomes = []
    todo = []
    for name in names:
        params = params_for(name, args, settings[name], out_root)
        found, _ = resolve_checkpoints(args.domain, params.get("checkpoints"))
        why = missing_requirement(name, found, params)
        if why:
            outcomes.append(Outcome(name, "skipped", why=why))
        else:
            todo.append((name, params))
    (out_root / "notebooks").mkdir(parents=True, exist_ok=True)
    bar = tqdm(todo, desc=f"reproduce {args.domain}", unit="notebook")
    for name, params in bar:
        bar.set_postfix_str(name)
        t0 = time.time()
        try:
            execute(src / f"{name}.ipynb", out_root / "notebooks" / f"{name}.ipynb", params, out_root, timeout)
            outcomes.append(Outcome(name, "ran", time.time() - t0))
        except Exception as err:  # papermill wraps the cell's error; the other notebooks go on
            status, why = _failure(err, timeout)
            outcomes.append(Outcome(name, status, time.time() - t0, why))
    outcomes.sort(key=lambda o: names.index(o.name))
    index = write_index(out_root, outcomes, args, timeout)
    ran = [o for o in outcomes if o.status == "ran"]
    total = sum(o.seconds for o in outcomes)
    print(f"\n{len(ran)}/{len(todo)} notebooks ran in {total / 60:.1f} min; index: {index}")
    for o in outcomes:
        if o.status == "skipped":
            print(f"skipped {o.name}: {o.why}")
        elif o.status != "ran":
            print(f"{o.status.upper()} {o.name}: {o.why}  (see {out_root / 'notebooks' / (o.name + '.ipynb')})")
    return 1 if len(ran) < len(todo) else 0


def write_index(out_root: Path, outcomes: list, args, timeout: float) -> Path:
    command = f"restyle-lab reproduce --domain {args.domain}" + (" --smoke" if args.smoke else "")
    lines = [f"# restyle-lab results: {args.domain}", "",
             f"Made by `{command}`; every file below is regenerated by that command. Each notebook ran under a "
             f"{timeout:.0f} s limit.", ""]
    for o in outcomes:
        folder = out_root / o.name
        lines += [f"## {o.name}", ""]
        if o.status != "ran":
            where = f" (executed notebook: `notebooks/{o.name}.ipynb`)" if o.status != "skipped" else ""
            lines += [f"**{o.status}**: {o.why}{where}", ""]
        if o.status == "skipped":
            continue
        params = json.loads((folder / "parameters.json").read_text()) if (folder / "parameters.json").exists() else {}
        outputs = json.loads((folder / "outputs.json").read_text()) if (folder / "outputs.json").exists() else []
        for entry in outputs:
            files = ", ".join(f"[{f}]({o.name}/{f})" for f in entry["files"])
            if entry["kind"] == "figure":
                lines += [f"![{entry['caption']}]({o.name}/{entry['files'][0]})", "", f"*{entry['caption']}* ({files})",
                          ""]
            else:
                lines += [f"- table **{entry['name']}**: {entry['caption']}; {entry['rows']} rows, columns "
                          f"`{', '.join(entry['columns'])}` ({files})"]
        p = params.get("parameters", {})
        prov = params.get("provenance", {})
        lines += ["", f"<details><summary>parameters and provenance ({o.seconds:.0f} s)</summary>", "",
                  "```json", json.dumps({"parameters": p, "provenance": _provenance_summary(prov)}, indent=1,
                                        default=str), "```", "</details>", ""]
    path = out_root / "index.md"
    atomic_write_text(path, "\n".join(lines))
    return path


def _provenance_summary(prov: dict) -> dict:
    keep = ("package_version", "git_commit", "torch_version", "device", "dtype", "batch_size", "threads",
            "dataset_manifest_sha256", "n_images", "metrics_unavailable", "timing", "generators")
    out = {k: prov[k] for k in keep if k in prov}
    if "methods" in prov:
        out["methods"] = {name: {k: v for k, v in spec.items() if k in ("kind", "family", "steps", "checkpoint",
                                                                        "checkpoint_sha256", "loss", "record_at",
                                                                        "perceptual_unavailable", "bootstrap")}
                          for name, spec in prov["methods"].items()}
    return out
