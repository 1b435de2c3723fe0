"""``evaluate``: invert a test set with several methods and store one row per
(image, method, step, metric), resumable and shardable (see ``restyle_lab.store``).

Methods are plain dicts, e.g.::

    {"name": "restyle_psp", "kind": "restyle", "checkpoint": "restyle_psp.pt", "steps": 5}
    {"name": "psp_naive", "kind": "naive", "checkpoint": "psp.pt", "steps": 5}
    {"name": "psp", "kind": "single", "checkpoint": "psp.pt"}
    {"name": "optim_w", "kind": "optim", "generator": "stylegan2.pt", "space": "w",
     "record_at": [1, 10, 100, 1000]}
    {"name": "hybrid", "kind": "hybrid", "encoder": "restyle_psp", "record_at": [10, 100]}
    {"name": "toon_bootstrap", "kind": "restyle", "checkpoint": "toon.pt", "steps": 5,
     "bootstrap": {"checkpoint": "ffhq.pt", "steps": 1}}
"""

from __future__ import annotations

import os
import platform
import socket
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import __version__
from .checkpoints import load_generator, load_network, sha256_file
from .data import image_folder_for_domain, write_manifest
from .domains import get_domain
from .images import to_uint8
from .inversion import EncoderInverter, HybridInverter, Projector, ProjectorConfig, ReStyleInverter
from .metrics import METRICS, MetricUnavailable, build_metric, latent_mse
from .store import (TIME_METRICS, check_or_write_provenance, git_commit, part_path, write_errors, write_latents,
                    write_part)

KINDS = ("restyle", "naive", "single", "optim", "hybrid")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


class EvaluationError(Exception):
    pass


# ------------------------------------------------------------------ building methods

def _projector_config(spec: dict, space: str) -> ProjectorConfig:
    keys = {"record_at", "lr", "noise_scale", "noise_ramp", "noise_regularize", "mse_weight", "perceptual", "seed"}
    kwargs = {k: spec[k] for k in keys if k in spec}
    if kwargs.get("perceptual") is False and "mse_weight" not in kwargs:
        kwargs["mse_weight"] = 1.0
    return ProjectorConfig(space=space, **kwargs)


def build_inverters(specs: list[dict], device, dtype, domain) -> tuple[dict, dict]:
    """(name -> inverter, name -> description with checkpoint sha256s)."""
    nets, inverters, described = {}, {}, {}

    def net_for(path):
        path = str(path)
        if path not in nets:
            if not Path(path).exists():
                raise EvaluationError(f"checkpoint {path} not found (see README: which files go where)")
            net = load_network(path, device=device, dtype=dtype)
            if tuple(net.geometry.input_hw) != tuple(domain.input_hw):
                raise EvaluationError(f"{path} reads {net.geometry.input_hw} images but domain {domain.name!r} "
                                      f"uses {domain.input_hw}: wrong --domain for this checkpoint?")
            nets[path] = net
        return nets[path]

    for spec in specs:
        name, kind = spec.get("name"), spec.get("kind")
        if kind not in KINDS:
            raise EvaluationError(f"method {name!r}: kind must be one of {KINDS}. Got: {kind!r}")
        if not name or name in inverters or "/" in name:
            raise EvaluationError(f"method names must be unique and contain no '/'. Got: {name!r}")
        desc = dict(spec)
        if kind == "restyle":
            bootstrap = None
            if spec.get("bootstrap"):
                b = spec["bootstrap"]
                bootstrap = (ReStyleInverter(net_for(b["checkpoint"]), 1, name=f"{name}_init"), int(b.get("steps", 1)))
                desc["bootstrap"] = {**b, "sha256": sha256_file(b["checkpoint"])}
            inv = ReStyleInverter(net_for(spec["checkpoint"]), int(spec.get("steps", 5)), name=name, bootstrap=bootstrap)
        elif kind in ("naive", "single"):
            steps = 1 if kind == "single" else int(spec.get("steps", 5))
            inv = EncoderInverter(net_for(spec["checkpoint"]), steps, name=name)
        elif kind == "optim":
            if spec.get("generator"):
                gen, w_avg, _ = load_generator(spec["generator"], device=device, dtype=dtype)
                desc["generator_sha256"] = sha256_file(spec["generator"])
            else:
                net = net_for(spec["checkpoint"])
                gen, w_avg = net.decoder, net.latent_avg.reshape(-1, net.latent_avg.shape[-1])[0]
            inv = Projector(gen, w_avg, _projector_config(spec, spec.get("space", "w")), geometry=domain.geometry,
                            name=name)
            desc["loss"] = inv.loss_name
            desc["perceptual_unavailable"] = inv.unavailable
        else:  # hybrid
            enc = inverters.get(spec.get("encoder"))
            if enc is None or not isinstance(enc, (ReStyleInverter, EncoderInverter)):
                raise EvaluationError(f"hybrid {name!r}: 'encoder' must name an encoder method listed before it")
            projector = Projector(enc.net.decoder, enc.net.latent_avg.reshape(-1, enc.net.latent_avg.shape[-1])[0],
                                  _projector_config(spec, "w+"), geometry=domain.geometry, name=f"{name}_optim")
            inv = HybridInverter(enc, projector, name=name)
            desc["loss"] = projector.loss_name
            desc["perceptual_unavailable"] = projector.unavailable
        if spec.get("checkpoint"):
            desc["checkpoint_sha256"] = sha256_file(spec["checkpoint"])
        if hasattr(inv, "net"):
            desc["family"] = inv.net.family
        inverters[name] = inv
        described[name] = desc
    return inverters, described


