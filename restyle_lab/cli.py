"""The ``restyle-lab`` command. Heavy imports happen inside each command so ``--help`` is instant."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DESCRIPTION = """\
restyle-lab: ReStyle / pSp / e4e StyleGAN inversion on CPU or GPU, and the ReStyle paper's analyses.

common tasks:
  restyle-lab invert --checkpoint restyle_psp_ffhq_encode.pt --images photos/ --out inverted/
  restyle-lab evaluate --domain mini --data DIR --out runs/x --method restyle:ckpt.pt:5 --method single:psp.pt
  restyle-lab reproduce                 regenerate every figure on the embedded mini domain
  restyle-lab train --preset mini-restyle-psp      retrain one of the shipped mini models
Run `restyle-lab <command> --help` for the options of each command.
"""

DEFAULT_RECORD_AT = (1, 10, 50, 100, 250, 500, 1000)


def _add_device(p):
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"], help="compute precision")
    p.add_argument("--batch-size", type=int, default=4, help="images per batch (default: 4)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="restyle-lab", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="<command>")

    p = sub.add_parser("invert", help="invert images with one checkpoint; save per-step images and latents",
                       description="Invert a folder of images (or one image) with a ReStyle, pSp or e4e checkpoint. "
                       "Writes OUT/inference_results/<step>/<image>.png, OUT/latents.npy (the official layout: "
                       "{name: [w+ per step]}), OUT/latents.npz and, with --coupled, side-by-side strips in "
                       "OUT/inference_coupled/.")
    p.add_argument("--checkpoint", required=True, help="an official or restyle-lab checkpoint (.pt)")
    p.add_argument("--images", required=True, help="a folder of images (searched recursively) or one image file")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--steps", type=int, default=5, help="ReStyle iterations, or naive iterations of a "
                   "single-pass encoder (default: 5; 1 = a single pass)")
    p.add_argument("--coupled", action="store_true", help="also save input | step 1 | ... | step N strips")
    p.add_argument("--full-size", action="store_true", help="save generator-resolution images instead of the "
                   "pooled 256 px ones")
    p.add_argument("--strict", action="store_true", help="stop at the first unreadable image instead of skipping it")
    _add_device(p)

    p = sub.add_parser("evaluate", help="invert a test set with several methods; store per-step metrics",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Invert a test set with every method and write one row per (image, method, "
                       "step, metric) to Parquet parts in --out, with per-step latents and a provenance sidecar.\n"
                       "Resumable: run the same command again after an interruption. Shardable: start it with "
                       "`torchrun --nproc_per_node=N -m restyle_lab.cli evaluate ...`.",
                       epilog="method syntax: [NAME=]KIND:ARG[:STEPS]\n"
                       "  restyle:CKPT[:STEPS]   ReStyle iterations (default 5)\n"
                       "  single:CKPT            a single pass of a pSp / e4e encoder\n"
                       "  naive:CKPT[:STEPS]     that encoder fed its own output STEPS times\n"
                       "  optim:w|w+[:STEPS]     the Karras et al. projector (--generator, else the decoder of "
                       "the first checkpoint)\n"
                       "  hybrid:METHOD[:STEPS]  the projector started from METHOD's inversion (w+)\n"
                       "For anything else give --methods-json (a list of dicts, see restyle_lab.evaluate).")
    p.add_argument("--data", required=True, help="folder of test images")
    p.add_argument("--out", required=True, help="run directory (created; reused to resume)")
    p.add_argument("--domain", default="mini", help="faces, cars, wild, church, horse, toonify or mini")
    p.add_argument("--method", action="append", default=[], help="a method (repeatable), see below")
    p.add_argument("--methods-json", help="JSON file with a list of method dicts")
    p.add_argument("--generator", help="generator file for optim methods")
    p.add_argument("--metrics", help="comma-separated metric names (default: the domain's)")
    p.add_argument("--n-images", type=int, help="only the first N images (after the domain's subset rule)")
    p.add_argument("--no-save-images", action="store_true", help="store latents only, not per-step images")
    p.add_argument("--strict", action="store_true", help="stop at the first unreadable image instead of skipping it")
    _add_device(p)

    p = sub.add_parser("export-latents", help="write a stored method's latents in the official latents.npy layout")
    p.add_argument("run_dir")
    p.add_argument("method")
    p.add_argument("out", help="output .npy path")

    p = sub.add_parser("summary", help="print mean metrics per method and step of a run directory")
    p.add_argument("run_dir")

    p = sub.add_parser("info", help="describe a checkpoint: family, architecture, options the loader filled in")
    p.add_argument("checkpoint")

    p = sub.add_parser("mini-data", help="render the mini domain's test set into a folder")
    p.add_argument("--n", type=int, default=100, help="number of test faces (default: 100)")
    p.add_argument("--style", default="photo", choices=["photo", "toon"])
    p.add_argument("--out", help="folder (default: ~/.cache/restyle-lab/mini/...)")

    p = sub.add_parser("train", help="retrain one of the shipped mini-domain models",
                       description="Train a shipped mini model from its preset. Resumable: run the same command "
                       "again to continue from the last checkpoint in --workdir.")
    p.add_argument("--preset", required=True, help="preset name (`restyle-lab train --preset list` lists them)")
    p.add_argument("--workdir", default=".train", help="where training states go (default: .train)")
    p.add_argument("--max-minutes", type=float, help="stop (resumably) after this many minutes")
    p.add_argument("--iters", type=int, help="override the preset's iteration count (smoke runs)")
    p.add_argument("--export", help="write the final model here (default: only the training state)")
    p.add_argument("--smoke", action="store_true", help="a tiny training set (CI smoke runs with --iters 2)")

    p = sub.add_parser("reproduce", help="regenerate the paper's figures and tables (papermill)",
                       description="Run every analysis notebook through papermill into results/<domain>/ "
                       "(executed notebooks, PNG/PDF figures, CSV/Parquet tables, index.md).")
    p.add_argument("--domain", default="mini")
    p.add_argument("--only", action="append", help="run only this notebook (repeatable; name without .ipynb)")
    p.add_argument("--params", help="YAML or JSON file of notebook parameters (applied to every notebook)")
    p.add_argument("--checkpoints", help="folder holding the official checkpoints (real domains)")
    p.add_argument("--data", help="folder of test images (real domains)")
    p.add_argument("--out", default="results", help="results root (default: results)")
    p.add_argument("--smoke", action="store_true", help="tiny settings (CI): few images, few steps")
    p.add_argument("--device", default="cpu")
    p.add_argument("--list", action="store_true", help="list the notebooks and exit")
    return parser


def parse_method(text: str, index: int, generator: str | None, first_checkpoint: list) -> dict:
    name = None
    if "=" in text.split(":", 1)[0]:
        name, text = text.split("=", 1)
    parts = text.split(":")
    kind = parts[0]
    if kind not in ("restyle", "single", "naive", "optim", "hybrid") or len(parts) < 2:
        raise SystemExit(f"error: --method {text!r}: expected [NAME=]KIND:ARG[:STEPS] with KIND one of restyle, "
                         "single, naive, optim, hybrid")
    arg = parts[1]
    steps = int(parts[2]) if len(parts) > 2 and parts[2] else None
    if kind in ("restyle", "single", "naive"):
        first_checkpoint.append(arg)
        spec = {"kind": kind, "checkpoint": arg}
        if kind != "single":
            spec["steps"] = steps or 5
        name = name or f"{kind}_{Path(arg).stem}"
    elif kind == "optim":
        if arg not in ("w", "w+"):
            raise SystemExit(f"error: --method {text!r}: optim takes w or w+")
        record = [s for s in DEFAULT_RECORD_AT if s <= (steps or 1000)] or [steps]
        spec = {"kind": "optim", "space": arg, "record_at": record}
        if generator:
            spec["generator"] = generator
        elif first_checkpoint:
            spec["checkpoint"] = first_checkpoint[0]
        else:
            raise SystemExit("error: optim needs --generator or an encoder checkpoint given before it")
        name = name or f"optim_{arg}"
    else:
        record = [s for s in DEFAULT_RECORD_AT if s <= (steps or 1000)] or [steps]
        spec = {"kind": "hybrid", "encoder": arg, "record_at": record}
        name = name or f"{arg}+optim"
    spec["name"] = name
    return spec


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate
    from .store import read_results
    from .views import summary_table

    methods = []
    if args.methods_json:
        methods = json.loads(Path(args.methods_json).read_text())
    first = []
    methods += [parse_method(m, i, args.generator, first) for i, m in enumerate(args.method)]
    if not methods:
        raise SystemExit("error: give at least one --method (or --methods-json); see --help")
    run = evaluate(args.out, args.data, methods, domain=args.domain,
                   metrics=args.metrics.split(",") if args.metrics else None, batch_size=args.batch_size,
                   n_images=args.n_images, device=args.device, dtype=args.dtype,
                   save_images=not args.no_save_images, strict=args.strict)
    import os

    if int(os.environ.get("RANK", 0)) == 0:
        print(summary_table(read_results(run)).to_string())
        print(f"\nrows: {run}/parts  (read with restyle_lab.store.read_results)")
    return 0


def cmd_invert(args) -> int:
    from .invert import invert_folder

    out = invert_folder(args.checkpoint, args.images, args.out, steps=args.steps, coupled=args.coupled,
                        full_size=args.full_size, device=args.device, dtype=args.dtype,
                        batch_size=args.batch_size, strict=args.strict)
    print(f"wrote {out}")
    return 0


def cmd_info(args) -> int:
    from .checkpoints import load_network

    net = load_network(args.checkpoint)
    info = net.info
    print(f"{info.path}\n  sha256: {info.sha256}\n  family: {info.family}  encoder_type: {info.encoder_type}")
    print(f"  encoder: {net.encoder.config}\n  generator: {net.decoder.config}\n  geometry: {net.geometry}")
    for key, (value, source) in info.filled.items():
        print(f"  filled: {key} = {value!r} ({source})")
    for note in info.notes:
        print(f"  note: {note}")
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from .errors import friendly_errors

    with friendly_errors():
        if args.command == "evaluate":
            return cmd_evaluate(args)
        if args.command == "invert":
            return cmd_invert(args)
        if args.command == "info":
            return cmd_info(args)
        if args.command == "export-latents":
            from .store import export_official_latents

            print(export_official_latents(args.run_dir, args.method, args.out))
            return 0
        if args.command == "summary":
            from .store import read_results
            from .views import summary_table

            print(summary_table(read_results(args.run_dir)).to_string())
            return 0
        if args.command == "mini-data":
            from .mini.dataset import write_test_set

            print(write_test_set(args.out, n=args.n, style=args.style))
            return 0
        if args.command == "train":
            from .mini.train import run_preset

            return run_preset(args)
        if args.command == "reproduce":
            from .reproduce import run_reproduce

            return run_reproduce(args)
    return 1


if __name__ == "__main__":
    sys.exit(main())
