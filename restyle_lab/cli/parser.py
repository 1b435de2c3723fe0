"""The ``restyle-lab`` command: argument parsing and error reporting.

The commands themselves live in ``restyle_lab.cli.commands``, imported only once a command is
chosen, so ``--help`` and argument errors answer without importing torch. Every error a
user can fix ends as one ``error: ...`` line naming the thing and the fix, exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import threading

from ..faces.recipe import SIZES as ALIGN_SIZES
from ..facts.domains import DOMAINS
from ..facts.errors import RestyleLabError, Terminated
from ..facts.literals import BOOL
from ..facts.schedule import SNAPSHOTS
from ..run.notebook_params import PARAMS, RESULTS, count as count_check
from ..training.config import OVERRIDABLE
from ..training.presets import (
    BACKBONES as TRAIN_BACKBONES,
    HEADS as TRAIN_HEADS,
    METHODS as TRAIN_METHODS,
    list_presets,
)

DESCRIPTION = """\
restyle-lab: ReStyle / pSp / e4e StyleGAN inversion on CPU or GPU, and the ReStyle paper's analyses.

common tasks:
  restyle-lab invert --checkpoint restyle_psp_ffhq_encode.pt --images photos/ --out inverted/
  restyle-lab evaluate --domain mini --data DIR --out runs/x --method restyle:ckpt.pt:5 --method single:psp.pt
  restyle-lab reproduce                 regenerate every figure on the embedded mini domain
  restyle-lab train --preset restyle-psp-faces --generator G.pt --data ffhq/ --test-data celeba_test/
  restyle-lab train --preset mini-restyle-psp      retrain one of the shipped mini models
  restyle-lab align --images photos/ --out aligned/      FFHQ-style face crops (offline)
  restyle-lab convert network-snapshot.pkl generator.pt  an NVlabs generator, without running its pickle
Run `restyle-lab <command> --help` for the options of each command.
"""
METHOD_HELP = """method syntax: [NAME=]KIND:ARG[:STEPS]
  restyle:CKPT[:STEPS]   ReStyle iterations (default 5)
  single:CKPT            a single pass of a pSp / e4e encoder
  naive:CKPT[:STEPS]     that encoder fed its own output STEPS times (default 5)
  optim:w|w+[:STEPS]     the Karras et al. projector (--generator, else the decoder of the first checkpoint);
                         snapshots at {snapshots} and STEPS (default {last})
  hybrid:METHOD[:STEPS]  the projector started from METHOD's inversion (w+)
STEPS is a whole number >= 1; NAME holds letters, digits and _ . + -.
For projector options (lr, seed, ...) give --methods-json: a list of dicts (see restyle_lab.facts.methods).""".format(
    snapshots=", ".join(map(str, SNAPSHOTS[:-1])), last=SNAPSHOTS[-1])
ALIGN_HELP = "replace each photo by the FFHQ crop of its largest face first; photos without a face are skipped"


def count(text: str) -> int:
    """argparse type: a whole number >= 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


class Parser(argparse.ArgumentParser):
    """Argument errors as one line (which option, what is wrong, where the help is), exit status 2."""

    def error(self, message):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


_PARAM_DEFAULT = object()


def param_option(p, name: str, flag: str | None = None, default=_PARAM_DEFAULT, more: str = ""):
    """The option that sets notebook parameter ``name`` (``run.notebook_params.PARAMS``): its flag (the
    parameter's ``set_by``, else --name-with-dashes), default, choices, whole-number check and help are the
    parameter's. ``default``: the command's own where leaving the option out means "all" (None)."""
    param = PARAMS[name]
    flag = flag or param.set_by or f"--{name.replace('_', '-')}"
    text = (param.doc + more).replace("%", "%%")
    if param.type == BOOL:
        p.add_argument(flag, action="store_true", help=text)
        return
    default = param.default if default is _PARAM_DEFAULT else default
    kind = {"type": count} if param.check is count_check else {}
    kind.update({"choices": list(param.choices)} if param.choices else {})
    p.add_argument(flag, default=default, help=text + ("" if default is None else " (default: %(default)s)"), **kind)


def _add_numerics(p):
    """--device, --dtype and --impl, as the notebooks' parameters."""
    for name in ("device", "dtype", "impl"):
        param_option(p, name)


def _add_device(p):
    _add_numerics(p)
    param_option(p, "batch_size")


def _add_domain(p, more: str = ""):
    param_option(p, "domain", more=more)


