"""The work of an evaluation in units of (method, batch): which images each method inverts, which units
are still to do, and computing them under a lock so concurrent processes never do one twice."""

from __future__ import annotations

import dataclasses
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..errors import DatasetError
from ..files import is_regular
from ..images import to_uint8
from ..metric_names import CUMULATIVE_SECONDS, IDENTITY, LATENT_MSE, SECONDS
from ..metrics import latent_mse
from ..parts import CheckedFiles, UnitRecord
from ..store import (COLUMNS, DONE, ERROR_COLUMNS, IDENTITY_KEYS, MISSING, claim, latents_path, part_path, save_checked,
                     unit_name, unit_state, write_errors, write_latents, write_part)


@dataclass(frozen=True)
class ImageList:
    """The test images (folder indices) a group of methods inverts. key '' is the whole test set;
    's64-0' a subset of 64 drawn with seed 0."""

    key: str
    indices: tuple

    def batch(self, b: int, size: int) -> list[int]:
        return list(self.indices[b * size: (b + 1) * size])

    def n_batches(self, size: int) -> int:
        return -(-len(self.indices) // size)


def image_list(spec, n: int) -> ImageList:
    """All n images, or the seeded subset a spec asks for (``images``, ``subset_seed``)."""
    k = getattr(spec, "images", None)
    if k is None or k >= n:
        return ImageList("", tuple(range(n)))
    chosen = np.random.default_rng(spec.subset_seed).choice(n, size=k, replace=False)
    return ImageList(f"s{k}-{spec.subset_seed}", tuple(int(i) for i in np.sort(chosen)))


@dataclass
class Plan:
    """lists: image-list key -> ImageList; methods: key -> its methods; pending: method -> batches to
    compute (this process's share); mine: method -> this process's share of all batches; expect: the
    unit record each (method, batch) is written with and checked against (empty: not checked)."""

    lists: dict
    methods: dict
    pending: dict
    mine: dict
    expect: dict = field(default_factory=dict)
    readable: set | None = None
    checked: CheckedFiles | None = None

    def record(self, method: str, b: int) -> UnitRecord | None:
        return self.expect.get((method, b))

    @property
    def todo(self) -> int:
        return sum(len(b) for b in self.pending.values())

    @property
    def total(self) -> int:
        return sum(len(b) for b in self.mine.values())


def plan(run_dir, specs: dict, n_images: int, batch_size: int, shard: tuple = (0, 1), log=print,
         names: list | None = None, provenance: dict | None = None, readable: set | None = None) -> Plan:
    """What is left to do in run_dir for this process (``shard`` = (k, n): batches b with b % n == k).

    Given the test set's ``names`` (and ``provenance``: the run's identity; ``readable``: the indices of
    readable images), every stored unit is checked against the one this run would write: a unit made by
    another setup raises StoreError, a damaged one is redone and said so."""
    k, n = shard
    lists, methods, mine, pending, expect = {}, {}, {}, {}, {}
    checked = CheckedFiles(run_dir)
    for name, spec in specs.items():
        images = image_list(spec, n_images)
        lists.setdefault(images.key, images)
        methods.setdefault(images.key, []).append(name)
        mine[name] = [b for b in range(images.n_batches(batch_size)) if b % n == k]
        if names is not None:
            setup = {key: provenance.get(key) for key in IDENTITY_KEYS} if provenance else None
            entry = provenance["methods"].get(name) if provenance else None
            for b in mine[name]:
                wanted = images.batch(b, batch_size)
                expect[(name, b)] = UnitRecord(name, b, batch_size, images.key, tuple(wanted),
                                               tuple(names[i] for i in wanted), setup, entry)
    for name in specs:
        pending[name] = []
        for b in mine[name]:
            state = unit_state(run_dir, name, b, expect.get((name, b)), readable, checked)
            if state not in (DONE, MISSING):
                log(f"redoing {name} batch {b}: its stored unit in {run_dir} is {state}")
            if state != DONE:
                pending[name].append(b)
    if names is not None and Path(run_dir).is_dir():  # an evaluation, not a plan's look (a dry run writes nothing)
        save_checked(run_dir, checked)
    return Plan(lists, methods, pending, mine, expect, readable, checked)


def trace_rows(trace, names, indices, metric_objs, prepared, unavailable, true_latents=None) -> pd.DataFrame:
    """One row per (image, step, metric) of a trace, timing rows included."""
    rows = []
    cumulative = trace.cumulative_seconds()
    for step, total in zip(trace.steps, cumulative):
        for name, idx in zip(names, indices):
            rows.append((name, idx, trace.method, step.step, SECONDS, step.seconds_per_image, "ok"))
            rows.append((name, idx, trace.method, step.step, CUMULATIVE_SECONDS, total, "ok"))
        for metric, obj in metric_objs.items():
            values = obj(step.image, prepared[metric]).tolist()
            for name, idx, v in zip(names, indices, values):
                status = "ok" if np.isfinite(v) else "skipped: no face detected" if metric == IDENTITY \
                    else "skipped: not finite"
                rows.append((name, idx, trace.method, step.step, metric, float(v), status))
        for metric, reason in unavailable.items():
            for name, idx in zip(names, indices):
                rows.append((name, idx, trace.method, step.step, metric, float("nan"), f"unavailable: {reason}"))
        if true_latents is not None:
            for name, idx, v in zip(names, indices, latent_mse(step.latent, true_latents).tolist()):
                rows.append((name, idx, trace.method, step.step, LATENT_MSE, float(v), "ok"))
    return pd.DataFrame(rows, columns=COLUMNS)


def true_latents(data_root) -> dict | None:
    """The known w+ of generated inputs (``restyle-lab sample`` writes them as latents.npz: names [N],
    latents [N, n_styles, D]); any other latents.npz in the folder is refused, naming it."""
    path = Path(data_root) / "latents.npz"
    if not os.path.lexists(path):
        return None
    what = f"{path}: not the true latents `restyle-lab sample` writes beside its images"
    fix = "; move it out of the test folder (or rename it)"
    if not is_regular(path) or not zipfile.is_zipfile(path):
        raise DatasetError(f"{what} ({'not an npz archive' if is_regular(path) else 'not a regular file'}){fix}")
    try:
        with np.load(path, allow_pickle=False) as d:
            names, latents = d["names"], d["latents"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise DatasetError(f"{what} ({type(err).__name__}: {str(err).splitlines()[0][:80] if str(err) else ''})"
                           f"{fix}") from None
    if names.dtype.kind != "U" or names.ndim != 1 or latents.dtype.kind != "f" or latents.ndim != 3 \
            or len(names) != len(latents):
        raise DatasetError(f"{what} (names {names.dtype} {names.shape}, latents {latents.dtype} {latents.shape}; "
                           f"expected names [N] and latents [N, n_styles, dim]){fix}")
    return {str(n): torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32)) for n, w in zip(names, latents)}


