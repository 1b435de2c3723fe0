"""Milliseconds per image, reference against fast paths, side by side: ``python benchmarks/run.py --help``.

What is timed (seeded random weights, ``benchmarks/setups.py``):

* ``restyle``: N ReStyle steps, the bare loop (``iterate_restyle``), ms per image for all N;
* ``inverter``: the same N steps through ``ReStyleInverter.invert`` (the evaluation path:
  timing, host copies, traces), to compare with the bare loop;
* ``generator``: one generator pass from w+; ``encoder``: one encoder pass on [x, y];
* ``projector``: one projector step (forward, backward, Adam), ms per image per step,
  from the projector's own step clock over ``--projector-steps`` steps.

Protocol: every implementation gets its own copy of the network; each is warmed up
(not recorded), then the implementations run in interleaved rounds so that a machine's
slow moments hit all of them alike; every timed call ends with a device synchronisation.
``--clock cpu`` times the process's CPU time instead of the wall clock (the projector's
own step clock too): with ``--threads 1`` a steadier measure on a loaded machine, where
other processes stretch wall time; with more threads it counts threads waiting.
Reported: median, quartiles, min and max over rounds, per image. Memory: peak allocated
on CUDA (per call); on a CPU peak RSS is per process, so ``--memory`` measures each cell
in a fresh subprocess (one warm-up and one call) and reports its peak RSS.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from setups import CONFIGS, build_net, input_batch, variants  # noqa: E402

from restyle_lab.inversion import Projector, ProjectorConfig, ReStyleInverter  # noqa: E402
from restyle_lab.inversion.loops import average_image, iterate_restyle  # noqa: E402
from restyle_lab.inversion.trace import synchronize  # noqa: E402
from restyle_lab.models.host_memory import reuse_freed_memory  # noqa: E402
from restyle_lab.models.precision import autocast, dtype_name, resolve_dtype  # noqa: E402

WHATS = ("restyle", "inverter", "generator", "encoder", "projector")
COLUMNS = ["timestamp", "host", "cpu", "logical_cores", "gpu", "device", "torch", "threads", "malloc", "config",
           "what", "steps", "batch", "dtype", "impl", "rounds", "median_ms", "p25_ms", "p75_ms", "min_ms", "max_ms",
           "unit", "peak_mem_mb", "mem_kind", "load1_start", "load1_end", "clock"]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: torch.device, malloc: str) -> dict:
    return {"host": socket.gethostname(), "cpu": cpu_model(), "logical_cores": os.cpu_count(),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else "",
            "device": device.type, "torch": torch.__version__, "threads": torch.get_num_threads(), "malloc": malloc}


def make_call(what: str, net, x: torch.Tensor, dtype: torch.dtype, steps: int, args):
    """A no-argument function running one timed unit; returns its own seconds when it times itself, else None."""
    device = x.device
    n = x.shape[0]
    if what == "restyle":
        avg = average_image(net)

        def call():
            with torch.no_grad(), autocast(device, dtype):
                for _ in iterate_restyle(net, x, steps, avg_image=avg):
                    pass
        return call
    if what == "inverter":
        inverter = ReStyleInverter(net, steps, dtype=dtype)
        return lambda: inverter.invert(x) and None
    if what == "generator":
        gen = torch.Generator().manual_seed(2)
        w = (net.latent_avg_rows(n) + 0.5 * torch.randn(n, net.n_styles, net.decoder.style_dim, generator=gen)
             .to(device, x.dtype))

        def call():
            with torch.no_grad(), autocast(device, dtype):
                net.decoder([w], input_is_latent=True, randomize_noise=False)
        return call
    if what == "encoder":
        pair = torch.cat([x, x.flip(0)], 1)

        def call():
            with torch.no_grad(), autocast(device, dtype):
                net.encoder(pair)
        return call
    if what == "projector":
        k = args.projector_steps
        cfg = ProjectorConfig(space=args.projector_space, perceptual=False, mse_weight=1.0, record_at=(k,))
        projector = Projector(net.decoder, net.latent_avg[0], cfg, geometry=net.geometry, dtype=dtype,
                              workers=args.workers)
        return lambda: projector.optimize(x, seeds=range(n)).steps[0].seconds_per_image * n / k
    raise ValueError(f"what must be one of {WHATS}. Got: {what!r}")


def time_call(call, device, clock: str = "wall") -> float:
    """Seconds of one call (its own clock when it reports one), device synchronised; ``clock="cpu"``:
    the process's CPU seconds."""
    synchronize(device)
    if clock == "cpu":
        start = time.process_time()
        call()
        return time.process_time() - start
    start = time.perf_counter()
    own = call()
    synchronize(device)
    return own if own is not None else time.perf_counter() - start


