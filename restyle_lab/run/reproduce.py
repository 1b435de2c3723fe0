"""``restyle-lab reproduce``: every analysis notebook through papermill, then an index page.

Writes into ``<out>/<domain>/``: one folder per notebook (PNG/PDF figures, CSV/Parquet
tables, parameters.json, outputs.json), the executed notebooks in ``notebooks/``, the
shared run store in ``store/``, and ``index.md`` listing every figure and table with the
parameters and provenance behind it.

Before a real-domain run (and with ``--dry-run``, only that) it prints the plan: the
inversions still to compute and a time estimate from a short probe. ``--shard K/N`` fills
shard K of N of the store and stops; under ``torchrun`` every rank fills its shard and rank
0 then runs the notebooks. Nothing here can hang: see ``restyle_lab.run.papermill_runs``.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import torch.distributed as dist
from tqdm.auto import tqdm

from ..facts.catalog import GENERATOR_PAIRS, named_method_keys, resolve_checkpoints
from ..facts.domains import get_domain
from ..facts.errors import UsageError
from ..facts.progress import describe_progress
from ..facts.torchrun import parse_shard, under_torchrun
from ..records.files import read_settings
from ..records.index_page import write_index
from .lab import Lab
from .notebook_params import NOTEBOOKS, PARAMS, params_from_file
from .papermill_runs import Outcome, notebook_dir, run_notebook
from .planning import format_plan, method_costs


def missing_requirement(name: str, found: dict, params: dict) -> str | None:
    """Why notebook ``name`` cannot run with the checkpoints ``found`` (None when it can)."""
    nb = NOTEBOOKS[name]
    if nb.generator_pair:
        if any(base in found and toon in found for base, toon in GENERATOR_PAIRS):
            return None
        return "needs a base and a fine-tuned generator (" + " or ".join(f"{a} + {b}" for a, b in GENERATOR_PAIRS) + ")"
    methods = nb.methods_with(params)
    if any(all(k in found for k in named_method_keys(m)) for m in methods):
        return None
    keys = sorted({k for m in methods for k in named_method_keys(m)})
    return f"none of its methods ({', '.join(methods)}) has its checkpoints (looked for: {', '.join(keys)})"


def _check_inputs(args, domain) -> None:
    """Refuse a run whose checkpoints or data cannot be found, naming what to give."""
    if domain.checkpoint_folder and not args.checkpoints:
        found, missing = resolve_checkpoints(domain.name)
        if not found:
            raise UsageError(f"the shipped {domain.name} weights are missing from {domain.checkpoint_folder} (a "
                             "partial checkout? regenerate them with `restyle-lab train --preset list`)")
        if missing:
            print(f"warning: {', '.join(p.name for p in missing.values())} missing from {domain.checkpoint_folder}; "
                  "the methods that need them are skipped (regenerate with `restyle-lab train --preset list`)")
    needs = [flag for flag, given, needed in (("--checkpoints DIR (the official files, see README)", args.checkpoints,
                                               domain.checkpoint_folder is None),
                                              ("--data DIR (the test images)", args.data, not domain.renders_test_set))
             if needed and not given]
    if needs:
        raise UsageError(f"--domain {domain.name} needs {' and '.join(needs)}")
    for flag, path in (("--checkpoints", args.checkpoints), ("--data", args.data)):
        if path and not Path(path).is_dir():
            raise UsageError(f"{flag} {path}: no such folder")


def params_for(name: str, args, own: dict, out_root: Path) -> dict:
    """The parameters ``reproduce`` gives notebook ``name``: its own options, then the --params file's."""
    nb = NOTEBOOKS[name]
    # the parameters reproduce's own options set (``Param.set_by``); --out is the root of every notebook's out_dir
    params = {key: getattr(args, p.set_by.removeprefix("--").replace("-", "_")) for key, p in PARAMS.items()
              if p.set_by}
    params["out_dir"] = str(out_root / name)
    if args.checkpoints:
        params["checkpoints"] = str(Path(args.checkpoints).resolve())
    if args.data:
        params["data_root"] = str(Path(args.data).resolve())
    return {k: v for k, v in {**params, **own}.items() if k in nb.params}


def lab_for(name: str, params: dict) -> Lab:
    """The Lab the notebook will make from the same parameters (what it misses is said once per run, by the
    plan, not once per notebook)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return Lab.from_parameters(name, None, **params)


def fill_store(labs: list, shard: tuple) -> None:
    """This shard of every notebook's inversions, into the stores the notebooks will read."""
    for lab in labs:
        if lab.inverts and lab.specs():
            lab.compute(shard=shard)


def run_reproduce(args) -> int:
    names = list(args.only or NOTEBOOKS)
    unknown = [n for n in names if n not in NOTEBOOKS]
    if unknown:
        raise UsageError(f"unknown notebook(s) {unknown}; known: {', '.join(NOTEBOOKS)}")
    if args.list:
        print("\n".join(NOTEBOOKS))
        return 0
    domain = get_domain(args.domain)
    _check_inputs(args, domain)
    shard = parse_shard(args.shard)
    settings = params_from_file(read_settings(args.params, "--params") if args.params else None)
    timeout = args.timeout or domain.timeout
    out_root = Path(args.out).resolve() / args.domain
    skipped, todo = {}, []
    for name in names:
        params = params_for(name, args, settings[name], out_root)
        found, _ = resolve_checkpoints(args.domain, params.get("checkpoints"))
        why = missing_requirement(name, found, params)
        if why:
            skipped[name] = why
        else:
            todo.append((name, params))
    # runs on checkpoints the user brings cost hours: say what they will compute before starting
    if args.dry_run or (domain.checkpoint_folder is None and shard is None):
        labs = [lab_for(name, params) for name, params in todo]
        if labs:
            print(labs[0].describe_missing())
        costs = method_costs(labs, probe=not args.smoke)  # a smoke run costs less than its probe
        print(format_plan(costs, skipped, args.device, args.dtype, args.impl))
        if args.dry_run:
            return 0
    if shard is not None:
        fill_store([lab_for(name, params) for name, params in todo], shard)
        if not under_torchrun() or args.shard:
            print(f"shard {shard[0]}/{shard[1]} of the inversions is stored; once every shard is, run the same "
                  "command without --shard to make the figures")
            return 0
        dist.init_process_group("gloo")  # under torchrun: wait for every rank's shard
        dist.barrier()
        dist.destroy_process_group()
        if shard[0] != 0:
            return 0
    return _run_notebooks(args, out_root, todo, skipped, timeout)


def _run_notebooks(args, out_root: Path, todo: list, skipped: dict, timeout: float) -> int:
    src = notebook_dir()
    (out_root / "notebooks").mkdir(parents=True, exist_ok=True)
    outcomes = [Outcome(name, "skipped", why=why) for name, why in skipped.items()]
    bar = tqdm(todo, desc=f"reproduce {args.domain}", unit="notebook")
    for name, params in bar:
        bar.set_postfix_str(name)

        def show(state, name=name):  # what the notebook runs inside, from its kernel (restyle_lab.facts.progress)
            bar.set_postfix_str(f"{name}: {describe_progress(state)}")

        outcomes.append(run_notebook(src / f"{name}.ipynb", out_root / "notebooks" / f"{name}.ipynb", name, params,
                                     out_root, timeout, on_progress=show))
    names = [n for n in NOTEBOOKS if n in {o.name for o in outcomes}]
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
