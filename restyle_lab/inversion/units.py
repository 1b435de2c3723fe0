"""The work of an evaluation in units of (method, batch): which images each method inverts, which of them
are stored already (by name and content: those are read back), how the others are batched, and computing
them under a lock so concurrent processes never do one twice."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..facts.errors import DatasetError
from ..facts.metric_names import CUMULATIVE_SECONDS, IDENTITY, LATENT_MSE, SECONDS
from ..facts.progress import Progress
from ..metrics import latent_mse
from ..records.files import is_regular
from ..records.images import to_uint8
from ..records.parts import COLUMNS, CheckedFiles, UnitRecord, unit_name
from ..records.store import (
    DONE,
    ERROR_COLUMNS,
    IDENTITY_KEYS,
    MISSING,
    claim,
    images_held,
    latents_path,
    manifest_shas,
    part_path,
    save_checked,
    stored_unit_images,
    stored_units,
    unit_state,
    write_errors,
    write_latents,
    write_part,
)


@dataclass(frozen=True)
class ImageList:
    """The test images (folder indices) a method inverts: all of them, or the seeded subset its spec asks
    for (``images``, ``subset_seed``: the optimisation baselines at real size)."""

    indices: tuple


def image_list(spec, n: int) -> ImageList:
    """All n images, or the seeded subset a spec asks for (``images``, ``subset_seed``)."""
    k = getattr(spec, "images", None)
    if k is None or k >= n:
        return ImageList(tuple(range(n)))
    chosen = np.random.default_rng(spec.subset_seed).choice(n, size=k, replace=False)
    return ImageList(tuple(int(i) for i in np.sort(chosen)))


def wanted_images(spec, entries: list) -> list[int]:
    """The folder indices a method inverts: its ``image_list`` among the readable ``entries`` (manifest entries
    in folder order). What a method's rows are read for is exactly this (``Lab.evaluate``)."""
    return [i for i in image_list(spec, len(entries)).indices if entries[i].get("status") == "ok"]


@dataclass(frozen=True)
class Group:
    """Methods that still need the same images, and how they are split into units: ``chunks`` of image
    indices, batch b of them stored as unit ``unit_name(b, key)`` of each method."""

    key: str
    methods: tuple
    chunks: tuple
    stored: frozenset = frozenset()  # batches every method has a unit of already (this request's, by its name)

    def unit(self, b: int) -> str:
        return unit_name(b, self.key)


@dataclass
class Plan:
    """groups: the work, by the images it needs; pending: group index -> its batches this process
    computes (its shard); wanted: method -> the images it was asked for; held: method -> image name ->
    the stored unit already holding it; expect: (method, unit) -> the record a computed unit gets."""

    groups: list
    pending: dict
    wanted: dict
    held: dict
    expect: dict = field(default_factory=dict)
    readable: set | None = None
    checked: CheckedFiles | None = None

    def record(self, method: str, unit: str) -> UnitRecord | None:
        return self.expect.get((method, unit))

    @property
    def todo(self) -> int:
        """(method, unit) pairs this process computes."""
        return sum(len(self.groups[g].methods) * len(bs) for g, bs in self.pending.items())

    @property
    def missing(self) -> dict:
        """method -> how many of its images are still to compute (all shards)."""
        out = {m: 0 for m in self.wanted}
        for g in self.groups:
            for m in g.methods:
                out[m] = sum(len(c) for b, c in enumerate(g.chunks) if b not in g.stored)
        return out


