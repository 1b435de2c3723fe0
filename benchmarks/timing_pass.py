"""What a notebook's timing pass costs (``Lab.time_methods``: every method of its figure timed in one sitting),
at a notebook's settings, on the first images of the domain's test set; no store is read or written. It prints
the pass's wall time and this process's CPU time, and the seconds it measured:

    python benchmarks/timing_pass.py                       # quality_time and fpn_vs_simple, make reproduce's settings
    python benchmarks/timing_pass.py --notebook quality_time --params '{"optim_images": 4, "n_images": 16}'

The CPU time is the load-free part of the cost on a shared machine (wall time counts what others run too).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv=None):
    from restyle_lab.inversion.units import wanted_images
    from restyle_lab.run.lab import Lab

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notebook", action="append", help="quality_time, fpn_vs_simple (default: both)")
    parser.add_argument("--params", default="{}", help="the notebook's parameters, as JSON")
    args = parser.parse_args(argv)
    for name in args.notebook or ["quality_time", "fpn_vs_simple"]:
        lab = Lab.from_parameters(name, None, **json.loads(args.params))
        entries = lab.entries()
        images = {m: list(wanted_images(lab.spec(m), entries)) for m in lab.default_methods()}
        cpu0, wall0, load0 = cpu_seconds(), time.monotonic(), os.getloadavg()[0]
        table = lab.timing_pass(images)
        wall, cpu = time.monotonic() - wall0, cpu_seconds() - cpu0
        print(f"{name}: timing pass of {len(images)} methods: {wall:.1f} s wall, {cpu:.1f} s CPU (this process), "
              f"load average {load0:.2f} -> {os.getloadavg()[0]:.2f}, {table.threads.iloc[0]} threads")
        last = table.groupby("method", sort=False).tail(1)
        for row in last.itertuples():
            print(f"  {row.method:20s} batch {row.batch:3d}  steps timed {row.steps_timed:14s} "
                  f"{row.seconds_per_image:9.4f} s per image at step {row.step}")


if __name__ == "__main__":
    main()
