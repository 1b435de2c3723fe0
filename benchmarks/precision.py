"""Does low precision change the results? ``python benchmarks/precision.py --help``.

Runs the shipped mini ReStyle encoders on the mini test set through ``ReStyleInverter``
in float32 and in each low-precision dtype (autocast), per impl, and prints the mean
reconstruction MSE (images in [-1, 1]) at every step and its relative change against
float32 of the same impl. The issue's target: |change| <= 1% in bf16.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from restyle_lab.facts.mini_models import ASSETS  # noqa: E402
from restyle_lab.inversion import ReStyleInverter  # noqa: E402
from restyle_lab.mini.dataset import write_test_set  # noqa: E402
from restyle_lab.models import set_impl  # noqa: E402
from restyle_lab.models.checkpoints import load_network  # noqa: E402
from restyle_lab.records.images import from_uint8  # noqa: E402


def test_images(n: int) -> torch.Tensor:
    from PIL import Image

    folder = write_test_set(n=n)
    files = sorted(Path(folder).glob("*.png"))[:n]
    return from_uint8(np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files]))


def mean_mse(trace, x) -> list[float]:
    return [((s.image - x) ** 2).mean().item() for s in trace.steps]


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=16, help="mini test images")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--nets", default="restyle_psp_mini.pt,restyle_e4e_mini.pt")
    parser.add_argument("--dtype", default="bf16", help="comma list of bf16, fp16")
    parser.add_argument("--impl", default="reference,fast")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    x = test_images(args.n)
    rows = []
    print(f"mini test set, {args.n} images, {args.steps} steps, device {args.device}; mean MSE and change vs float32")
    for file in args.nets.split(","):
        for impl in args.impl.split(","):
            net = set_impl(load_network(ASSETS / file, device=args.device), impl)
            base = mean_mse(ReStyleInverter(net, args.steps).invert(x), x)
            for dtype in args.dtype.split(","):
                low = mean_mse(ReStyleInverter(net, args.steps, dtype=dtype).invert(x), x)
                change = [(b - a) / a for a, b in zip(base, low)]
                rows.append({"net": file, "impl": impl, "dtype": dtype, "mse_float32": base, "mse": low,
                             "change": change})
                steps = " ".join(f"{c * 100:+.3f}%" for c in change)
                print(f"{file:24s} {impl:9s} {dtype:5s} float32 MSE at step {args.steps}: {base[-1]:.5f}, "
                      f"{dtype}: {low[-1]:.5f}; change per step: {steps}")
    return rows


if __name__ == "__main__":
    main()
