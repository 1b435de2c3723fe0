"""What each ``restyle-lab`` command does, given its parsed arguments (see ``restyle_lab.cli``)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..faces.align import align_folder
from ..facts.devices import parse_device
from ..facts.errors import UsageError
from ..facts.methods import parse_methods
from ..facts.mini_models import mini_path
from ..facts.notices import notice
from ..facts.torchrun import parse_shard, torchrun_env
from ..inversion.evaluate import evaluate
from ..inversion.invert import invert_folder
from ..mini.attributes import load_regressor
from ..mini.coverage import coverage, inversion_table, stored_inversions, write_tables
from ..mini.dataset import write_test_set
from ..mini.train import run_preset
from ..models.checkpoints import convert_nvlabs, load_generator, load_network
from ..records.data import write_generated_set
from ..records.files import atomic_write_text, read_settings, read_torch
from ..records.store import (
    export_official_latents,
    incomplete_note,
    provenance_problem,
    read_errors,
    read_provenance,
    read_results,
    requested_images,
)
from ..records.views import skipped_note, summary_table
from ..run.papermill_runs import notebook_dir
from ..run.reproduce import run_reproduce
from ..training.presets import PRESETS as REAL_PRESETS, list_presets as list_real_presets
from ..training.run import run_real


def cmd_invert(args) -> int:
    out = invert_folder(args.checkpoint, args.images, args.out, steps=args.steps, coupled=args.coupled,
                        full_size=args.full_size, device=args.device, dtype=args.dtype, impl=args.impl,
                        batch_size=args.batch_size,
                        strict=args.strict, overwrite=args.overwrite, align=args.align)
    print(f"wrote {out}")
    return 0


def cmd_evaluate(args) -> int:
    extra = read_settings(args.methods_json, "--methods-json") if args.methods_json else []
    if not isinstance(extra, list):
        raise UsageError(f"--methods-json {args.methods_json}: expected a list of method dicts")
    methods = parse_methods(args.method, args.generator, extra)
    if not methods:
        raise UsageError("give at least one --method (or --methods-json); see `restyle-lab evaluate --help`")
    if args.optim_images:
        methods = [m.with_images(args.optim_images) for m in methods]
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    run = evaluate(args.out, args.data, methods, domain=args.domain, metrics=metrics, batch_size=args.batch_size,
                   n_images=args.n_images, device=args.device, dtype=args.dtype, impl=args.impl,
                   save_images=not args.no_save_images, strict=args.strict,
                   shard=parse_shard(args.shard) if args.shard else None, align=args.align,
                   merge_data=args.merge_data)
    if torchrun_env()[0] == 0:
        # the images this command was given, not every image the run holds
        asked = requested_images(run, [m.name for m in methods])
        print(summary_table(pd.concat([read_results(run, methods=[m], images=images)
                                       for m, images in asked.items() if images], ignore_index=True)).to_string())
        for metric in read_provenance(run).get("metrics_unavailable") or {}:
            notice(f"{metric} is unavailable here; why and the fix: {run / 'provenance.json'} (metrics_unavailable)")
        print(f"\nrows: {run}/parts  (read with restyle_lab.records.store.read_results)")
    return 0


def cmd_summary(args) -> int:
    rows = read_results(args.run_dir)
    print(summary_table(rows).to_string())
    problem = provenance_problem(args.run_dir)
    notes = [skipped_note(rows), incomplete_note(args.run_dir),
             f"provenance.json is {problem}: the next evaluate into this run rebuilds it from the parts' records"
             if problem else ""]
    for note in filter(None, notes):
        print(f"\n{note}")
    errors = read_errors(args.run_dir)
    if len(errors):
        print(f"\nskipped inputs ({len(errors)}):")
        with pd.option_context("display.max_colwidth", 120):
            print(errors.to_string(index=False))
    return 0


def cmd_info(args) -> int:
    net = load_network(args.checkpoint)
    info = net.info
    print(f"{info.path}\n  sha256: {info.sha256}\n  family: {info.family}  encoder_type: {info.encoder_type}")
    print(f"  encoder: {net.encoder.config}\n  generator: {net.decoder.config}\n  geometry: {net.geometry}")
    for key, (value, source) in info.filled.items():
        print(f"  filled: {key} = {value!r} ({source})")
    for note in info.notes:
        print(f"  note: {note}")
    return 0


def cmd_export_latents(args) -> int:
    print(export_official_latents(args.run_dir, args.method, args.out, partial=args.partial,
                                  overwrite=args.overwrite))
    return 0


def cmd_mini_data(args) -> int:
    print(write_test_set(args.out, n=args.n, style=args.style))
    return 0


def cmd_mini_report(args) -> int:
    judge = load_regressor(args.judge)
    tables = {}
    if args.run:
        tables["inversions"] = inversion_table(judge, stored_inversions(args.run, args.method))
    gen, _, _ = load_generator(args.generator or mini_path("generator"))
    if gen.size != judge.config.image_size:
        raise UsageError(f"--generator {args.generator}: {gen.size} px; the judge reads "
                         f"{judge.config.image_size} px mini images")
    tables["coverage"], tables["coverage_summary"] = coverage(gen, judge, n=args.n, seed=args.seed)
    with pd.option_context("display.float_format", "{:.4f}".format, "display.width", 160):
        for name in ("coverage", "coverage_summary", "inversions"):
            if name in tables:
                print(f"\n{name}:\n{_wide(name, tables[name]).to_string()}")
    if args.out:
        for path in write_tables(args.out, tables):
            print(f"wrote {path}")
    return 0


def _wide(name: str, table: pd.DataFrame) -> pd.DataFrame:
    """The inversions table as method x step rows with one column per attribute; the others as they are."""
    if name != "inversions":
        return table.set_index(table.columns[0])
    return table.pivot_table(index=["method", "step"], columns="attribute", values="r2", sort=False)


def cmd_sample(args) -> int:
    if not 0 < args.truncation <= 1:
        raise UsageError(f"--truncation must be in (0, 1]. Got: {args.truncation}")
    gen, w_avg, _ = load_generator(args.generator)
    print(write_generated_set(gen, w_avg, args.out, n=args.n, seed=args.seed, truncation=args.truncation))
    return 0


def cmd_train(args) -> int:
    if args.preset in REAL_PRESETS:
        return run_real(args)
    if args.preset == "list":
        print("real domains (--generator, --data):\n" + list_real_presets() + "\nmini domain:")
    return run_preset(args)


def cmd_notebooks(args) -> int:
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file; give a folder")
    src = notebook_dir()
    sources = sorted(src.glob("*.ipynb"))
    clashes = [p.name for p in sources if (out / p.name).exists()]
    if clashes and not args.overwrite:
        raise UsageError(f"{out} already has {', '.join(clashes)}; add --overwrite to replace them")
    for p in sources:
        atomic_write_text(out / p.name, p.read_text())
    print(f"copied {len(sources)} notebooks from {src} to {out}; open them with `jupyter lab {out}`")
    return 0


def cmd_align(args) -> int:
    report = align_folder(args.images, args.out, size=args.size, all_faces=args.all, device=parse_device(args.device))
    print(f"aligned {report.faces} face(s) from {report.images - len(report.skipped)} of {report.images} image(s) "
          f"into {report.out} (alignment.csv lists each)")
    return 0


def cmd_convert(args) -> int:
    out = Path(args.out)
    if os.path.lexists(out):
        raise UsageError(f"{out} exists; give a new file name (nothing was written)")
    sha = convert_nvlabs(args.snapshot, out)
    try:  # the package's strict loader reads back what was written; a file that fails it is not left behind
        gen, _, info = load_generator(out)
        c, nv = info["config"], read_torch(out)["converted_from"]
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    widths = {2 ** k: c.channels(2 ** k) for k in range(2, c.log_size + 1)}
    print(f"wrote {out} (sha256 {sha[:16]}...): G_ema of {args.snapshot}, {c.size} px, z/w {c.style_dim}, "
          f"{c.n_mlp} mapping layers, channels {widths}, conv_clamp {nv['conv_clamp']}, "
          f"{nv['num_fp16_res']} fp16 resolutions (float16 on GPUs in NVlabs' code)")
    return 0


COMMANDS = {"invert": cmd_invert, "evaluate": cmd_evaluate, "summary": cmd_summary, "info": cmd_info,
            "export-latents": cmd_export_latents, "mini-data": cmd_mini_data, "mini-report": cmd_mini_report,
            "sample": cmd_sample,
            "train": cmd_train, "reproduce": run_reproduce, "notebooks": cmd_notebooks,
            "align": cmd_align, "convert": cmd_convert}


def run(args) -> int:
    return COMMANDS[args.command](args)
