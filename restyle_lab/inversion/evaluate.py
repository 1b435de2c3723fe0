"""``evaluate``: invert a test set with several methods and store one row per
(image, method, step, metric), resumable and shardable (see ``restyle_lab.records.store``).

Methods are specs (``restyle_lab.facts.methods``). Nothing is loaded for a method whose results
are already stored: a notebook re-run on a complete store reads its rows without
touching a network. A run that is refused (another setup in the run directory, a bad
setting) changes nothing on disk.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import torch
import torch.distributed as dist

from .. import __version__
from ..faces.align import FaceAligner, size_for
from ..facts.defaults import DEFAULTS
from ..facts.devices import check_impl, device_name, parse_device, weights_and_compute
from ..facts.domains import get_domain
from ..facts.errors import DatasetError, StoreError, UsageError
from ..facts.methods import check_specs, positive_int
from ..facts.torchrun import torchrun_env
from ..metrics import METRICS, MetricUnavailable
from ..models.host_memory import reuse_freed_memory
from ..records.data import count_reasons, image_folder_for_domain, manifest_hash, skipped
from ..records.store import (
    MANIFEST_NAME,
    check_layout,
    check_provenance,
    claim,
    git_commit,
    provenance_problem,
    read_manifest,
    stored_provenance,
    write_manifest,
    write_provenance,
)
from .build import DERIVED_KEYS, Inverters, derived, method_identity
from .units import Computer, plan, true_latents

TIMING = "warm-up excluded, device synchronised, seconds per image per step (batch time / batch size)"


def evaluate(run_dir, data_root, methods: list, domain: str = DEFAULTS.domain, metrics: list[str] | None = None,
             batch_size: int = DEFAULTS.batch_size, n_images: int | None = None, device: str = DEFAULTS.device,
             dtype: str = DEFAULTS.dtype, impl: str = DEFAULTS.impl, save_images: bool = True, strict: bool = False,
             progress: bool = True, shard: tuple | None = None, align: bool = False, warmup: bool = True,
             helpers: list | None = None, log=print, nets: dict | None = None, merge_data: bool = False) -> Path:
    """Run (or resume) an evaluation into ``run_dir``; returns it. Rows: see ``restyle_lab.records.store``.

    ``methods``: specs or their dicts (``restyle_lab.facts.methods``). ``shard`` = (k, n): compute only
    the batches b with b % n == k (default: torchrun's rank and world size, else all). Raises
    ``UsageError`` for a setting that cannot be honoured, ``StoreError`` when run_dir holds
    another setup, both before anything is written. ``align``: each image becomes the FFHQ crop of its
    largest face first (``restyle_lab.faces``; recorded in the provenance and ``alignment.csv``).
    ``warmup``: time each inverter after an unrecorded first pass (off in smoke runs, where times are not
    results; recorded). ``helpers``: methods the ``methods`` run on (a hybrid's encoder) that are built
    but not stored here. ``nets``: a checkpoint path -> network cache to share with other calls (a hybrid
    then reuses the encoder its encoder's call loaded). ``merge_data``: ``run_dir`` may hold results for the images
    of another folder, and this folder's images join them (the notebooks' stores, shared by test sets of several
    sizes, do); else a run made from another folder is refused.

    Images are stored one by one (``restyle_lab.records.store``): those a method has stored already with the same
    content are read back, so a smaller ``n_images`` or a subset reuses them and a larger one computes only
    the new ones.
    """
    rank, world, local_rank, _ = torchrun_env()
    distributed = shard is None and world > 1
    shard = shard or (rank, world)
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"--out {run_dir} is a file; give a folder for the run (created if missing)")
    check_layout(run_dir)
    dom = get_domain(domain)
    batch_size = positive_int(batch_size, "batch size")
    n_images = None if n_images is None else positive_int(n_images, "number of images")
    dev = parse_device(device, local_rank)
    if dev.type == "cpu":
        reuse_freed_memory()  # activations freed in one step serve the next without page faults (host_memory.py)
    weights_dtype, compute = weights_and_compute(dtype)
    check_impl(impl)
    helpers = check_specs(list(helpers or []))
    specs = {s.name: s for s in check_specs(helpers + list(methods))[len(helpers):]}
    if not specs:
        raise UsageError("give at least one method")
    metric_names = _metric_names(dom, metrics)
    aligner = FaceAligner(size_for(dom.input_hw), dev) if align else None
    folder = image_folder_for_domain(data_root, dom, strict=strict, limit=n_images, prepare=aligner)
    entries = folder.manifest(read_manifest(run_dir / MANIFEST_NAME))
    bad = skipped(entries)
    if len(bad) == len(entries):
        raise DatasetError(f"{folder.root}: none of its {len(entries)} image files could be read "
                           f"({_reasons(bad)}); nothing was evaluated")
    provenance = {
        "domain": dom.name, "data_root": str(Path(data_root).resolve()), "dataset_manifest_sha256":
        manifest_hash(entries), "n_images": len(folder), "methods": {n: method_identity(s) for n, s in specs.items()},
        "metrics": metric_names, "batch_size": batch_size, "dtype": dtype, "impl": impl, "device_type": dev.type,
        "device": device_name(dev), "threads": torch.get_num_threads(), "world_size": shard[1],
        "package_version": __version__, "git_commit": git_commit(), "torch_version": torch.__version__,
        "host": socket.gethostname(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "warmup": bool(warmup),
        "timing": TIMING if warmup else TIMING.replace("warm-up excluded", "no warm-up pass (a smoke run)"),
    }
    if aligner is not None:
        provenance["align"] = aligner.describe()
    truth = true_latents(data_root)
    if provenance_problem(run_dir) and any((run_dir / "parts").glob("*/b*.parquet")):
        log(f"{run_dir}: provenance.json is {provenance_problem(run_dir)}; checking this run against the records "
            "its parts carry (it is rebuilt from them)")
    if not merge_data:
        _check_data_root(run_dir, provenance["data_root"])
    check_provenance(run_dir, provenance, DERIVED_KEYS)

    work = plan(run_dir, specs, entries, batch_size, shard, log, provenance)
    provenance["requested"] = {m: [entries[i]["name"] for i in wanted] for m, wanted in work.wanted.items()}
    inverters = Inverters({**{h.name: h for h in helpers}, **specs}, dev, weights_dtype, dom, nets=nets,
                          compute=compute, impl=impl, warmup=warmup)
    metric_objs, unavailable = _build_metrics(metric_names, dev) if work.todo else ({}, None)
    _record(run_dir, provenance, inverters, [m for m, n in work.missing.items() if n], unavailable)
    with claim(run_dir, None, wait=True):
        write_provenance(run_dir, provenance)
        write_manifest(run_dir, folder.root, entries)
    # of the images each method wants, those stored already (a store may hold others: another notebook's subset)
    reused = {m: sum(entries[i]["name"] in work.held[m] for i in wanted) for m, wanted in work.wanted.items()}
    if any(reused.values()):
        log("reusing stored images: " + ", ".join(f"{m} {n} of {len(work.wanted[m])}" for m, n in reused.items()
                                                  if n))
    if distributed:
        _share_cores(world, dev)
    group = _init_group(dev) if distributed else False  # every rank joins, also one with nothing left to do
    try:
        if work.todo:
            computer = Computer(run_dir, folder, batch_size, inverters, metric_objs, unavailable, save_images,
                                truth, provenance)
            done_here = computer.run(work, progress and shard[0] == 0, dom.name)
            log(f"computed {done_here} (method, batch) unit(s) in this process"
                + ("" if shard[1] == 1 else f" (shard {shard[0]} of {shard[1]})"))
        if group:
            dist.barrier()
    finally:
        if group:
            dist.destroy_process_group()
    if aligner is not None and shard[0] == 0:
        aligner.write_record(run_dir, folder.names)
    if bad and shard[0] == 0:
        log(f"skipped {len(bad)} of {len(entries)} input files ({_reasons(bad)}); each is listed with its reason "
            f"in {run_dir / 'dataset_manifest.json'} (`restyle-lab summary {run_dir}` lists them)")
    return run_dir


def _check_data_root(run_dir: Path, data_root: str) -> None:
    """Refuse a run made from another data folder: its results would mix with these in every table."""
    stored = (stored_provenance(run_dir) or {}).get("data_root")
    if stored is not None and stored != data_root:
        raise StoreError(f"--out {run_dir} holds results for the images of {stored}, not of {data_root}; evaluate "
                         f"{data_root} into another --out, or add --merge-data to add its images to this run (each "
                         "command's table then still shows only the images it was given)")


def _metric_names(dom, metrics) -> list[str]:
    names = list(dom.metrics if metrics is None else metrics)
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise UsageError(f"unknown metric(s) {unknown}; known: {', '.join(METRICS)}")
    return names


def _record(run_dir, provenance: dict, inverters, todo: list, unavailable) -> None:
    """Add what building the methods with work left and the metrics revealed to ``provenance``, refusing
    (before any write) a store whose rows were made by different methods or with other metrics available."""
    found = {m: derived(inverters[m]) for m in todo}
    check_provenance(run_dir, {**provenance, "methods": {m: {**provenance["methods"][m], **d}
                                                         for m, d in found.items()}}, DERIVED_KEYS)
    for m, d in found.items():
        provenance["methods"][m].update(d)
    if unavailable is None:
        return
    stored = (stored_provenance(run_dir) or {}).get("metrics_unavailable")
    if stored is not None and sorted(stored) != sorted(unavailable):
        raise StoreError(f"{run_dir}: metrics unavailable when its rows were computed: {sorted(stored) or 'none'}; "
                         f"now: {sorted(unavailable) or 'none'}. Its rows are kept; evaluate into a new --out so "
                         "one table never mixes the two")
    provenance["metrics_unavailable"] = unavailable


def _build_metrics(names, dev) -> tuple[dict, dict]:
    """(name -> metric, name -> why it is unavailable); an unavailable metric is recorded on every row and in
    the provenance, and said where it is used (a figure's note, a table's status), not here."""
    objs, unavailable = {}, {}
    for m in names:
        try:
            objs[m] = METRICS[m].build(dev)
        except MetricUnavailable as err:
            unavailable[m] = err.reason
    return objs, unavailable


def _reasons(entries: list[dict]) -> str:
    return count_reasons(e["status"] for e in entries)


# ------------------------------------------------------------------ distributed helpers

def _share_cores(n_processes: int, dev) -> None:
    """CPU processes on one machine share its cores instead of each taking all of them."""
    if n_processes > 1 and dev.type == "cpu":
        local = torchrun_env()[3]
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // local))


def _init_group(dev):
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return True


__all__ = ["evaluate"]
