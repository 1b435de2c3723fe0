"""Where the time goes: CPU time per operator and fresh memory pages of one unit, ``python benchmarks/op_times.py --help``.

The units are run.py's (``restyle``, ``inverter``, ``generator``, ``encoder``, ``projector``) on the same
seeded networks. After a warm-up, one call runs plain (its CPU time and the minor page faults it
caused, from ``getrusage``) and one under a dispatch mode that times every aten operator with
``time.process_time``; convolutions are split into plain, transposed (``T``) and grouped (``gN``).

CPU time rather than wall time, and one thread by default, because a shared machine's load
inflates CPU time far less than wall time (compare implementations by ratios all the same).
Each page fault is a fresh 4 KB page the kernel zeroes and maps: tens of MB of them per tensor
cost as much as arithmetic (see README.md here).
"""

from __future__ import annotations

import argparse
import collections
import resource
import sys
import time
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from run import WHATS, make_call  # noqa: E402
from setups import CONFIGS, build_net, input_batch, variants  # noqa: E402

from restyle_lab.models.precision import resolve_dtype  # noqa: E402


class OperatorClock(TorchDispatchMode):
    """CPU seconds, calls and minor page faults per aten operator (per shape too, with ``shapes``)."""

    def __init__(self, shapes: bool = False):
        super().__init__()
        self.shapes = shapes
        self.seconds = collections.defaultdict(float)
        self.calls = collections.Counter()
        self.faults = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        faults, start = minor_faults(), time.process_time()
        out = func(*args, **(kwargs or {}))
        spent = time.process_time() - start
        faults = minor_faults() - faults
        key = str(func.overloadpacket).replace("aten.", "")
        if key == "convolution":
            key += (" T" if args[6] else "") + (f" g{args[8]}" if args[8] > 1 else "")
        if self.shapes:
            key += " " + " ".join(str(tuple(a.shape)) for a in args[:2] if isinstance(a, torch.Tensor))
        self.seconds[key] += spent
        self.calls[key] += 1
        self.faults[key] += faults
        return out


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="mini", choices=list(CONFIGS))
    parser.add_argument("--what", default="restyle", choices=list(WHATS))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--impl", default="fast", help="reference or fast")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--steps", type=int, default=1, help="ReStyle steps for restyle / inverter")
    parser.add_argument("--projector-steps", type=int, default=5)
    parser.add_argument("--projector-space", default="w", choices=["w", "w+"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: see the module doc)")
    parser.add_argument("--top", type=int, default=25, help="operators to print")
    parser.add_argument("--shapes", action="store_true", help="one row per operator and input shapes")
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return _report(args)
    finally:
        torch.set_num_threads(threads)


def _report(args) -> dict:
    net = variants(build_net(args.config), [args.impl])[args.impl]
    x = input_batch(net, args.batch)
    call = make_call(args.what, net, x, resolve_dtype(args.dtype), args.steps, args)
    call()  # warm-up (first-call allocations, kept weight statistics)
    faults, start = minor_faults(), time.process_time()
    call()
    total, faults = time.process_time() - start, minor_faults() - faults
    clock = OperatorClock(args.shapes)
    with clock:
        call()
    timed = sum(clock.seconds.values())
    print(f"{args.config} {args.what} batch {args.batch} {args.impl} {args.dtype}, {args.threads} thread(s): "
          f"{total:.3f} s CPU, {faults} minor page faults ({faults * 4 / 1024:.0f} MB)")
    print(f"{'operator':60s} {'ms':>9s} {'share':>6s} {'calls':>6s} {'MB faulted':>10s}")
    for key, seconds in sorted(clock.seconds.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"{key[:60]:60s} {seconds * 1e3:9.1f} {seconds / timed:6.1%} {clock.calls[key]:6d} "
              f"{clock.faults[key] * 4 / 1024:10.0f}")
    print(f"operators in all: {timed:.3f} s CPU in {sum(clock.calls.values())} calls (timed run; the rest of the "
          "plain run's time is Python and autograd between operators)")
    return {"cpu_s": total, "minor_faults": faults, "operators": dict(clock.seconds)}


if __name__ == "__main__":
    main()