class Computer:
    """Computes units: loads a batch once, prepares the metrics once, runs each method still to do on it."""

    def __init__(self, run_dir, folder, batch_size, inverters, metric_objs, unavailable, save_images, truth,
                 provenance: dict | None = None):
        self.run_dir, self.folder, self.size = run_dir, folder, batch_size
        self.inverters, self.metric_objs, self.unavailable = inverters, metric_objs, unavailable
        self.save_images, self.truth, self.provenance = save_images, truth, provenance

    def run(self, plan: Plan, show: bool, label: str) -> int:
        """Every batch of the plan not held by another process, then those (once free, if left undone);
        returns how many units this process computed."""
        work = [(key, b) for key, images in plan.lists.items()
                for b in sorted({b for m in plan.methods[key] for b in plan.pending[m]})]
        held_elsewhere, computed = [], 0
        try:
            for key, b in tqdm(work, desc=f"evaluate {label}", unit="batch", disable=not show):
                with claim(self.run_dir, unit_name(b, key)) as mine:
                    if mine:
                        computed += self.batch(plan, key, b)
                    else:
                        held_elsewhere.append((key, b))
            for key, b in held_elsewhere:  # another process is on them: wait, then do what it left undone
                with claim(self.run_dir, unit_name(b, key), wait=True):
                    computed += self.batch(plan, key, b)
        finally:
            if plan.checked is not None:  # what this process wrote is whole: no need to read it back
                save_checked(self.run_dir, plan.checked)
        return computed

    def batch(self, plan: Plan, key: str, b: int) -> int:
        methods = [m for m in plan.methods[key] if b in plan.pending[m]
                   and unit_state(self.run_dir, m, b, plan.record(m, b), plan.readable, plan.checked) != DONE]
        if not methods:
            return 0
        wanted = plan.lists[key].batch(b, self.size)
        indices, images, records = self.folder.load_batch(wanted)
        errors = [(r.name, i, r.status) for i, r in zip(wanted, records) if r.status != "ok"]
        if errors:
            write_errors(self.run_dir, unit_name(b, key), pd.DataFrame(errors, columns=ERROR_COLUMNS))
        if images is None:
            for m in methods:  # an empty part marks the unit done: every file of this batch is unreadable
                write_part(self.run_dir, m, b, pd.DataFrame(columns=COLUMNS), self._record(plan, m, b))
            return len(methods)
        names = [self.folder.names[i] for i in indices]
        prepared = {m: obj.prepare(images) for m, obj in self.metric_objs.items()}
        truth = self.truth
        gt = torch.stack([truth[n] for n in names]) if truth and all(n in truth for n in names) else None
        for m in methods:
            trace = self.inverters[m].invert(images)
            if gt is not None and tuple(gt.shape) != tuple(trace.steps[0].latent.shape):
                raise DatasetError(f"the true latents in the test folder's latents.npz have shape "
                                   f"{tuple(gt.shape[1:])}, method {m!r} gives {tuple(trace.steps[0].latent.shape[1:])}:"
                                   " they belong to another generator; move that latents.npz out of the folder")
            keep_start = self.save_images and trace.start_image is not None
            record = self._record(plan, m, b)
            write_latents(self.run_dir, m, b, names, [s.step for s in trace.steps],
                          np.stack([s.latent.numpy() for s in trace.steps]),
                          np.stack([to_uint8(s.image) for s in trace.steps]) if self.save_images else None,
                          to_uint8(trace.start_image) if keep_start else None,
                          trace.start_latent.numpy() if trace.start_latent is not None else None, indices, record)
            write_part(self.run_dir, m, b, trace_rows(trace, names, indices, self.metric_objs, prepared,
                                                      self.unavailable, gt), record)
            if plan.checked is not None:
                plan.checked.add(latents_path(self.run_dir, m, b))
                plan.checked.add(part_path(self.run_dir, m, b))
        return len(methods)

    def _record(self, plan: Plan, m: str, b: int) -> UnitRecord | None:
        """The unit's record, with what building the method revealed (its family...) in its entry."""
        record = plan.record(m, b)
        if record is None or self.provenance is None:
            return record
        return dataclasses.replace(record, spec=self.provenance["methods"].get(m, record.spec))
