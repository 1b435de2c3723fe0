"""``restyle-lab train --preset NAME``: the recipes that produced every shipped mini model."""

from __future__ import annotations

import dataclasses
import difflib
import tempfile
from pathlib import Path

from ..facts.configs import FAMILIES
from ..facts.domains import get_domain
from ..facts.errors import UsageError
from ..facts.mini_models import BY_KEY, BY_PRESET, mini_path
from ..facts.torchrun import torchrun_env
from ..records.packing import pack
from ..training.config import EncoderTrainConfig, with_overrides
from ..training.data import ArraySource, FolderSource
from ..training.gan import GanConfig, export_generator, train_gan
from ..training.losses import locate_weights, preset_weights
from ..training.presets import PRESETS as REAL_PRESETS
from ..training.run import DRY_RUN_STEPS, overrides_from, run_encoder, with_step_count
from .architectures import MINI_ENCODERS, MINI_GENERATOR
from .attributes import AttributeTrainConfig, export_regressor, train_regressor
from .dataset import training_images, write_test_set


def _gan(**kw) -> GanConfig:
    return GanConfig(generator=MINI_GENERATOR, d_channel_base=1536, d_channel_max=192, r1_gamma=0.05,
                     n_train_images=30000, checkpoint_every=100, sample_every=250, **kw)


def _encoder(key: str, architecture: str | None = None, **kw) -> EncoderTrainConfig:
    """The recipe of the shipped encoder ``key``; ``architecture``: the MINI_ENCODERS entry (default: key)."""
    model = BY_KEY[key]
    arch = MINI_ENCODERS[architecture or key]
    restyle = FAMILIES[model.family].restyle
    # L2 only (the loss terms' mini weights: no pretrained file can be downloaded where they were trained), Adam
    # with a cosine decay, a random-initialised narrow backbone
    defaults = dict(family=model.family, encoder=arch, generator=str(mini_path(model.decoder)), domain="mini",
                    dataset_type="mini_encode", backbone_init="random", batch_size=8, test_batch_size=8,
                    n_iters_per_batch=5 if restyle else 1, optim_name="adam", learning_rate=3e-4,
                    lr_schedule="cosine", max_steps=3600 if restyle else 4500, save_interval=100, image_interval=250,
                    board_interval=25, val_interval=None, **preset_weights(FAMILIES[model.family], get_domain("mini")))
    if restyle:
        # 3600 steps with cosine decay, then 600 with BatchNorm statistics frozen (see EncoderTrainConfig)
        defaults.update(max_steps=4200, freeze_bn_steps=600)
    if arch.progressive:
        defaults.update(progressive_start=200, progressive_step_every=100)
    defaults.update(kw)
    return EncoderTrainConfig(**defaults)


# preset -> its training config; what each preset ships is in restyle_lab.mini.registry
RECIPES = {
    "mini-gan": lambda: _gan(style="photo", iters=6000),
    "mini-toon-gan": lambda: _gan(style="toon", iters=600, freeze_mapping=True, lr=0.001),
    "mini-restyle-psp": lambda: _encoder("restyle_psp"),
    "mini-restyle-psp-fpn": lambda: _encoder("restyle_psp_fpn"),
    "mini-restyle-e4e": lambda: _encoder("restyle_e4e", max_steps=2400, freeze_bn_steps=400),
    "mini-psp": lambda: _encoder("psp"),
    "mini-e4e": lambda: _encoder("e4e"),
    "mini-restyle-psp-toon": lambda: _encoder("restyle_psp_toon", "restyle_psp", max_steps=900, freeze_bn_steps=300,
                                              target_style="toon", init_encoder=str(mini_path("restyle_psp"))),
    "mini-attributes": AttributeTrainConfig,
}
# a fine-tuning preset starts from another preset's training state in the same --workdir
FINE_TUNES = {"mini-toon-gan": "mini-gan"}


def presets() -> dict:
    """preset name -> (its MiniModel entry, a factory of its training config)."""
    return {name: (BY_PRESET[name], factory) for name, factory in RECIPES.items()}


def encoder_images(cfg: EncoderTrainConfig, cache_dir, log=print):
    """(inputs, targets) for an encoder: photo renders of the train split, and what the encoder must
    reproduce: the inputs, or with target_style the same faces rendered in that style."""
    images = training_images("photo", cfg.n_train_images, cfg.encoder.input_size, cache_dir, log)
    targets = training_images(cfg.target_style, cfg.n_train_images, cfg.encoder.input_size, cache_dir, log) \
        if cfg.target_style else None
    return images, targets


def list_presets() -> str:
    return "\n".join(f"  {name:24s} -> {model.file:28s} {model.description}"
                     for name, (model, _) in presets().items())