def _add_invert(sub):
    p = sub.add_parser("invert", help="invert images with one checkpoint; save per-step images and latents",
                       description="Invert a folder of images (or one image) with a ReStyle, pSp or e4e checkpoint. "
                       "Writes OUT/inference_results/<step>/<image>.png, OUT/latents.npy (the official layout: "
                       "{name: [w+ per step]}), OUT/latents.npz and, with --coupled, side-by-side strips in "
                       "OUT/inference_coupled/. Unreadable files are skipped and listed in OUT/errors.csv.")
    p.add_argument("--checkpoint", required=True, help="an official or restyle-lab checkpoint (.pt)")
    p.add_argument("--images", required=True, help="a folder of images (searched recursively) or one image file")
    p.add_argument("--out", required=True, help="output folder (new, or --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier invert in --out")
    param_option(p, "steps", more=" (1: a single pass)")
    p.add_argument("--coupled", action="store_true", help="also save input | step 1 | ... | step N strips")
    p.add_argument("--full-size", action="store_true", help="save generator-resolution images instead of the "
                   "pooled 256 px ones")
    p.add_argument("--strict", action="store_true", help="stop at the first unreadable image instead of skipping it")
    p.add_argument("--align", action="store_true", help=ALIGN_HELP + " (OUT/aligned/, OUT/alignment.csv)")
    _add_device(p)


