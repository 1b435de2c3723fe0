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
the official default. ``training.run.preset_config`` builds a preset's config; each loss term's weight in it
comes from the term (``training.losses``). Torch-free (the command line lists the presets).
"""

from __future__ import annotations

from ..facts.configs import FAMILIES, IR_SE50, RESNET34, EncoderConfig, GeneratorConfig
from ..facts.domains import DOMAINS
from ..facts.errors import UsageError

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


def list_presets() -> str:
    lines = []
    for name, (method, domain) in PRESETS.items():
        dom = DOMAINS[domain]
        what = "IR-SE50, ID loss" if dom.faces else "ResNet34, MoCo loss"
        lines.append(f"  {name:24s} {method} on {domain} ({what}, "
                     f"{dom.generator_size} px generator, {dom.train_steps or OFFICIAL_MAX_STEPS:,} steps)")
    return "\n".join(lines)