def unknown_preset(name: str) -> UsageError:
    """The error for a preset name that is neither a real domain's nor a mini one, with the nearest names."""
    known = [*REAL_PRESETS, *RECIPES]
    near = difflib.get_close_matches(name, known, n=2)
    hint = f" (did you mean {' or '.join(map(repr, near))}?)" if near else ""
    return UsageError(f"unknown preset {name!r}{hint}; known: {', '.join(REAL_PRESETS)}, and the mini ones "
                      f"{', '.join(RECIPES)} (`restyle-lab train --preset list` describes them)")


def _check_options(args, kind: str) -> None:
    """Refuse options a mini preset would silently ignore: the real presets' (a mini preset is a fixed recipe),
    and for the GAN and the attribute regressor, the encoder trainer's."""
    given = [flag for flag, value in (("--method", args.method), ("--head", args.head), ("--backbone", args.backbone),
                                      ("--domain", args.domain), ("--generator", args.generator),
                                      ("--data", args.data)) if value is not None]
    if given:
        raise UsageError(f"{given[0]} applies to the real domains' presets; {args.preset} is a fixed recipe of the "
                         "mini domain: pick another mini preset (`restyle-lab train --preset list`)")
    if kind == "encoder":
        return
    given = [f"--{name}" for name in overrides_from(args)]
    given += [flag for flag, value in (("--test-data", args.test_data), ("--val-every", args.val_every),
                                       ("--weights", args.weights), ("--dry-run", args.dry_run or None))
              if value is not None]
    if given:
        raise UsageError(f"{given[0]} applies to the encoder presets; {args.preset} takes --iters, --max-minutes, "
                         "--smoke, --workdir and --export")


def run_preset(args) -> int:
    if args.preset == "list":
        print(list_presets())
        return 0
    if args.preset not in RECIPES:
        raise unknown_preset(args.preset)
    model, factory = presets()[args.preset]
    _check_options(args, model.kind)
    cfg = factory()
    if model.kind == "encoder":
        return _run_encoder(args, model, with_overrides(with_step_count(cfg, args.iters), overrides_from(args)))
    if args.iters is not None:
        cfg = dataclasses.replace(cfg, iters=args.iters, checkpoint_every=min(cfg.checkpoint_every, args.iters),
                                  sample_every=min(cfg.sample_every, args.iters))
    if args.smoke:
        cfg = dataclasses.replace(cfg, n_train_images=64)
    workdir = Path(args.workdir)
    cache = workdir / "cache"
    if model.kind == "attributes":
        state = train_regressor(cfg, workdir / args.preset, cache, max_minutes=args.max_minutes)
        if args.export:
            print(f"exported {args.export} sha256 {export_regressor(state, args.export, note=model.description)}")
        return 0
    init = None
    if args.preset in FINE_TUNES:
        init = workdir / FINE_TUNES[args.preset] / "state.pt"
        if not init.exists():
            raise UsageError(f"{args.preset} fine-tunes the {FINE_TUNES[args.preset]} training state {init}; "
                             f"run `restyle-lab train --preset {FINE_TUNES[args.preset]}` first (same --workdir)")
    images = training_images(cfg.style, cfg.n_train_images, cfg.generator.size, cache)
    state = train_gan(cfg, workdir / args.preset, images, init_from=init, max_minutes=args.max_minutes)
    if args.export:
        print(f"exported {args.export} sha256 {export_generator(state, args.export, note=model.description)}")
    return 0


def _run_encoder(args, model, cfg: EncoderTrainConfig) -> int:
    """A mini encoder preset through the one encoder trainer (training.run)."""
    if args.smoke:
        cfg = dataclasses.replace(cfg, n_train_images=64)
    if not Path(cfg.generator).exists():
        raise UsageError(f"generator {cfg.generator} is missing; it ships with the package "
                         "(or train it: restyle-lab train --preset mini-gan)")
    locate_weights(cfg, args.weights)  # before the renders are cached
    workdir = Path(args.workdir)
    if args.dry_run:  # writes nothing: renders only the images the timed steps read, into a folder removed after
        with tempfile.TemporaryDirectory() as tmp:
            global_batch = cfg.batch_size * cfg.accumulate * torchrun_env()[1]
            timed = dataclasses.replace(cfg, n_train_images=min(cfg.n_train_images, global_batch * (DRY_RUN_STEPS + 1)))
            images, targets = encoder_images(timed, tmp)
            source = ArraySource(images, targets, name=f"mini train renders ({cfg.target_style or 'photo'})")
            return run_encoder(cfg, source, None, args, workdir / args.preset)
    images, targets = encoder_images(cfg, workdir / "cache")
    source = ArraySource(images, targets, name=f"mini train renders ({cfg.target_style or 'photo'})")
    test = None
    if args.test_data or args.val_every:
        folder = args.test_data or write_test_set(workdir / "cache" / "test_photo_64_100", n=100)
        test = FolderSource(folder, (cfg.encoder.input_size, cfg.encoder.input_size))
    # shipped form: int8 heads + a reference to the generator file (see restyle_lab/packing.py)
    return run_encoder(cfg, source, test, args, workdir / args.preset, export_note=model.description,
                       after_export=lambda path: pack(path, path, cfg.generator))