def plan(run_dir, specs: dict, entries: list, batch_size: int, shard: tuple = (0, 1), log=print,
         provenance: dict | None = None) -> Plan:
    """What is left to do in run_dir for this process (``shard`` = (k, n): batches b with b % n == k).

    ``entries``: the test set's manifest entries (name, sha256, status), in folder order. Each method wants
    its images (``image_list``) among the readable ones; those it has stored already with the same content
    are read back, the others are split into batches. Methods needing the same images share the batches (an
    image is read once for all of them). Every stored unit is checked against this run (``provenance``): one
    made by another setup raises StoreError, a damaged one is set aside (its files removed) and its images
    computed again, and said so."""
    k, n = shard
    names = [e["name"] for e in entries]
    shas = [e.get("sha256") for e in entries]
    readable = {i for i, e in enumerate(entries) if e.get("status") == "ok"}
    current = dict(zip(names, shas))
    setup = {key: provenance.get(key) for key in IDENTITY_KEYS} if provenance else None
    checked = CheckedFiles(run_dir)
    manifest = manifest_shas(run_dir)  # the contents of parts written before records kept them
    wanted, held, needs, requests, others = {}, {}, {}, {}, {}
    for name, spec in specs.items():
        entry = provenance["methods"].get(name) if provenance else None
        _set_aside_damaged(run_dir, name, setup, entry, readable, checked, log)
        wanted[name] = wanted_images(spec, entries)
        requests[name] = _key([[names[i], shas[i]] for i in wanted[name]] + [batch_size])
        units = stored_unit_images(run_dir, name, manifest)
        held[name] = images_held(units, current)
        # what this same request stored (another process on it, or an earlier try) is not subtracted: every
        # process making the request then lays out the same batches, and the batch locks share them out
        others[name] = [u for u in units if u.request != requests[name]]
        other = images_held(others[name], current)
        needs[name] = tuple(i for i in wanted[name] if names[i] not in other)
    groups, pending, expect = [], {}, {}
    for need in dict.fromkeys(v for v in needs.values() if v):
        methods = tuple(m for m in specs if needs[m] == need)
        first_fill = not any(others[m] for m in methods)
        key = "" if first_fill else _key([[names[i], shas[i]] for i in need] + [batch_size])
        chunks = tuple(tuple(need[c:c + batch_size]) for c in range(0, len(need), batch_size))
        stored = frozenset(b for b in range(len(chunks))
                           if all(part_path(run_dir, m, unit_name(b, key)).exists() for m in methods))
        group = Group(key, methods, chunks, stored)
        pending[len(groups)] = [b for b in range(len(chunks)) if b % n == k and b not in stored]
        groups.append(group)
        for m in methods:
            entry = provenance["methods"].get(m) if provenance else None
            for b, chunk in enumerate(chunks):
                expect[(m, group.unit(b))] = UnitRecord(m, b, batch_size, key, chunk, tuple(names[i] for i in chunk),
                                                        setup, entry, tuple(shas[i] for i in chunk),
                                                        requests[m])
    if provenance is not None and Path(run_dir).is_dir():  # an evaluation, not a plan's look (a dry run)
        save_checked(run_dir, checked)
    return Plan(groups, pending, wanted, held, expect, readable, checked)


def _key(value) -> str:
    return hashlib.sha256(json.dumps(value).encode()).hexdigest()[:8]


