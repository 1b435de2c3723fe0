"""``evaluate``: invert a test set with several methods and store one row per
(image, method, step, metric), resumable and shardable (see ``restyle_lab.store``).

Methods are specs (``restyle_lab.methods``). Nothing is loaded for a method whose results
are already stored: a notebook re-run on a complete store reads its rows without
touching a network. A run that is refused (another setup in the run directory, a bad
setting) changes nothing on disk.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from . import __version__
from .checkpoints import load_generator, load_network
from .data import image_folder_for_domain, manifest_hash, read_manifest, skipped, write_manifest
from .devices import device_name, parse_device, parse_dtype
from .domains import get_domain
from .errors import DatasetError, EvaluationError, StoreError, UsageError
from .files import sha256_file
from .images import to_uint8
from .inversion import EncoderInverter, HybridInverter, Projector, ProjectorConfig, ReStyleInverter
from .methods import HybridSpec, NaiveSpec, OptimSpec, ReStyleSpec, SingleSpec, check_specs, positive_int
from .metrics import METRICS, MetricUnavailable, build_metric, latent_mse
from .store import (COLUMNS, ERROR_COLUMNS, check_provenance, claim, damaged_units, git_commit, stored_provenance,
                    unit_done, write_errors, write_latents, write_part, write_provenance)

# what building a method's inverter reveals (recorded, and compared on resume when known)
DERIVED_KEYS = ("family", "loss", "perceptual_unavailable")
TIMING = "warm-up excluded, device synchronised, seconds per image per step (batch time / batch size)"


# ------------------------------------------------------------------ building inverters

class Inverters:
    """Inverters built on demand; every checkpoint is loaded at most once."""

    def __init__(self, specs: dict, device, dtype, domain):
        self.specs, self.device, self.dtype, self.domain = specs, device, dtype, domain
        self._nets, self._built = {}, {}

    def net(self, path):
        path = str(path)
        if path not in self._nets:
            if not Path(path).is_file():
                raise EvaluationError(f"checkpoint {path} not found (see README: which files go where)")
            net = load_network(path, device=self.device, dtype=self.dtype)
            if tuple(net.geometry.input_hw) != tuple(self.domain.input_hw):
                raise EvaluationError(f"{path} reads {net.geometry.input_hw} images but domain {self.domain.name!r} "
                                      f"uses {self.domain.input_hw}: wrong --domain for this checkpoint?")
            self._nets[path] = net
        return self._nets[path]

    def __getitem__(self, name: str):
        if name not in self._built:
            self._built[name] = self._build(self.specs[name])
        return self._built[name]

    def _encoder_net(self, spec, path, restyle: bool):
        net = self.net(path)
        if net.is_restyle != restyle:
            hint = "restyle:CKPT" if net.is_restyle else "single:CKPT or naive:CKPT[:STEPS]"
            raise EvaluationError(f"method {spec.name!r} ({spec.kind}): {path} is a {net.family} checkpoint, which "
                                  f"{'needs a ReStyle method' if net.is_restyle else 'is not a ReStyle network'}; "
                                  f"use {hint}")
        return net

    def _build(self, spec):
        if isinstance(spec, ReStyleSpec):
            start = (ReStyleInverter(self._encoder_net(spec, spec.bootstrap, True), 1, name=f"{spec.name}_init"),
                     spec.bootstrap_steps) if spec.bootstrap else None
            return ReStyleInverter(self._encoder_net(spec, spec.checkpoint, True), spec.steps, name=spec.name,
                                   bootstrap=start)
        if isinstance(spec, (SingleSpec, NaiveSpec)):
            return EncoderInverter(self._encoder_net(spec, spec.checkpoint, False), getattr(spec, "steps", 1),
                                   name=spec.name)
        config = ProjectorConfig(space="w+" if isinstance(spec, HybridSpec) else spec.space,
                                 record_at=spec.record_at, **_projector_options(spec.options))
        if isinstance(spec, OptimSpec):
            if spec.generator:
                gen, w_avg, _ = load_generator(spec.generator, device=self.device, dtype=self.dtype)
            else:
                net = self.net(spec.checkpoint)
                gen, w_avg = net.decoder, net.latent_avg.reshape(-1, net.latent_avg.shape[-1])[0]
            return Projector(gen, w_avg, config, geometry=self.domain.geometry, name=spec.name)
        encoder = self[spec.encoder]
        net = encoder.net
        projector = Projector(net.decoder, net.latent_avg.reshape(-1, net.latent_avg.shape[-1])[0], config,
                              geometry=self.domain.geometry, name=f"{spec.name}_optim")
        return HybridInverter(encoder, projector, name=spec.name)


def _projector_options(options: dict) -> dict:
    kwargs = dict(options)
    if kwargs.get("perceptual") is False and "mse_weight" not in kwargs:
        kwargs["mse_weight"] = 1.0
    return kwargs


def method_identity(spec) -> dict:
    """The provenance entry of a method before anything is loaded: its spec and its files' sha256."""
    entry = spec.to_dict()
    for role, path in spec.files().items():
        if not Path(path).is_file():
            raise EvaluationError(f"method {spec.name!r}: {role} {path} not found")
        key = {"checkpoint": "checkpoint_sha256", "generator": "generator_sha256"}.get(role)
        if key:
            entry[key] = sha256_file(path)
        else:
            entry["bootstrap"] = {**entry["bootstrap"], "sha256": sha256_file(path)}
    return entry