def run_cell(nets: dict, what: str, batch: int, dtype, args, device) -> list[dict]:
    """All implementations of one (what, batch, dtype), interleaved; one row per implementation."""
    load_start = os.getloadavg()[0]
    x = input_batch(next(iter(nets.values())), batch).to(device)
    calls = {impl: make_call(what, net, x, dtype, args.steps, args) for impl, net in nets.items()}
    per_image = {impl: [] for impl in calls}
    peak = {impl: 0.0 for impl in calls}
    for impl, call in calls.items():
        for _ in range(args.warmup):
            time_call(call, device)
    for _ in range(args.rounds):
        for impl, call in calls.items():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            seconds = time_call(call, device, args.clock)
            if args.clock == "cpu" and what == "projector":
                seconds /= args.projector_steps  # the call runs them all; its own clock reports one step
            per_image[impl].append(seconds / batch)
            if device.type == "cuda":
                peak[impl] = max(peak[impl], torch.cuda.max_memory_allocated(device) / 2 ** 20)
    load_end = os.getloadavg()[0]
    rows = []
    for impl, times in per_image.items():
        ms = sorted(t * 1000 for t in times)
        q = statistics.quantiles(ms, n=4, method="inclusive") if len(ms) > 1 else [ms[0]] * 3
        rows.append({"what": what, "steps": args.steps if what in ("restyle", "inverter") else
                     (args.projector_steps if what == "projector" else 1),
                     "batch": batch, "dtype": dtype_name(dtype), "impl": impl, "rounds": args.rounds,
                     "median_ms": statistics.median(ms), "p25_ms": q[0], "p75_ms": q[2], "min_ms": ms[0],
                     "max_ms": ms[-1], "unit": UNITS[what],
                     "peak_mem_mb": round(peak[impl], 1) if device.type == "cuda" else "",
                     "mem_kind": "cuda_max_allocated" if device.type == "cuda" else "",
                     "load1_start": round(load_start, 2), "load1_end": round(load_end, 2), "clock": args.clock})
    return rows


UNITS = {"restyle": "ms/image for all steps", "inverter": "ms/image for all steps", "generator": "ms/image",
         "encoder": "ms/image", "projector": "ms/image/step"}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def single(args, device) -> None:
    """One cell of one implementation, one warm-up and one call: print its peak RSS as JSON."""
    net = build_net(args.config[0]).to(device)
    nets = variants(net, [args.impl[0]])
    del net
    args.rounds, args.warmup = 1, 1
    run_cell(nets, args.what[0], args.batch[0], resolve_dtype(args.dtype[0]), args, device)
    print(json.dumps({"peak_rss_mb": round(peak_rss_mb(), 1)}))


def rss_in_subprocess(config, what, batch, dtype, impl, args) -> float | str:
    cmd = [sys.executable, __file__, "--single", "--config", config, "--what", what, "--batch", str(batch),
           "--dtype", dtype, "--impl", impl, "--steps", str(args.steps), "--projector-steps",
           str(args.projector_steps), "--projector-space", args.projector_space, "--device", args.device,
           "--malloc", args.malloc, "--projector-workers", str(args.workers)] + \
        (["--threads", str(args.threads)] if args.threads else [])
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        return ""
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mb"]


