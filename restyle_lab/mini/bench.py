"""Seconds per image of each shipped mini encoder: ``python -m restyle_lab.mini.bench``.

Each encoder runs through its inverter (the evaluation's timing protocol: warm-up
excluded, device synchronised, per image); the encoders are timed in interleaved rounds
so that a machine's slow moments hit all of them alike, and the median round is reported.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from ..facts.mini_models import MINI_MODELS
from ..inversion import inverter_for
from ..models.checkpoints import load_network
from ..records.images import from_uint8
from .render import render_batch

# the encoders of the photo generator (the toon encoder answers another question)
ENCODERS = tuple(m.key for m in MINI_MODELS if m.kind == "encoder" and m.decoder == "generator")


def bench(steps: int = 5, batch: int = 8, rounds: int = 15, device: str = "cpu") -> dict:
    inverters = {}
    for model in MINI_MODELS:
        if model.key in ENCODERS:
            net = load_network(model.path, device=device).eval()
            inverters[model.key] = inverter_for(net, steps)
    x = from_uint8(render_batch("test", range(batch)))
    times = {name: [] for name in inverters}
    for _ in range(rounds):
        for name, inverter in inverters.items():
            times[name].append(inverter.invert(x).cumulative_seconds()[-1])
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    print(f"torch threads {torch.get_num_threads()}, device {args.device}, batch {args.batch}, {args.steps} steps "
          f"(single-pass encoders: naive iteration), median of {args.rounds} rounds")
    for name, seconds in bench(args.steps, args.batch, args.rounds, args.device).items():
        print(f"{name:18s} {seconds * 1000:7.2f} ms per image for {args.steps} steps")


if __name__ == "__main__":
    main()
