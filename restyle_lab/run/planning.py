"""What a ``reproduce`` run will cost, before it starts: images x methods x steps still to compute, and a
time estimate from a short timing probe of each method on the user's device.

The probe times each method that still has work on a few test images, with the inverters and the timing
protocol the evaluation uses (warm-up excluded, device synchronised; read as a figure's timing pass reads its
traces, ``inversion.timing.first_and_step``): ReStyle and naive iterations for 2
steps, single passes once, optimisations for 3 steps (step 1 carries the set-up and, for a hybrid, its
encoder; steps 2-3 give the cost of one more step).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..facts.devices import device_name, parse_device, weights_and_compute
from ..inversion.build import Inverters
from ..inversion.timing import first_and_step
from ..inversion.units import plan
from ..records.data import image_folder_for_domain

# on a CPU, a method is probed a second time at its own batch when the first probe says that takes at most this
CHEAP_PROBE_SECONDS = 10.0


@dataclass
class MethodCost:
    store: str
    method: str
    kind: str
    images: int  # the images it inverts (all, or its seeded subset)
    of_images: int  # the test set's size
    steps: int  # iterations or optimiser steps per image
    remaining: int  # images still to compute
    batch_size: int
    first_seconds: float | None = None  # per image: set-up (and a hybrid's encoder) plus the first step
    step_seconds: float | None = None  # per image per further step

    @property
    def seconds(self) -> float | None:
        if self.remaining == 0:
            return 0.0
        if self.step_seconds is None:
            return None
        return self.remaining * (self.first_seconds + (self.steps - 1) * self.step_seconds)


def method_costs(labs: list, probe: bool = True, probe_images: int | None = None, log=print) -> list[MethodCost]:
    """The cost of every method the Labs' notebooks run, one row per (store, method); ``probe``: time the
    methods that still have work (``probe_images`` images: default the method's batch on a GPU, where time per
    image depends on it, and on a CPU 1 image, then the batch where that is cheap; see ``_probe``)."""
    stores = {}  # a method's store, shared by every notebook that runs it, with the images each asks for
    for lab in (lab for lab in labs if lab.inverts):
        entries = lab.entries()
        for name, spec in lab.specs().items():
            entry = stores.setdefault(str(lab.store(spec)), {"lab": lab, "spec": spec, "missing": set(), "n": 0})
            work = plan(lab.store(spec), {name: spec}, entries, lab.batch_size(spec), log=lambda *a: None)
            entry["missing"] |= {entries[i]["name"] for g in work.groups for b, c in enumerate(g.chunks)
                                 if b not in g.stored for i in c}
            entry["n"] = max(entry["n"], len(work.wanted[name]))
    costs, measured, nets = [], {}, {}  # probe times and networks shared by every store
    for store, entry in stores.items():
        lab, spec = entry["lab"], entry["spec"]
        n = lab.params.n_images
        row = MethodCost(store, spec.name, spec.kind, entry["n"], n, spec.total_steps, len(entry["missing"]),
                         lab.batch_size(spec))
        if probe and row.remaining:
            folder = image_folder_for_domain(lab.data_root, lab.domain, limit=n)
            specs = {**{m: lab.spec(m) for m in spec.needs()}, spec.name: spec}
            _probe(lab, folder, specs, {spec.name: row}, probe_images, log, measured, nets)
        costs.append(row)
    return costs


def _probe(lab, folder, specs, rows, probe_images, log, measured: dict, nets: dict) -> None:
    """Time each method with work to do on a few images; ``measured`` keeps the times by method and
    settings, so a method two stores share (other image counts) is probed once. On a CPU a method is timed
    on 1 image, then again at its own batch where that costs at most ``CHEAP_PROBE_SECONDS``: a small
    generator's steps cost less per image in a batch (the 64 px projector: 3x from 1 image to 32)."""
    p = lab.params
    dev = parse_device(p.device)
    k = probe_images or (max(r.batch_size for r in rows.values()) if dev.type == "cuda" else 1)
    _, x, _ = folder.load_batch(list(range(min(k, len(folder)))))
    if x is None:
        return
    todo = [m for m in rows if rows[m].remaining]
    weights, compute = weights_and_compute(p.dtype)
    keys = {m: _probe_key(specs, m, lab, probe_images or rows[m].batch_size) for m in todo}
    new = [m for m in todo if keys[m] not in measured]
    if new:
        log(f"timing probe on {device_name(dev)}: {len(new)} method(s), {x.shape[0]} image(s) each ...")

    def timed(m, images):
        probe = {m: specs[m].probe_spec()}
        probe.update({other: specs[other] for other in specs[m].needs()})  # they run all their steps, as evaluated
        steps = Inverters(probe, dev, weights, lab.domain, nets, compute=compute, impl=p.impl)[m].invert(images).steps
        return first_and_step(steps, specs[m].setup_in_first_step)

    for m in new:
        first, step = measured[keys[m]] = timed(m, x)
        batch = min(rows[m].batch_size, len(folder))
        # the probe at the batch: a warm-up pass and the timed one, each first + (steps - 1) * step per image
        cost = 2 * batch * (first + (specs[m].probe_spec().total_steps - 1) * step)
        if probe_images is None and batch > x.shape[0] and cost <= CHEAP_PROBE_SECONDS:
            _, xb, _ = folder.load_batch(list(range(batch)))
            if xb is not None:
                log(f"timing probe of {m} again at its batch ({xb.shape[0]} images): it costs little here")
                measured[keys[m]] = timed(m, xb)
    for m in todo:
        rows[m].first_seconds, rows[m].step_seconds = measured[keys[m]]


def _probe_key(specs: dict, m: str, lab, k: int) -> str:
    """What a probe's time depends on: the method (and those it runs on) without its image subset, the
    device, number format, ops and the batch it stands for."""
    def plain(spec):
        return {key: v for key, v in spec.to_dict().items() if key not in ("images", "subset_seed")}

    parts = [plain(specs[m])] + [plain(specs[other]) for other in specs[m].needs()]
    return json.dumps([parts, lab.params.device, lab.params.dtype, lab.params.impl, k], sort_keys=True, default=str)


def format_plan(costs: list[MethodCost], skipped: dict, device: str, dtype: str, impl: str) -> str:
    """The plan as a table, with the total estimate."""
    lines = []
    for store in dict.fromkeys(c.store for c in costs):
        lines += [f"store {store}", f"  {'method':24s} {'images':>14s} {'steps':>6s} {'to do':>7s} "
                                     f"{'probe s/img/step':>17s} {'estimate':>10s}"]
        for c in (c for c in costs if c.store == store):
            images = f"{c.images}" if c.images == c.of_images else f"{c.images} of {c.of_images}"
            probe = "-" if c.step_seconds is None else f"{c.step_seconds:.4g}"
            lines.append(f"  {c.method:24s} {images:>14s} {c.steps:>6d} {c.remaining:>7d} {probe:>17s} "
                         f"{_duration(c.seconds):>10s}")
    known = [c.seconds for c in costs if c.seconds is not None]
    total = sum(known)
    unknown = list(dict.fromkeys(c.method for c in costs if c.seconds is None))
    batches = sorted({c.batch_size for c in costs})
    lines.append(f"estimated inversion time: {_duration(total)} on {device} (batch {', '.join(map(str, batches))}, "
                 f"{dtype}, {impl} ops)"
                 + (f"; not probed (no estimate): {', '.join(unknown)}" if unknown else ""))
    for name, why in skipped.items():
        lines.append(f"skipped notebook {name}: {why}")
    return "\n".join(lines)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
