"""The real domains' training presets: one per official training command, derived from the domain's record.

The restyle-encoder README's commands for faces, and its notes for the other domains:

* ReStyle-pSp: ``--encoder_type BackboneEncoder --batch_size 8 --start_from_latent_avg --lpips_lambda 0.8
  --l2_lambda 1 --w_norm_lambda 0 --id_lambda 0.1 --input_nc 6 --n_iters_per_batch 5 --output_size 1024
  --val_interval 5000 --save_interval 10000``;
* ReStyle-e4e: ``ProgressiveBackboneEncoder``, the same losses, plus ``--delta_norm_lambda 0.0002
  --use_w_pool --w_discriminator_lambda 0.1 --progressive_start 20000 --progressive_step_every 2000``;
* faces (``Domain.faces``): an IR-SE50 backbone and the ArcFace ID loss; every other domain: ResNet34 and
  ``--id_lambda 0 --moco_lambda 0.5``; ``--output_size`` is the generator's.

A preset is named ``<method>-<domain>`` (``restyle-psp-faces``, ``restyle-e4e-cars``, ...). ``psp`` and
``e4e`` are the single-pass encoders (one iteration, 3-channel input, the FPN head) with the same losses.
The step count is what the author trained the released encoders for (``Domain.train_steps``), else
the official default. Torch-free (the command line lists the presets).
"""

from __future__ import annotations

import dataclasses

from ..facts.configs import FAMILIES, IR_SE50, RESNET34, EncoderConfig, GeneratorConfig
from ..facts.domains import DOMAINS, Domain
from ..facts.errors import UsageError
from .config import EncoderTrainConfig

METHODS = tuple(FAMILIES)
HEADS = ("simple", "fpn")
BACKBONES = {"ir_se": IR_SE50, "resnet": RESNET34}
OFFICIAL_MAX_STEPS = 500_000
# the mini domain ships its own models and has its own presets (mini.train)
REAL_DOMAINS = tuple(name for name, d in DOMAINS.items() if d.checkpoint_folder is None)
PRESETS = {f"{method.replace('_', '-')}-{domain}": (method, domain) for domain in REAL_DOMAINS for method in METHODS}


def encoder_config(method: str, head: str, backbone: str, generator: GeneratorConfig, input_size: int = 256
                   ) -> EncoderConfig:
    """The encoder a method trains: 6-channel input for ReStyle, progressive for e4e, one style per w+ row."""
    if head not in HEADS:
        raise UsageError(f"--head must be one of {HEADS}. Got: {head!r}")
    if backbone not in BACKBONES:
        raise UsageError(f"--backbone must be one of {tuple(BACKBONES)}. Got: {backbone!r}")
    family = FAMILIES[method]
    return EncoderConfig(head=head, progressive=family.base == "e4e", backbone=BACKBONES[backbone],
                         input_nc=6 if family.restyle else 3, n_styles=generator.n_styles,
                         style_dim=generator.style_dim, input_size=input_size)


def preset_config(name: str, generator_path: str, generator: GeneratorConfig, method: str | None = None,
                  head: str | None = None, backbone: str | None = None, domain: str | None = None
                  ) -> EncoderTrainConfig:
    """The training config of preset ``name`` for this generator; ``method`` / ``head`` / ``backbone`` /
    ``domain`` replace the preset's."""
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
    dom: Domain = DOMAINS[domain or preset_domain]
    restyle, e4e = FAMILIES[method].restyle, FAMILIES[method].base == "e4e"
    enc = encoder_config(method, head or ("simple" if restyle else "fpn"),
                         backbone or ("ir_se" if dom.faces else "resnet"), generator, max(dom.input_hw))
    cfg = EncoderTrainConfig(
        family=method, encoder=enc, generator=str(generator_path), domain=dom.name, dataset_type=dom.dataset_type,
        batch_size=8, test_batch_size=8, n_iters_per_batch=5 if restyle else 1,
        max_steps=dom.train_steps or OFFICIAL_MAX_STEPS, optim_name="ranger", learning_rate=1e-4,
        start_from_latent_avg=True, l2_lambda=1.0, lpips_lambda=0.8, w_norm_lambda=0.0,
        id_lambda=0.1 if dom.faces else 0.0, moco_lambda=0.0 if dom.faces else 0.5,
        val_interval=5000, save_interval=10_000, image_interval=100, board_interval=50)
    if e4e:
        cfg = dataclasses.replace(cfg, delta_norm_lambda=2e-4, use_w_pool=True, w_discriminator_lambda=0.1,
                                  progressive_start=20_000, progressive_step_every=2000)
    return cfg


def list_presets() -> str:
    lines = []
    for name, (method, domain) in PRESETS.items():
        dom = DOMAINS[domain]
        what = "IR-SE50, ID loss" if dom.faces else "ResNet34, MoCo loss"
        lines.append(f"  {name:24s} {method} on {domain} ({what}, "
                     f"{dom.generator_size} px generator, {dom.train_steps or OFFICIAL_MAX_STEPS:,} steps)")
    return "\n".join(lines)
