"""``restyle-lab train`` for encoders: a preset (a real domain's, or a mini one) and the command line's
overrides -> a run folder, or with ``--dry-run`` a timing and an estimate.

Everything a run needs is checked before it writes anything: the generator, the image folders and
every pretrained file its options call for (a missing one is a one-line error naming it). Under
torchrun every rank runs this; the first one writes and prints.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from pathlib import Path

from ..facts.configs import FAMILIES, GeneratorConfig
from ..facts.devices import check_impl, device_name, parse_device, weights_and_compute
from ..facts.domains import DOMAINS, get_domain
from ..facts.errors import UsageError
from ..models.checkpoints import load_generator
from . import distributed
from .config import OVERRIDABLE, EncoderTrainConfig, with_overrides
from .data import FolderSource
from .encoder import EncoderTrainer, export_state, train_encoder
from .losses import locate_weights, preset_weights
from .presets import METHODS, OFFICIAL_MAX_STEPS, PRESETS, REAL_DOMAINS, encoder_config
from .validate import Validator, metric_names

DRY_RUN_STEPS = 3  # timed after one warm-up step


def overrides_from(args) -> dict:
    """The training options given on the command line (``--lpips_lambda 0`` ...), by official name."""
    return {name: getattr(args, f"set_{name}") for name in OVERRIDABLE
            if getattr(args, f"set_{name}", None) is not None}


def with_step_count(cfg: EncoderTrainConfig, iters: int | None) -> EncoderTrainConfig:
    """``--iters``: a shorter run keeps its intervals and frozen tail inside it."""
    if iters is None:
        return cfg
    return dataclasses.replace(cfg, max_steps=iters, save_interval=min(cfg.save_interval, iters),
                               image_interval=min(cfg.image_interval, iters),
                               freeze_bn_steps=min(cfg.freeze_bn_steps, iters // 2))


def preset_config(name: str, generator_path: str, generator: GeneratorConfig, method: str | None = None,
                  head: str | None = None, backbone: str | None = None, domain: str | None = None
                  ) -> EncoderTrainConfig:
    """The training config of a real domain's preset ``name`` (``training.presets``) for this generator;
    ``method`` / ``head`` / ``backbone`` / ``domain`` replace the preset's. The loss weights are the terms'
    (``training.losses``)."""
    if name not in PRESETS:
        raise UsageError(f"unknown preset {name!r}; known: {', '.join(PRESETS)} and the mini ones "
                         "(`restyle-lab train --preset list`)")
    if domain is not None and domain not in REAL_DOMAINS:
        raise UsageError(f"--domain {domain}: {name} trains for a real domain ({', '.join(REAL_DOMAINS)}); the "
                         f"{domain} domain has presets of its own (`restyle-lab train --preset list`)")
    preset_method, preset_domain = PRESETS[name]
    method = method or preset_method
    if method not in METHODS:
        raise UsageError(f"--method must be one of {METHODS}. Got: {method!r}")
    dom = DOMAINS[domain or preset_domain]
    family = FAMILIES[method]
    enc = encoder_config(method, head or ("simple" if family.restyle else "fpn"),
                         backbone or ("ir_se" if dom.faces else "resnet"), generator, max(dom.input_hw))
    cfg = EncoderTrainConfig(
        family=method, encoder=enc, generator=str(generator_path), domain=dom.name, dataset_type=dom.dataset_type,
        batch_size=8, test_batch_size=8, n_iters_per_batch=5 if family.restyle else 1,
        max_steps=dom.train_steps or OFFICIAL_MAX_STEPS, optim_name="ranger", learning_rate=1e-4,
        start_from_latent_avg=True, val_interval=5000, save_interval=10_000, image_interval=100, board_interval=50,
        **preset_weights(family, dom))
    if family.base == "e4e":
        cfg = dataclasses.replace(cfg, use_w_pool=True, progressive_start=20_000, progressive_step_every=2000)
    return cfg


def real_config(args) -> EncoderTrainConfig:
    """A real domain's preset for ``--generator`` with the command line's choices and overrides."""
    if not args.generator:
        raise UsageError(f"--preset {args.preset} trains against a generator: give --generator (a rosinality "
                         "StyleGAN2 .pt file, e.g. stylegan2-ffhq-config-f.pt)")
    if not args.data:
        raise UsageError(f"--preset {args.preset} trains on an image folder: give --data DIR")
    if not Path(args.generator).is_file():
        raise UsageError(f"--generator {args.generator}: no such file")
    gen, _, _ = load_generator(args.generator)
    cfg = preset_config(args.preset, args.generator, gen.config, method=args.method, head=args.head,
                        backbone=args.backbone, domain=args.domain)
    return with_overrides(with_step_count(cfg, args.iters), overrides_from(args))


def run_real(args) -> int:
    cfg = real_config(args)
    dom = get_domain(cfg.domain)
    source = FolderSource(args.data, dom.input_hw)
    test = FolderSource(args.test_data, dom.input_hw) if args.test_data else None
    return run_encoder(cfg, source, test, args, Path(args.workdir) / args.preset)


def run_encoder(cfg: EncoderTrainConfig, source, test_source, args, run_dir: Path, export_note: str = "",
                after_export=None) -> int:
    """Check, then train (or time) ``cfg`` on ``source`` into ``run_dir``; ``after_export(path)``: what to
    do with ``--export``'s file (the mini presets pack it)."""
    device = parse_device(args.device, int(os.environ.get("LOCAL_RANK", 0)))
    _, compute = weights_and_compute(args.dtype)
    impl = check_impl(args.impl)
    weights = locate_weights(cfg, args.weights)
    ranks = distributed.start(device)
    log = print if ranks.is_main else (lambda *a, **k: None)
    val_every = None
    if test_source is not None:
        val_every = args.val_every or cfg.val_interval or cfg.max_steps
        cfg = dataclasses.replace(cfg, val_interval=val_every)
    validator = None
    if val_every:
        validator = Validator(test_source, cfg.n_iters_per_batch, cfg.test_batch_size, device,
                              metric_names(get_domain(cfg.domain)), impl, log)
    dtype = compute or args.dtype  # float32 / float64: every network and tensor in it; bf16 / fp16: autocast
    if args.dry_run:
        dry_run(EncoderTrainer(cfg, source, weights, device, ranks, dtype, impl, None, log), cfg, device, ranks, log)
        distributed.finish(ranks)
        return 0
    state = train_encoder(cfg, run_dir, source, weights, device, dtype, impl, validator, val_every,
                          args.max_minutes, ranks, log)
    if args.export and ranks.is_main:
        sha = export_state(state, args.export, note=export_note)
        print(f"exported {args.export} sha256 {after_export(args.export) if after_export else sha}")
    distributed.finish(ranks)
    return 0