# ------------------------------------------------------------------ rows

def trace_rows(trace, names, indices, metric_objs, prepared, unavailable, true_latents=None) -> pd.DataFrame:
    rows = []
    cumulative = trace.cumulative_seconds()
    for step, total in zip(trace.steps, cumulative):
        for j, (name, idx) in enumerate(zip(names, indices)):
            rows.append((name, idx, trace.method, step.step, "seconds_per_image", step.seconds_per_image, "ok"))
            rows.append((name, idx, trace.method, step.step, "cumulative_seconds_per_image", total, "ok"))
        for metric, obj in metric_objs.items():
            values = obj(step.image, prepared[metric]).tolist()
            for name, idx, v in zip(names, indices, values):
                status = "ok" if np.isfinite(v) else "skipped: no face detected" if metric.startswith("id_") \
                    else "skipped: not finite"
                rows.append((name, idx, trace.method, step.step, metric, float(v), status))
        for metric, reason in unavailable.items():
            for name, idx in zip(names, indices):
                rows.append((name, idx, trace.method, step.step, metric, float("nan"), f"unavailable: {reason}"))
        if true_latents is not None:
            for name, idx, v in zip(names, indices, latent_mse(step.latent, true_latents).tolist()):
                rows.append((name, idx, trace.method, step.step, "latent_mse", float(v), "ok"))
    return pd.DataFrame(rows, columns=COLUMNS)


def _true_latents(data_root) -> dict | None:
    """The known w+ of synthetic inputs (``restyle-lab sample`` writes them as latents.npz)."""
    path = Path(data_root) / "latents.npz"
    if not path.exists():
        return None
    d = np.load(path)
    return {str(n): torch.from_numpy(w) for n, w in zip(d["names"], d["latents"])}


# ------------------------------------------------------------------ the loop

