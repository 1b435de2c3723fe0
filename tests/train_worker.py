"""A tiny encoder training run in its own process (a test's subprocess, or one rank under torchrun).

python tests/train_worker.py OUT_DIR GENERATOR FAMILY STEPS BATCH ACCUMULATE
Random weights at reduced widths: only the mechanics are checked (resume, ranks), never a metric.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tiny_training import tiny_config, tiny_images  # noqa: E402

from restyle_lab.training import distributed  # noqa: E402
from restyle_lab.training.data import ArraySource  # noqa: E402
from restyle_lab.training.encoder import train_encoder  # noqa: E402


def main(out_dir, generator, family, steps, batch, accumulate):
    torch.set_num_threads(1)
    cfg = tiny_config(family, generator, max_steps=int(steps), batch_size=int(batch), accumulate=int(accumulate))
    ranks = distributed.start(torch.device("cpu"))
    train_encoder(cfg, out_dir, ArraySource(tiny_images(16)), ranks=ranks, log=lambda *a: None)
    distributed.finish(ranks)


if __name__ == "__main__":
    main(*sys.argv[1:])