def dry_run(trainer: EncoderTrainer, cfg: EncoderTrainConfig, device, ranks, log, steps: int = DRY_RUN_STEPS
            ) -> float:
    """Time ``steps`` training iterations after a warm-up one (nothing is written); prints the time per
    iteration and the estimate for the run's step count. Returns seconds per iteration."""
    trainer.start(lambda *a: None)
    times = []
    for s in range(steps + 1):
        t0 = time.perf_counter()
        trainer.step(s)
        times.append(time.perf_counter() - t0)
    per_step = statistics.median(times[1:])
    hours = per_step * cfg.max_steps / 3600
    batch = (f"batch {cfg.batch_size} x {cfg.accumulate} micro-batch(es) x {ranks.world_size} rank(s) = "
             f"{cfg.batch_size * cfg.accumulate * ranks.world_size}")
    log(f"timing on {device_name(device)}: {steps} iterations after a warm-up, {batch}, "
        f"{cfg.n_iters_per_batch} ReStyle iteration(s) each, {trainer.dtype}, generator ops {trainer.ops['decoder']}")
    log(f"  {per_step:.3f} s per training iteration (median; each: {', '.join(f'{t:.2f}' for t in times[1:])} s)")
    log(f"  estimated total for {cfg.max_steps:,} steps: {hours:.1f} h ({hours / 24:.1f} days) on "
        f"{device.type}, validation and checkpoints not included")
    return per_step