def evaluate(run_dir, data_root, methods: list, domain: str = "mini", metrics: list[str] | None = None,
             batch_size: int = 4, n_images: int | None = None, device: str = "cpu", dtype: str = "float32",
             save_images: bool = True, strict: bool = False, progress: bool = True, log=print) -> Path:
    """Run (or resume) an evaluation into ``run_dir``; returns it. Rows: see ``restyle_lab.store``.

    ``methods``: specs or their dicts (``restyle_lab.methods``). Raises ``UsageError`` for a
    setting that cannot be honoured, ``StoreError`` when run_dir holds another setup, both
    before anything is written.
    """
    rank, world, local_rank = dist_env()
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"--out {run_dir} is a file; give a folder for the run (created if missing)")
    dom = get_domain(domain)
    batch_size = positive_int(batch_size, "batch size")
    n_images = None if n_images is None else positive_int(n_images, "number of images")
    dev = parse_device(device, local_rank)
    specs = {s.name: s for s in check_specs(methods)}
    if not specs:
        raise UsageError("give at least one method")
    metric_names = _metric_names(dom, metrics)
    folder = image_folder_for_domain(data_root, dom, strict=strict, limit=n_images)
    entries = folder.manifest(read_manifest(run_dir / "dataset_manifest.json"))
    bad = skipped(entries)
    if len(bad) == len(entries):
        raise DatasetError(f"{folder.root}: none of its {len(entries)} image files could be read "
                           f"({_reasons(bad)}); nothing was evaluated")
    provenance = {
        "domain": dom.name, "data_root": str(Path(data_root).resolve()), "dataset_manifest_sha256":
        manifest_hash(entries), "n_images": len(folder), "methods": {n: method_identity(s) for n, s in specs.items()},
        "metrics": metric_names, "batch_size": batch_size, "dtype": dtype, "device_type": dev.type,
        "device": device_name(dev), "threads": torch.get_num_threads(), "world_size": world,
        "package_version": __version__, "git_commit": git_commit(), "torch_version": torch.__version__,
        "host": socket.gethostname(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "timing": TIMING,
    }
    check_provenance(run_dir, provenance)

    mine = [b for b in range(-(-len(folder) // batch_size)) if b % world == rank]
    for m, b in damaged_units(run_dir, specs, mine):
        log(f"redoing {m} batch {b}: its stored part in {run_dir} is damaged")
    pending = {m: [b for b in mine if not unit_done(run_dir, m, b)] for m in specs}
    inverters = Inverters(specs, dev, parse_dtype(dtype), dom)
    todo = sorted({b for bs in pending.values() for b in bs})
    metric_objs, unavailable = _build_metrics(metric_names, dev, log) if todo else ({}, None)
    _record(run_dir, provenance, inverters, pending, unavailable)
    with claim(run_dir, None, wait=True):
        write_provenance(run_dir, provenance)
        write_manifest(run_dir / "dataset_manifest.json", folder.root, entries)
    if len(todo) < len(mine):
        log(f"resuming: {len(mine) - len(todo)} of {len(mine)} batches already stored in {run_dir}")
    world_size_threads(world, dev)
    group = _init_group(world, dev)  # every rank joins, also one with nothing left to do
    try:
        if todo:
            done_here = _run_batches(run_dir, folder, batch_size, todo, pending, inverters, metric_objs, unavailable,
                                     save_images, _true_latents(data_root), progress and rank == 0, dom.name)
            log(f"computed {done_here} (method, batch) unit(s) in this process"
                + ("" if world == 1 else f" (rank {rank} of {world})"))
        if group:
            dist.barrier()
    finally:
        if group:
            dist.destroy_process_group()
    if bad and rank == 0:
        log(f"skipped {len(bad)} of {len(entries)} input files ({_reasons(bad)}); each is listed with its reason "
            f"in {run_dir / 'dataset_manifest.json'} (`restyle-lab summary {run_dir}` lists them)")
    return run_dir


def _metric_names(dom, metrics) -> list[str]:
    names = list(dom.metrics() if metrics is None else metrics)
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise UsageError(f"unknown metric(s) {unknown}; known: {', '.join(METRICS)}")
    return names


def _record(run_dir, provenance: dict, inverters, pending: dict, unavailable) -> None:
    """Add what building the pending methods and metrics revealed to ``provenance``, refusing (before any
    write) a store whose rows were made by different methods or with other metrics available."""
    derived = {m: _derived(inverters[m]) for m, todo in pending.items() if todo}
    check_provenance(run_dir, {**provenance, "methods": {m: {**provenance["methods"][m], **d}
                                                         for m, d in derived.items()}})
    for m, d in derived.items():
        provenance["methods"][m].update(d)
    if unavailable is None:
        return
    stored = (stored_provenance(run_dir) or {}).get("metrics_unavailable")
    if stored is not None and sorted(stored) != sorted(unavailable):
        raise StoreError(f"{run_dir}: metrics unavailable when its rows were computed: {sorted(stored) or 'none'}; "
                         f"now: {sorted(unavailable) or 'none'}. Its rows are kept; evaluate into a new --out so "
                         "one table never mixes the two")
    provenance["metrics_unavailable"] = unavailable


def _build_metrics(names, dev, log) -> tuple[dict, dict]:
    """(name -> metric, name -> why it is unavailable); an unavailable metric is recorded on every row."""
    objs, unavailable = {}, {}
    for m in names:
        try:
            objs[m] = build_metric(m, dev)
        except MetricUnavailable as err:
            unavailable[m] = err.reason
            log(f"metric {m} unavailable: {err.reason}")
    return objs, unavailable


def _derived(inverter) -> dict:
    described = inverter.describe()
    return {k: described[k] for k in DERIVED_KEYS if k in described}


def _run_batches(run_dir, folder, batch_size, todo, pending, inverters, metric_objs, unavailable, save_images,
                 truth, show, label):
    """Every batch of ``todo`` not held by another process, then those (once free, if left undone);
    returns how many (method, batch) units this process computed."""
    held_elsewhere, computed = [], 0
    for b in tqdm(todo, desc=f"evaluate {label}", unit="batch", disable=not show):
        with claim(run_dir, b) as mine:
            if mine:
                computed += _one_batch(run_dir, folder, batch_size, b, pending, inverters, metric_objs, unavailable,
                                       save_images, truth)
            else:
                held_elsewhere.append(b)
    for b in held_elsewhere:  # another process is on them: wait, then do what it left undone
        with claim(run_dir, b, wait=True):
            computed += _one_batch(run_dir, folder, batch_size, b, pending, inverters, metric_objs, unavailable,
                                   save_images, truth)
    return computed


def _one_batch(run_dir, folder, size, b, pending, inverters, metric_objs, unavailable, save_images, truth):
    methods = [m for m, bs in pending.items() if b in bs and not unit_done(run_dir, m, b)]
    if not methods:
        return 0
    start = b * size
    (indices, images, records), = folder.batches(size, start, start + size)
    errors = [(r.name, start + k, r.status) for k, r in enumerate(records) if r.status != "ok"]
    if errors:
        write_errors(run_dir, b, pd.DataFrame(errors, columns=ERROR_COLUMNS))
    if images is None:
        for m in methods:  # an empty part marks the unit done: every file of this batch is unreadable
            write_part(run_dir, m, b, pd.DataFrame(columns=COLUMNS))
        return len(methods)
    names = [folder.names[i] for i in indices]
    prepared = {m: obj.prepare(images) for m, obj in metric_objs.items()}
    gt = torch.stack([truth[n] for n in names]) if truth and all(n in truth for n in names) else None
    for m in methods:
        trace = inverters[m].invert(images)
        keep_images = save_images and trace.start_image is not None
        write_latents(run_dir, m, b, names, [s.step for s in trace.steps],
                      np.stack([s.latent.numpy() for s in trace.steps]),
                      np.stack([to_uint8(s.image) for s in trace.steps]) if save_images else None,
                      to_uint8(trace.start_image) if keep_images else None,
                      trace.start_latent.numpy() if trace.start_latent is not None else None)
        write_part(run_dir, m, b, trace_rows(trace, names, indices, metric_objs, prepared, unavailable, gt))
    return len(methods)


def _reasons(entries: list[dict]) -> str:
    counts = {}
    for e in entries:
        reason = e["status"].removeprefix("error: ").split(":")[0]
        counts[reason] = counts.get(reason, 0) + 1
    return ", ".join(f"{reason}: {n}" for reason, n in sorted(counts.items()))


# ------------------------------------------------------------------ distributed helpers

def dist_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment (0, 1, 0 when absent)."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))


def world_size_threads(world: int, dev) -> None:
    """CPU processes on one machine share its cores instead of each taking all of them."""
    if world > 1 and dev.type == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // int(os.environ.get("LOCAL_WORLD_SIZE", world))))


def _init_group(world, dev):
    if world <= 1:
        return False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return True


__all__ = ["evaluate", "Inverters", "method_identity", "trace_rows"]