def print_table(rows: list[dict]) -> None:
    ref = {(r["config"], r["what"], r["batch"], r["dtype"]): r["median_ms"] for r in rows if r["impl"] == "reference"}
    print(f"{'config':7s} {'what':9s} {'batch':>5s} {'dtype':7s} {'impl':13s} {'median':>10s} {'IQR':>21s} "
          f"{'ratio':>6s} {'peak MB':>8s}  unit")
    for r in rows:
        base = ref.get((r["config"], r["what"], r["batch"], r["dtype"]))
        ratio = f"{base / r['median_ms']:5.2f}x" if base else ""
        iqr = f"[{r['p25_ms']:.1f}, {r['p75_ms']:.1f}]"
        print(f"{r['config']:7s} {r['what']:9s} {r['batch']:5d} {r['dtype']:7s} {r['impl']:13s} "
              f"{r['median_ms']:10.1f} {iqr:>21s} {ratio:>6s} {str(r['peak_mem_mb']):>8s}  {r['unit']}")


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    listed = lambda s: [v for v in s.split(",") if v]  # noqa: E731
    parser.add_argument("--config", type=listed, default=["mini"], help=f"comma list of {list(CONFIGS)}")
    parser.add_argument("--what", type=listed, default=["restyle"], help=f"comma list of {list(WHATS)}")
    parser.add_argument("--batch", type=lambda s: [int(v) for v in listed(s)], default=[1])
    parser.add_argument("--dtype", type=listed, default=["float32"], help="comma list of float32, bf16, fp16")
    parser.add_argument("--impl", type=listed, default=["reference", "fast"],
                        help="comma list of reference, fast (each optionally +compile: torch.compile on top)")
    parser.add_argument("--steps", type=int, default=5, help="ReStyle steps for restyle / inverter")
    parser.add_argument("--projector-steps", type=int, default=5, help="projector steps per timed call")
    parser.add_argument("--projector-space", default="w", choices=["w", "w+"])
    parser.add_argument("--projector-workers", dest="workers", type=int, default=1,
                        help="projector: the batch in this many parts side by side, one thread each (evaluations "
                             "on a CPU use one per core)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                        help="cpu: process CPU time (steadier on a loaded machine with --threads 1)")
    parser.add_argument("--malloc", default="default", choices=["default", "reuse"],
                        help="reuse: keep freed host memory (restyle_lab.models.host_memory), process-wide")
    parser.add_argument("--memory", action="store_true", help="CPU: peak RSS per cell, each in a subprocess")
    parser.add_argument("--out", default="", help="append rows to this CSV")
    parser.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        return _run(parser, args)
    finally:
        torch.set_num_threads(threads)


def _run(parser, args) -> list[dict]:
    if args.malloc == "reuse" and not reuse_freed_memory():
        parser.error("--malloc reuse needs glibc")
    device = torch.device(args.device)
    if args.single:
        single(args, device)
        return []
    info = machine(device, args.malloc)
    print(f"{info['cpu']} ({info['logical_cores']} logical cores) {info['gpu']}, torch {info['torch']}, "
          f"{info['threads']} threads, malloc {args.malloc}, {args.clock} clock, load {os.getloadavg()[0]:.2f}")
    rows = []
    for config in args.config:
        base = build_net(config).to(device)
        nets = variants(base, args.impl)
        del base
        for what in args.what:
            for batch in args.batch:
                for dtype in args.dtype:
                    cell = run_cell(nets, what, batch, resolve_dtype(dtype), args, device)
                    for r in cell:
                        r.update(info, config=config, timestamp=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
                        if args.memory and device.type == "cpu":
                            r["peak_mem_mb"] = rss_in_subprocess(config, what, batch, dtype, r["impl"], args)
                            r["mem_kind"] = "cpu_peak_rss_subprocess"
                    print_table(cell)
                    rows += cell
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        new = not out.exists()
        with out.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            if new:
                writer.writeheader()
            writer.writerows({k: r.get(k, "") for k in COLUMNS} for r in rows)
        print(f"appended {len(rows)} rows to {out}")
    return rows


if __name__ == "__main__":
    main()