def _add_evaluate(sub):
    p = sub.add_parser("evaluate", help="invert a test set with several methods; store per-step metrics",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Invert a test set with every method and write one row per (image, method, "
                       "step, metric) to Parquet parts in --out, with per-step latents and a provenance sidecar.\n"
                       "Resumable: run the same command again after an interruption. Shardable: start it with "
                       "`torchrun --nproc_per_node=N -m restyle_lab.cli evaluate ...`; processes started on the "
                       "same --out share its batches.", epilog=METHOD_HELP)
    p.add_argument("--data", required=True, help="folder of test images")
    p.add_argument("--out", required=True, help="run directory (created; reused to resume)")
    _add_domain(p, ": the checkpoints' domain")
    p.add_argument("--method", action="append", default=[], help="a method (repeatable), see below")
    p.add_argument("--methods-json", help="JSON file with a list of method dicts")
    p.add_argument("--generator", help="generator file for optim methods (rosinality .pt, or an NVlabs .pkl)")
    p.add_argument("--metrics", help="comma-separated metric names (default: the domain's)")
    param_option(p, "n_images", default=None, more=" (default: all, after the domain's subset rule)")
    param_option(p, "optim_images", default=None, more="; optim and hybrid methods only (default: all)")
    p.add_argument("--shard", help="K/N: compute only batches b with b %% N == K (several machines or GPUs fill one "
                   "--out; torchrun sets this itself)")
    p.add_argument("--no-save-images", action="store_true", help="store latents only, not per-step images")
    p.add_argument("--strict", action="store_true", help="stop at the first unreadable image instead of skipping it")
    p.add_argument("--align", action="store_true", help=ALIGN_HELP + " (recorded in the run's provenance; "
                   "OUT/alignment.csv, OUT/aligned/)")
    p.add_argument("--merge-data", action="store_true", help="--out may hold results for the images of another "
                   "--data folder, and this folder's images join them (refused otherwise); the printed table covers "
                   "only this folder's images")
    _add_device(p)


def _add_align_and_convert(sub):
    p = sub.add_parser("align", help="crop the faces in photos the way FFHQ was cropped (offline)",
                       description="FFHQ alignment (eye centres and mouth corners -> an oriented square, crop, "
                       "reflect-pad with blur, resample) with landmarks from facenet-pytorch's MTCNN, whose weights "
                       "ship with it. Writes OUT/<name>.png per photo (its largest face), OUT/alignment.csv (boxes, "
                       "landmarks, quads) and OUT/errors.csv (photos skipped: no face, unreadable).")
    p.add_argument("--images", required=True, help="a folder of photos (searched recursively) or one photo")
    p.add_argument("--out", required=True, help="new (or empty) output folder")
    p.add_argument("--size", type=int, default=256, choices=ALIGN_SIZES, help="output size (default: 256)")
    p.add_argument("--all", action="store_true", help="every face, largest first, as OUT/<name>_<k>.png")
    p.add_argument("--device", default="cpu", help="where MTCNN runs: cpu, cuda or cuda:N (default: cpu)")
    p = sub.add_parser("convert", help="NVlabs stylegan2-ada-pytorch snapshot (.pkl) -> rosinality generator (.pt)",
                       description="Convert the G_ema of an NVlabs stylegan2-ada-pytorch network pickle into a "
                       "rosinality-layout generator file (g_ema, latent_avg = w_avg, the derived config). The pickle "
                       "is read without running any code in it; every --generator option also takes the .pkl itself.")
    p.add_argument("snapshot", help="network-snapshot-*.pkl")
    p.add_argument("out", help="the generator file to write (.pt; must not exist)")


def _add_train(sub):
    p = sub.add_parser("train", help="train a ReStyle / pSp / e4e encoder (a real domain's preset), or retrain a "
                       "shipped mini model", formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train from a preset: one per official training command (restyle-psp-faces, "
                       "restyle-e4e-cars, ...; psp-* and e4e-* are the single-pass encoders), or a mini one "
                       "(mini-restyle-psp, ...). Resumable: run the same command again to continue from the last "
                       "state in --workdir/PRESET. Several processes: `torchrun --nproc_per_node=N -m "
                       "restyle_lab.cli train ...` (each rank its shard of every batch).",
                       epilog="presets of the real domains:\n" + list_presets() + "\n\nTraining options (official "
                       "names; each also as --name-with-dashes): " + ", ".join(OVERRIDABLE))
    p.add_argument("--preset", required=True, help="preset name (`restyle-lab train --preset list` lists the mini "
                   "ones; the real ones are below)")
    p.add_argument("--generator", help="the frozen StyleGAN2 generator (rosinality .pt; real presets)")
    p.add_argument("--data", help="folder of training images (real presets)")
    p.add_argument("--test-data", help="folder of test images: validated every --val-every steps with the "
                   "evaluation's metrics per ReStyle step; keeps checkpoints/best_model.pt")
    p.add_argument("--domain", choices=list(DOMAINS), help="input geometry and the per-domain choices (default: "
                   "the preset's)")
    p.add_argument("--method", choices=TRAIN_METHODS, help="replace the preset's method")
    p.add_argument("--head", choices=TRAIN_HEADS, help="simple (BackboneEncoder) or fpn (GradualStyleEncoder; "
                   "supplementary Table 1's FPN ReStyle encoders)")
    p.add_argument("--backbone", choices=TRAIN_BACKBONES, help="ir_se (IR-SE50, faces) or resnet (ResNet34)")
    p.add_argument("--weights", help="folder with the pretrained files (model_ir_se50.pth, "
                   "moco_v2_800ep_pretrain.pt, resnet34-*.pth, alexnet-owt-7be5be79.pth); torch's cache is "
                   "searched after it")
    p.add_argument("--workdir", default=".train", help="runs go to WORKDIR/PRESET (default: .train)")
    p.add_argument("--max-minutes", type=seconds, help="stop (resumably) after this many minutes")
    p.add_argument("--iters", type=count, help="override the preset's step count (max_steps)")
    p.add_argument("--val-every", type=count, help="validate every N steps (default: the preset's val_interval "
                   "when --test-data is given)")
    p.add_argument("--dry-run", action="store_true", help="time a few training iterations on --device, print the "
                   "time per iteration and the estimate for the preset's steps, write nothing")
    p.add_argument("--export", help="also write the final model here")
    p.add_argument("--smoke", action="store_true", help="a tiny training set (mini presets; CI smoke runs)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu; under torchrun cuda "
                   "picks the local rank's GPU)")
    p.add_argument("--dtype", default="float32", choices=PARAMS["dtype"].choices, help="float32 (default); float64 "
                   "(networks, images, codes and losses in float64; checkpoints exported in float32); or bf16 / fp16 "
                   "autocast (fp16 with loss scaling)")
    p.add_argument("--impl", default="reference", choices=PARAMS["impl"].choices, help="the generator's ops while "
                   "training (the encoder trains on the reference ones; default: reference)")
    for name, kind in OVERRIDABLE.items():
        flags = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
        if str(kind) == "bool":
            p.add_argument(*flags, dest=f"set_{name}", action=argparse.BooleanOptionalAction, default=None,
                           help=argparse.SUPPRESS)
        else:
            p.add_argument(*flags, dest=f"set_{name}", metavar="V", default=None, help=argparse.SUPPRESS)


def _add_reproduce(sub):
    p = sub.add_parser("reproduce", help="regenerate the paper's figures and tables (papermill)",
                       description="Run every analysis notebook through papermill into results/<domain>/ "
                       "(executed notebooks, PNG/PDF figures, CSV/Parquet tables, index.md). Each notebook runs "
                       "under a time limit; one that fails or runs out of time is reported and the others go on.")
    _add_domain(p)
    p.add_argument("--only", action="append", help="run only this notebook (repeatable; name without .ipynb)")
    p.add_argument("--params", help="YAML or JSON file of notebook parameters: top-level keys apply to every "
                   "notebook, a key named after a notebook holds that notebook's own")
    p.add_argument("--checkpoints", help="folder holding the official checkpoints (real domains)")
    p.add_argument("--data", help="folder of test images (real domains)")
    p.add_argument("--out", default=RESULTS, help="each notebook writes into OUT/DOMAIN/NOTEBOOK (its out_dir; "
                   "default: %(default)s)")
    param_option(p, "smoke")
    _add_numerics(p)
    timeouts = ", ".join(f"{d.name}: {d.timeout:g}" for d in DOMAINS.values())
    p.add_argument("--timeout", type=seconds, help="seconds one notebook may run before it is stopped and reported "
                   f"as failed (default: the domain's; {timeouts})")
    p.add_argument("--dry-run", action="store_true", help="print the plan (inversions still to compute, a time "
                   "estimate from a short probe) and stop; real domains print it before every run")
    p.add_argument("--shard", help="K/N: store shard K of N of every notebook's inversions and stop (one per GPU or "
                   "machine, then run again without --shard); under torchrun each rank takes its own")
    p.add_argument("--list", action="store_true", help="list the notebooks and exit")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="restyle-lab", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="<command>", parser_class=Parser)
    _add_invert(sub)
    _add_evaluate(sub)
    p = sub.add_parser("export-latents", help="write a stored method's latents in the official latents.npy layout")
    p.add_argument("run_dir")
    p.add_argument("method")
    p.add_argument("out", help="output .npy path (a new file, or --overwrite)")
    p.add_argument("--partial", action="store_true", help="export the images stored even when the run is "
                   "incomplete (refused otherwise)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file at OUT")
    p = sub.add_parser("summary", help="print mean metrics per method and step of a run directory, and the "
                       "inputs it skipped")
    p.add_argument("run_dir")
    p = sub.add_parser("info", help="describe a checkpoint: family, architecture, options the loader filled in")
    p.add_argument("checkpoint")
    p = sub.add_parser("mini-data", help="render the mini domain's test set into a folder")
    p.add_argument("--n", type=count, default=100, help="number of test faces (default: 100)")
    p.add_argument("--style", default="photo", choices=["photo", "toon"])
    p.add_argument("--out", help="folder (default: ~/.cache/restyle-lab/mini/...)")
    p = sub.add_parser("mini-report", help="how well a mini generator covers the test renders, and how much of each "
                       "face stored inversions keep, as read by the attribute judge")
    p.add_argument("--generator", help="a 64 px generator file (default: the shipped mini generator)")
    p.add_argument("--judge", help="an attribute regressor file (default: the shipped one)")
    p.add_argument("--run", help="a run directory `evaluate` wrote on mini test faces: R^2 of the judge's reading "
                   "of each stored inversion against its reading of the input, per method and step")
    p.add_argument("--method", action="append", help="a method of --run (repeatable; default: all stored)")
    p.add_argument("--n", type=count, default=1000, help="GAN samples, and test renders in each of the two sets "
                   "(default: 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the GAN samples (default: 0)")
    p.add_argument("--out", help="folder for the CSV tables (coverage.csv, coverage_summary.csv, inversions.csv)")
    p = sub.add_parser("sample", help="write generator samples with their true w+ (latents.npz), so `evaluate` "
                       "also reports each method's latent error (latent_mse)")
    p.add_argument("--generator", required=True, help="a generator file (rosinality .pt, an NVlabs .pkl, or an "
                   "encoder checkpoint: its decoder)")
    p.add_argument("--out", required=True, help="new folder for the PNGs and latents.npz")
    p.add_argument("--n", type=count, default=32, help="number of samples (default: 32)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--truncation", type=float, default=0.7, help="towards w_avg, in (0, 1] (default: 0.7)")
    _add_train(sub)
    _add_reproduce(sub)
    _add_align_and_convert(sub)
    p = sub.add_parser("notebooks", help="copy the analysis notebooks into a folder, to open in JupyterLab")
    p.add_argument("out", help="folder (created; existing notebooks there are kept unless --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace notebooks of the same name in OUT")
    return parser


def report(err: BaseException) -> str:
    """The one-line (for a checkpoint mismatch: first line plus the grouped key report) message of an error."""
    if isinstance(err, OSError) and err.filename:
        return f"{err.filename}: {err.strerror or err}"
    return str(err)


def _terminate(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def sigterm_as_exception():
    """SIGTERM raises ``Terminated`` (a KeyboardInterrupt) while a command runs, so that its cleanups run:
    temporary files go, a notebook's kernel is shut down and its private folder removed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        with sigterm_as_exception():
            commands = importlib.import_module("restyle_lab.cli.commands")
            return commands.run(args)
    except (RestyleLabError, OSError) as err:
        print(f"error: {report(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        what = "terminated" if isinstance(err, Terminated) else "interrupted"
        print(f"{what}: results written so far are kept; run the same command again to resume", file=sys.stderr)
        return 143 if isinstance(err, Terminated) else 130

