"""``restyle-lab train --preset NAME``: the recipes that produced every shipped mini model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .presets import MINI_ENCODERS, MINI_GENERATOR

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "mini"
GENERATOR_FILE = "stylegan2_mini.pt"
TOON_GENERATOR_FILE = "stylegan2_mini_toon.pt"


def _gan(**kw):
    from ..training.gan import GanConfig

    return GanConfig(generator=MINI_GENERATOR, d_channel_base=1536, d_channel_max=192, r1_gamma=0.05,
                     n_train_images=30000, checkpoint_every=100, sample_every=250, **kw)


def _encoder(key, family, generator_file, **kw):
    from ..training.encoder import EncoderTrainConfig

    restyle = family.startswith("restyle")
    defaults = dict(family=family, encoder=MINI_ENCODERS[key], generator=str(ASSETS / generator_file), batch=8,
                    n_iters_per_batch=5 if restyle else 1, lr=3e-4, iters=3600 if restyle else 4500,
                    checkpoint_every=100,
                    sample_every=250)
    if restyle:
        # 3600 steps with cosine decay, then 600 with BatchNorm statistics frozen (see EncoderTrainConfig)
        defaults.update(iters=4200, freeze_bn_steps=600)
    if MINI_ENCODERS[key].progressive:
        defaults.update(progressive_start=200, progressive_step_every=100)
    defaults.update(kw)
    return EncoderTrainConfig(**defaults)


def _attributes():
    from .attributes import AttributeTrainConfig

    return AttributeTrainConfig()


def presets() -> dict:
    """name -> (kind, config factory, shipped file name, description)."""
    return {
        "mini-gan": ("gan", lambda: _gan(style="photo", iters=6000), GENERATOR_FILE,
                     "64 px StyleGAN2 trained adversarially on photo-style renders"),
        "mini-toon-gan": ("gan", lambda: _gan(style="toon", iters=600, freeze_mapping=True, lr=0.001),
                          TOON_GENERATOR_FILE, "mini-gan fine-tuned on toon-style renders (mapping frozen)"),
        "mini-restyle-psp": ("encoder", lambda: _encoder("restyle_psp", "restyle_psp", GENERATOR_FILE),
                             "restyle_psp_mini.pt", "ReStyle-pSp, simple (BackboneEncoder) head"),
        "mini-restyle-psp-fpn": ("encoder", lambda: _encoder("restyle_psp_fpn", "restyle_psp", GENERATOR_FILE),
                                 "restyle_psp_fpn_mini.pt", "ReStyle-pSp with pSp's FPN head (ablation)"),
        "mini-restyle-e4e": ("encoder", lambda: _encoder("restyle_e4e", "restyle_e4e", GENERATOR_FILE, iters=2400,
                                                          freeze_bn_steps=400),
                             "restyle_e4e_mini.pt", "ReStyle-e4e (progressive, delta-regularised)"),
        "mini-psp": ("encoder", lambda: _encoder("psp", "psp", GENERATOR_FILE), "psp_mini.pt",
                     "single-pass pSp (FPN, 3-channel input), for the naive-iteration study"),
        "mini-e4e": ("encoder", lambda: _encoder("e4e", "e4e", GENERATOR_FILE), "e4e_mini.pt",
                     "single-pass e4e (Encoder4Editing), for the naive-iteration study"),
        "mini-restyle-psp-toon": ("encoder", lambda: _encoder("restyle_psp", "restyle_psp", TOON_GENERATOR_FILE,
                                                              iters=900, freeze_bn_steps=300, target_style="toon",
                                                              init_encoder=str(ASSETS / "restyle_psp_mini.pt")),
                                  "restyle_psp_mini_toon.pt", "ReStyle-pSp into the mini-toon generator "
                                  "(photo inputs, toon renders of the same faces as targets), fine-tuned from "
                                  "mini-restyle-psp, for encoder bootstrapping"),
        "mini-attributes": ("attributes", _attributes, "attributes_mini.pt",
                            "CNN reading the mini attributes off 64 px images (judges edits; see mini/attributes.py)"),
    }


def run_preset(args) -> int:
    table = presets()
    if args.preset == "list" or args.preset not in table:
        if args.preset != "list":
            print(f"unknown preset {args.preset!r}")
        for name, (_, _, file, desc) in table.items():
            print(f"  {name:24s} -> {file:28s} {desc}")
        return 0 if args.preset == "list" else 2
    kind, factory, file, desc = table[args.preset]
    cfg = factory()
    if args.iters is not None:
        cfg = dataclasses.replace(cfg, iters=args.iters, checkpoint_every=min(cfg.checkpoint_every, args.iters),
                                  sample_every=min(cfg.sample_every, args.iters))
        if getattr(cfg, "freeze_bn_steps", 0):
            cfg = dataclasses.replace(cfg, freeze_bn_steps=min(cfg.freeze_bn_steps, args.iters // 2))
    if getattr(args, "smoke", False):
        cfg = dataclasses.replace(cfg, n_train_images=64)
    workdir = Path(args.workdir) / args.preset
    if kind == "attributes":
        from .attributes import export_regressor, train_regressor

        state = train_regressor(cfg, workdir, max_minutes=args.max_minutes)
        if args.export:
            print(f"exported {args.export} sha256 {export_regressor(state, args.export, note=desc)}")
    elif kind == "gan":
        from ..training.gan import export_generator, train_gan

        init = None
        if args.preset == "mini-toon-gan":
            init = Path(args.workdir) / "mini-gan" / "state.pt"
            if not init.exists():
                raise SystemExit(f"error: mini-toon-gan fine-tunes the mini-gan training state {init}; "
                                 "run `restyle-lab train --preset mini-gan` first (same --workdir)")
        state = train_gan(cfg, workdir, init_from=init, max_minutes=args.max_minutes)
        if args.export:
            print(f"exported {args.export} sha256 {export_generator(state, args.export, note=desc)}")
    else:
        from ..training.encoder import export_encoder, train_encoder

        if not Path(cfg.generator).exists():
            raise SystemExit(f"error: generator {cfg.generator} is missing; it ships with the package "
                             "(or train it: restyle-lab train --preset mini-gan)")
        state = train_encoder(cfg, workdir, max_minutes=args.max_minutes)
        if args.export:
            from ..packing import pack

            export_encoder(state, args.export, note=desc)
            # shipped form: int8 heads + a reference to the generator file (see restyle_lab/packing.py)
            print(f"exported {args.export} sha256 {pack(args.export, args.export, cfg.generator)}")
    return 0