# ------------------------------------------------------------------ distributed helpers

def dist_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment (0, 1, 0 when absent)."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))


def _device_for(device: str, local_rank: int) -> torch.device:
    d = torch.device(device)
    if d.type == "cuda" and d.index is None:
        if not torch.cuda.is_available():
            raise EvaluationError("--device cuda asked for, but torch sees no CUDA device")
        d = torch.device("cuda", local_rank % torch.cuda.device_count())
    return d


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
    return pd.DataFrame(rows, columns=["image", "image_index", "method", "step", "metric", "value", "status"])


def _true_latents(data_root) -> dict | None:
    path = Path(data_root) / "latents.npz"
    if not path.exists():
        return None
    d = np.load(path)
    return {str(n): torch.from_numpy(w) for n, w in zip(d["names"], d["latents"])}


# ------------------------------------------------------------------ the loop

def evaluate(run_dir, data_root, methods: list[dict], domain: str = "mini", metrics: list[str] | None = None,
             batch_size: int = 4, n_images: int | None = None, device: str = "cpu", dtype: str = "float32",
             save_images: bool = True, strict: bool = False, progress: bool = True, log=print) -> Path:
    """Run (or resume) an evaluation into ``run_dir``; returns it. Rows: see ``restyle_lab.store``."""
    rank, world, local_rank = dist_env()
    run_dir = Path(run_dir)
    dom = get_domain(domain)
    if dtype not in DTYPES:
        raise EvaluationError(f"dtype must be one of {list(DTYPES)}. Got: {dtype!r}")
    dev = _device_for(device, local_rank)
    if world > 1 and dev.type == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // int(os.environ.get("LOCAL_WORLD_SIZE", world))))
    group = _init_group(world, dev)
    try:
        folder = image_folder_for_domain(data_root, dom, strict=strict, limit=n_images)
        manifest_hash = write_manifest(folder, run_dir / f".dataset_manifest.rank{rank}.json")
        os.replace(run_dir / f".dataset_manifest.rank{rank}.json", run_dir / "dataset_manifest.json")
        inverters, described = build_inverters(methods, dev, DTYPES[dtype], dom)
        metric_names = list(dom.metrics() if metrics is None else metrics)
        metric_objs, unavailable = {}, {}
        for m in metric_names:
            if m not in METRICS:
                raise EvaluationError(f"unknown metric {m!r}; known: {', '.join(METRICS)}")
            try:
                metric_objs[m] = build_metric(m, dev)
            except MetricUnavailable as err:
                unavailable[m] = err.reason
                log(f"metric {m} unavailable: {err.reason}")
        provenance = {
            "domain": dom.name, "data_root": str(Path(data_root).resolve()), "dataset_manifest_sha256": manifest_hash,
            "n_images": len(folder), "methods": described, "metrics": metric_names,
            "metrics_unavailable": unavailable, "batch_size": batch_size, "dtype": dtype, "device_type": dev.type,
            "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_name(),
            "threads": torch.get_num_threads(), "world_size": world, "package_version": __version__,
            "git_commit": git_commit(), "torch_version": torch.__version__, "host": socket.gethostname(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "timing": "warm-up excluded, device synchronised, "
            "seconds per image per step (batch time / batch size)",
        }
        check_or_write_provenance(run_dir, provenance)
        truth = _true_latents(data_root)
        n_batches = (len(folder) + batch_size - 1) // batch_size
        mine = [b for b in range(n_batches) if b % world == rank]
        todo = [b for b in mine if any(not part_path(run_dir, m, b).exists() for m in inverters)]
        if len(todo) < len(mine):
            log(f"resuming: {len(mine) - len(todo)} of {len(mine)} batches already stored in {run_dir}")
        bar = _progress(todo, progress and rank == 0, f"evaluate {dom.name}")
        for b in bar:
            start = b * batch_size
            (indices, images, records), = folder.batches(batch_size, start, start + batch_size)
            errors = [(r.name, start + k, r.status) for k, r in enumerate(records) if r.status != "ok"]
            if errors:
                write_errors(run_dir, b, pd.DataFrame(errors, columns=["image", "image_index", "status"]))
            if images is None:
                for m in inverters:
                    write_part(run_dir, m, b, pd.DataFrame(columns=["image", "image_index", "method", "step",
                                                                    "metric", "value", "status"]))
                continue
            names = [folder.names[i] for i in indices]
            prepared = {m: obj.prepare(images) for m, obj in metric_objs.items()}
            gt = torch.stack([truth[n] for n in names]) if truth and all(n in truth for n in names) else None
            for m, inv in inverters.items():
                if part_path(run_dir, m, b).exists():
                    continue
                trace = inv.invert(images)
                keep_images = save_images and trace.start_image is not None
                write_latents(run_dir, m, b, names, [s.step for s in trace.steps],
                              np.stack([s.latent.numpy() for s in trace.steps]),
                              np.stack([to_uint8(s.image) for s in trace.steps]) if save_images else None,
                              to_uint8(trace.start_image) if keep_images else None,
                              trace.start_latent.numpy() if trace.start_latent is not None else None)
                rows = trace_rows(trace, names, indices, metric_objs, prepared, unavailable, gt)
                write_part(run_dir, m, b, rows)
        if group:
            torch.distributed.barrier()
    finally:
        if group:
            torch.distributed.destroy_process_group()
    return run_dir


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} logical cores)"
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def _init_group(world, dev):
    if world <= 1:
        return False
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return True


def _progress(items, enabled, desc):
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="batch")


__all__ = ["evaluate", "build_inverters", "trace_rows", "KINDS", "TIME_METRICS"]
