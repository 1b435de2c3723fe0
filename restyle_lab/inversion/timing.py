"""Times measured in one sitting: the seconds a figure plots, every method of it timed in one pass.

A store keeps the seconds measured whenever each of its rows was computed, under whatever load the machine had
then, so a figure that reads them puts methods timed on different days side by side. A figure's time axis comes
from ``time_in_one_sitting`` instead: every method in this process, on one device, after a warm-up pass, in
interleaved rounds (each round runs every method once), the median of the rounds, per image at each method's
own batch (the paper's protocol). An optimisation is timed over a few steps (``MethodSpec.timing_spec``) and
multiplied out to each snapshot's step count (``MethodSpec.timed_steps``); the table says which steps were
timed. The plan's probe (``restyle_lab.run.planning``) reads its traces with the same ``first_and_step``.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import torch

from ..facts.devices import device_name, parse_device, weights_and_compute
from ..facts.domains import get_domain
from ..models.host_memory import reuse_freed_memory
from .build import Inverters

ROUNDS = 3
# the machine columns of a timing table: what its seconds are the seconds of
MACHINE_COLUMNS = ["machine", "device", "threads", "load_average", "date", "dtype", "impl", "torch_version"]
COLUMNS = ["method", "step", "seconds_per_image", "timed", "steps_timed", "batch", "rounds", "warmup",
           *MACHINE_COLUMNS]


def machine(dev, dtype: str, impl: str) -> dict:
    """The machine a timing pass runs on: CPU model or GPU name, device, threads, the 1-minute load average
    when it starts, the date, number format and ops."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {"machine": device_name(dev), "device": str(dev), "threads": torch.get_num_threads(),
            "load_average": round(load, 2), "date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "dtype": dtype,
            "impl": impl, "torch_version": torch.__version__}


def first_and_step(steps, setup_in_first_step: bool) -> tuple[float, float]:
    """(seconds per image of step 1, of each further step) from a trace's recorded steps: step 1 carries the
    set-up (a hybrid: its encoder) where the method's kind says so, else it costs one step."""
    if len(steps) == 1:
        return (steps[0].seconds_per_image,) * 2
    step = sum(s.seconds_per_image for s in steps[1:]) / (steps[-1].step - steps[0].step)
    return (steps[0].seconds_per_image if setup_in_first_step else step), step


def time_in_one_sitting(specs: dict, batches: dict, device: str, dtype: str, impl: str, domain: str,
                        helpers: dict | None = None, rounds: int = ROUNDS, warmup: bool = True,
                        nets: dict | None = None) -> pd.DataFrame:
    """One row per (method, step a figure plots): cumulative seconds per image from one timing pass.

    specs: name -> method spec; batches: name -> the images [B, 3, H, W] it is timed on (B: its batch);
    helpers: specs the methods run on that are not timed themselves (a hybrid's encoder); ``warmup``: an
    untimed first pass of each method (off, with one round, in smoke runs, where times are not results); nets:
    a checkpoint path -> network cache (``Inverters``). ``timed`` is False where a time is multiplied out from
    ``steps_timed``."""
    dev = parse_device(device)
    if dev.type == "cpu":
        reuse_freed_memory()  # as evaluations run (models/host_memory.py)
    weights, compute = weights_and_compute(dtype)
    timed = {m: s.timing_spec() for m, s in specs.items()}
    inverters = Inverters({**(helpers or {}), **timed}, dev, weights, get_domain(domain), nets=nets, compute=compute,
                          impl=impl, warmup=warmup)
    for m in timed:  # built (checkpoints loaded) before anything is timed
        inverters[m]
    when = machine(dev, dtype, impl)
    runs = {m: [] for m in timed}
    for _ in range(rounds):
        for m in timed:  # interleaved: a change of load during the pass touches every method alike
            trace = inverters[m].invert(batches[m].to(dev))  # its first call has the warm-up pass, not timed
            runs[m].append(dict(zip((s.step for s in trace.steps), trace.cumulative_seconds())))
    rows = []
    for m, spec in specs.items():
        measured = {k: float(np.median([r[k] for r in runs[m]])) for k in runs[m][0]}
        for step, seconds, was_timed in spec.timed_steps(measured):
            rows.append([m, step, seconds, was_timed, ", ".join(map(str, measured)), int(batches[m].shape[0]), rounds,
                         warmup, *(when[c] for c in MACHINE_COLUMNS)])
    return pd.DataFrame(rows, columns=COLUMNS)