def _set_aside_damaged(run_dir, method: str, setup, entry, readable, checked, log) -> None:
    """Check every stored unit of a method against this run's setup and method (StoreError when another
    made it); remove a damaged one, saying so: the images it held are computed again."""
    expected = UnitRecord(method, 0, 0, "", (), (), setup, entry) if setup is not None else None
    for unit in stored_units(run_dir, method):
        state = unit_state(run_dir, method, unit, expected, readable, checked)
        if state not in (DONE, MISSING):
            log(f"redoing {method} batch {int(unit[1:7])} (its images): its stored unit {unit} in {run_dir} is "
                f"{state}")
            for path in (part_path(run_dir, method, unit), latents_path(run_dir, method, unit)):
                path.unlink(missing_ok=True)


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
        returns how many (method, unit) pairs this process computed. Progress counts images per method
        (the optimisation baselines move with their steps) on a bar and, for ``reproduce``, in its file."""
        work = [(g, b) for g, batches in plan.pending.items() for b in batches]
        total = sum(len(plan.groups[g].chunks[b]) * len(plan.groups[g].methods) for g, b in work)
        held_elsewhere, computed = [], 0
        with Progress(f"evaluate {label}", total, "image", show=show) as self.progress:
            try:
                for g, b in work:
                    with claim(self.run_dir, plan.groups[g].unit(b)) as mine:
                        if mine:
                            computed += self.batch(plan, g, b)
                        else:
                            held_elsewhere.append((g, b))
                for g, b in held_elsewhere:  # another process is on them: wait, then do what it left undone
                    with claim(self.run_dir, plan.groups[g].unit(b), wait=True):
                        computed += self.batch(plan, g, b)
            finally:
                if plan.checked is not None:  # what this process wrote is whole: no need to read it back
                    save_checked(self.run_dir, plan.checked)
        return computed

    def _invert(self, m: str, images, what: str):
        """One method on one batch, its steps counted in the progress as fractions of its images."""
        progress, moved = self.progress, [0.0]
        progress.describe(f"{m} {what}")

        def step(done, total, k):
            moved[0] += k / total
            progress.advance(k / total)

        inverter = self.inverters[m]
        inverter.observe(step)
        try:
            trace = inverter.invert(images)
        finally:
            inverter.observe(None)
        progress.advance(images.shape[0] - moved[0])
        return trace

    def batch(self, plan: Plan, g: int, b: int) -> int:
        group = plan.groups[g]
        unit = group.unit(b)
        methods = [m for m in group.methods
                   if unit_state(self.run_dir, m, unit, plan.record(m, unit), plan.readable, plan.checked) != DONE]
        if not methods:
            return 0
        wanted = list(group.chunks[b])
        indices, images, records = self.folder.load_batch(wanted)
        errors = [(r.name, i, r.status) for i, r in zip(wanted, records) if r.status != "ok"]
        if errors:  # a file that changed or vanished since the run listed it
            write_errors(self.run_dir, unit, pd.DataFrame(errors, columns=ERROR_COLUMNS))
        if images is None:
            for m in methods:  # an empty part marks the unit done: every file of this batch is unreadable
                write_part(self.run_dir, m, unit, pd.DataFrame(columns=COLUMNS), self._record(plan, m, unit))
            return len(methods)
        names = [self.folder.names[i] for i in indices]
        prepared = {m: obj.prepare(images) for m, obj in self.metric_objs.items()}
        truth = self.truth
        gt = torch.stack([truth[n] for n in names]) if truth and all(n in truth for n in names) else None
        what = f"images {wanted[0]}-{wanted[-1]}" if len(wanted) > 1 else f"image {wanted[0]}"
        for m in methods:
            trace = self._invert(m, images, what)
            if gt is not None and tuple(gt.shape) != tuple(trace.steps[0].latent.shape):
                raise DatasetError(f"the true latents in the test folder's latents.npz have shape "
                                   f"{tuple(gt.shape[1:])}, method {m!r} gives {tuple(trace.steps[0].latent.shape[1:])}:"
                                   " they belong to another generator; move that latents.npz out of the folder")
            keep_start = self.save_images and trace.start_image is not None
            record = self._record(plan, m, unit)
            if record is not None:  # what the latents hold, so that a file cut later is found
                record = dataclasses.replace(record, latent_shape=tuple(trace.steps[0].latent.shape[1:]))
            write_latents(self.run_dir, m, unit, names, [s.step for s in trace.steps],
                          np.stack([s.latent.numpy() for s in trace.steps]),
                          np.stack([to_uint8(s.image) for s in trace.steps]) if self.save_images else None,
                          to_uint8(trace.start_image) if keep_start else None,
                          trace.start_latent.numpy() if trace.start_latent is not None else None, indices, record)
            write_part(self.run_dir, m, unit, trace_rows(trace, names, indices, self.metric_objs, prepared,
                                                         self.unavailable, gt), record)
            if plan.checked is not None:
                plan.checked.add(latents_path(self.run_dir, m, unit))
                plan.checked.add(part_path(self.run_dir, m, unit))
        return len(methods)

    def _record(self, plan: Plan, m: str, unit: str) -> UnitRecord | None:
        """The unit's record, with what building the method revealed (its family...) in its entry."""
        record = plan.record(m, unit)
        if record is None or self.provenance is None:
            return record
        return dataclasses.replace(record, spec=self.provenance["methods"].get(m, record.spec))
