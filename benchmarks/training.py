"""Seconds per encoder training iteration: ``python benchmarks/training.py --help``.

One training iteration is what ``restyle-lab train`` does per step: ``n_iters`` ReStyle iterations
(encoder forward, generator forward, loss, backward) and one Ranger step. The default is the faces
setting of the paper's ReStyle-pSp: IR-SE50 at 256 px, the 1024 px generator, 5 iterations, batch 1,
L2 loss (the pretrained loss networks cannot be downloaded here; each adds its own forward and backward).
Seeded random weights: only time is measured. The generator's ops are timed as ``reference`` and
``fast`` in interleaved rounds (the encoder always trains on the reference ops: its fast path is
eval-mode only). Prints one row per setting; ``--out`` appends them to a CSV.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from restyle_lab.facts.configs import TINY, GeneratorConfig  # noqa: E402
from restyle_lab.facts.devices import device_name, parse_device  # noqa: E402
from restyle_lab.models import Generator  # noqa: E402
from restyle_lab.models.checkpoints import save_generator  # noqa: E402
from restyle_lab.training.config import EncoderTrainConfig  # noqa: E402
from restyle_lab.training.data import ArraySource  # noqa: E402
from restyle_lab.training.encoder import EncoderTrainer  # noqa: E402
from restyle_lab.training.presets import encoder_config  # noqa: E402

CONFIGS = {  # name -> (generator config, backbone, input size, domain)
    "faces": (GeneratorConfig(size=1024), "ir_se", 256, "faces"),
    "church": (GeneratorConfig(size=256), "resnet", 256, "church"),
    "tiny": (TINY["tiny-generator"], "ir_se", 64, "mini"),
}
COLUMNS = ["config", "device", "dtype", "batch", "n_iters", "generator_ops", "median_s", "runs_s", "machine", "torch"]


def build(config: str, impl: str, batch: int, n_iters: int, dtype: str, device, generator_path) -> EncoderTrainer:
    gen_cfg, backbone, size, domain = CONFIGS[config]
    enc = encoder_config("restyle_psp", "simple", backbone, gen_cfg, size)
    if config == "tiny":
        enc = TINY["tiny-restyle-psp"]
    cfg = EncoderTrainConfig(family="restyle_psp", encoder=enc, generator=str(generator_path), domain=domain,
                             backbone_init="random", batch_size=batch, n_iters_per_batch=n_iters, lpips_lambda=0.0,
                             max_steps=10 ** 6)
    images = torch.randint(0, 255, (max(batch, 2), size, size, 3), dtype=torch.uint8).numpy()
    return EncoderTrainer(cfg, ArraySource(images), device=device, dtype=dtype, impl=impl, log=lambda *a: None)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="faces", choices=list(CONFIGS))
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bf16", "fp16"])
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--n-iters", type=int, default=5)
    p.add_argument("--impls", default="reference,fast")
    p.add_argument("--rounds", type=int, default=3, help="timed iterations per impl, interleaved (after a warm-up)")
    p.add_argument("--out", help="append the rows to this CSV")
    args = p.parse_args(argv)
    device = parse_device(args.device)
    gen_cfg = CONFIGS[args.config][0]
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        gen = Generator(gen_cfg)
        path = Path(tmp) / "generator.pt"
        save_generator(gen, path, w_avg=gen.style(torch.randn(256, gen_cfg.style_dim)).mean(0).detach())
        del gen
        impls = args.impls.split(",")
        trainers = {i: build(args.config, i, args.batch, args.n_iters, args.dtype, device, path) for i in impls}
    times = {i: [] for i in impls}
    for i in impls:  # warm-up
        trainers[i].step(0)
    for r in range(args.rounds):
        for i in impls:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            trainers[i].step(r + 1)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times[i].append(time.perf_counter() - t0)
    rows = [{"config": args.config, "device": args.device, "dtype": args.dtype, "batch": args.batch,
             "n_iters": args.n_iters, "generator_ops": i, "median_s": round(statistics.median(times[i]), 3),
             "runs_s": " ".join(f"{t:.2f}" for t in times[i]), "machine": device_name(device),
             "torch": torch.__version__} for i in impls]
    print(f"{args.config}: {args.n_iters} ReStyle iterations, batch {args.batch}, {args.dtype} on "
          f"{device_name(device)}")
    for row in rows:
        print(f"  generator ops {row['generator_ops']:9s} {row['median_s']:8.3f} s per training iteration "
              f"(runs: {row['runs_s']})")
    if len(impls) == 2:
        print(f"  ratio {impls[0]} / {impls[1]}: {rows[0]['median_s'] / rows[1]['median_s']:.2f}")
    if args.out:
        new = not Path(args.out).exists()
        with open(args.out, "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            if new:
                writer.writeheader()
            writer.writerows(rows)
    return rows


if __name__ == "__main__":
    main()
