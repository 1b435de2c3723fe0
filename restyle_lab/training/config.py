"""What an encoder training run is: one config whose options carry the official names, and the
schedules that follow from it (learning rate, e4e's progressive stages).

Torch-free, so the command line builds its ``train`` options from these fields without importing torch.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import ClassVar

from ..facts.configs import FAMILIES, EncoderConfig, encoder_config_from_dict, to_dict
from ..facts.errors import UsageError

# options that must be finite numbers above 0, and those that may also be 0 (besides every loss weight,
# ``*_lambda``: 0 switches the loss off)
POSITIVE = ("learning_rate", "w_discriminator_lr")
NON_NEGATIVE = ("r1", "lr_final_fraction")


class SavedConfig:
    """A training config's dict form (saved in every state) and back; ``nested`` rebuilds the
    architecture configs inside it. ``resume_free_options``: what a resumed run may change (``resume_free``)."""

    nested: ClassVar[dict] = {}
    resume_free_options: ClassVar[tuple] = ()

    def resume_free(self) -> set[str]:
        """The options a resumed run may give other values: nothing already computed depends on them, and from
        the saved step on the run computes exactly what it would have computed with them from the start (when
        records, pictures and states are written; the step count where the schedule does not depend on it)."""
        return set(self.resume_free_options)

    def as_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, d: dict):
        d = dict(d)
        for key, build in cls.nested.items():
            d[key] = build(d[key])
        return cls(**d)


@dataclass
class EncoderTrainConfig(SavedConfig):
    """One encoder training run. Fields with an official name (pSp / e4e / ReStyle train options) use it
    and mean the same; the others are restyle-lab's and say so."""

    family: str = "restyle_psp"  # restyle_psp, restyle_e4e, psp or e4e
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    generator: str = ""  # official: stylegan_weights
    domain: str = "faces"  # the input geometry (cars crop) and what the presets derived from
    dataset_type: str = "ffhq_encode"
    backbone_init: str = "pretrained"  # restyle-lab: "pretrained" (IR-SE50 ArcFace / ResNet34 ImageNet) or "random"
    init_encoder: str = ""  # restyle-lab: an encoder checkpoint whose encoder weights start the run
    # batches
    batch_size: int = 8  # per rank and micro-batch: what BatchNorm sees
    accumulate: int = 1  # restyle-lab: micro-batches per rank and optimiser step
    test_batch_size: int = 8
    n_iters_per_batch: int = 5  # ReStyle's iterations; a single-pass family trains one pass per batch (official)
    max_steps: int = 500_000
    # optimiser
    optim_name: str = "ranger"
    learning_rate: float = 1e-4
    lr_schedule: str = "constant"  # restyle-lab: "constant" (official) or "cosine" (to lr * lr_final_fraction)
    lr_final_fraction: float = 0.1
    # restyle-lab: the last freeze_bn_steps steps train with BatchNorm's running statistics fixed, as
    # inference uses them (ReStyle's inputs change statistics across iterations; on mini, without it,
    # eval-mode inference had 3.5x the MSE at step 1). The cosine decay ends where they begin.
    freeze_bn_steps: int = 0
    # losses (official names and meaning): each weight is one term of training.losses
    start_from_latent_avg: bool = True
    l2_lambda: float = 1.0
    lpips_lambda: float = 0.8
    id_lambda: float = 0.0
    moco_lambda: float = 0.0
    w_norm_lambda: float = 0.0
    # e4e
    delta_norm: int = 2
    delta_norm_lambda: float = 2e-4
    progressive_start: int | None = None
    progressive_step_every: int = 2000
    w_discriminator_lambda: float = 0.0
    w_discriminator_lr: float = 2e-5
    r1: float = 10.0
    d_reg_every: int = 16
    use_w_pool: bool = False
    w_pool_size: int = 50
    randomize_noise: bool = True  # pSp.forward's default in the coaches
    # mini only: "" the target is the input; "toon" the toon render of the same face
    target_style: str = ""
    n_train_images: int = 30000  # mini only: rendered training images
    # records (official names; save_interval also writes the resumable state)
    seed: int = 0
    save_interval: int = 10_000
    image_interval: int = 100
    board_interval: int = 50
    val_interval: int | None = 1000
    nested: ClassVar[dict] = {"encoder": encoder_config_from_dict}
    resume_free_options: ClassVar[tuple] = ("save_interval", "image_interval", "board_interval", "val_interval")

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise UsageError(f"family must be one of {tuple(FAMILIES)}. Got: {self.family!r}")
        for name in POSITIVE:
            if not (isinstance(getattr(self, name), (int, float)) and math.isfinite(getattr(self, name))
                    and getattr(self, name) > 0):
                raise UsageError(f"{name} must be a finite number above 0. Got: {getattr(self, name)}")
        for name in NON_NEGATIVE + loss_weight_options():
            if not (isinstance(getattr(self, name), (int, float)) and math.isfinite(getattr(self, name))
                    and getattr(self, name) >= 0):
                raise UsageError(f"{name} must be a finite number of at least 0. Got: {getattr(self, name)}")
        if self.id_lambda > 0 and self.moco_lambda > 0:
            raise UsageError("id_lambda and moco_lambda are both above 0; the official code refuses that too: "
                             "set one of them to 0")
        for name in ("batch_size", "accumulate", "n_iters_per_batch", "max_steps", "save_interval",
                     "image_interval", "board_interval", "test_batch_size", "d_reg_every", "progressive_step_every",
                     "w_pool_size", "n_train_images"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be at least 1. Got: {getattr(self, name)}")
        if self.val_interval is not None and self.val_interval < 1:
            raise UsageError(f"val_interval must be at least 1 (or none). Got: {self.val_interval}")
        if self.freeze_bn_steps < 0 or (self.progressive_start is not None and self.progressive_start < 0):
            raise UsageError("freeze_bn_steps and progressive_start must be at least 0. Got: "
                             f"{self.freeze_bn_steps}, {self.progressive_start}")
        if self.optim_name not in ("ranger", "adam"):
            raise UsageError(f"optim_name must be ranger or adam. Got: {self.optim_name!r}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise UsageError(f"lr_schedule must be constant or cosine. Got: {self.lr_schedule!r}")
        if self.backbone_init not in ("pretrained", "random"):
            raise UsageError(f"backbone_init must be pretrained or random. Got: {self.backbone_init!r}")
        if self.w_discriminator_lambda > 0 and not self.encoder.progressive:
            raise UsageError("w_discriminator_lambda is e4e's (a progressive encoder); set it to 0 for "
                             f"{self.family}")

    def resume_free(self) -> set[str]:
        """The intervals; and the step count, when the learning rate is constant and no BatchNorm-frozen tail
        is counted back from the end (a cosine decay or a frozen tail would move with it)."""
        free = super().resume_free()
        if self.lr_schedule == "constant" and self.freeze_bn_steps == 0:
            free.add("max_steps")
        return free

    @property
    def is_restyle(self) -> bool:
        return FAMILIES[self.family].restyle

    def loop_schedule(self) -> dict:
        """What the shared loop reads: steps, seed, state and picture intervals."""
        return {"iters": self.max_steps, "seed": self.seed, "checkpoint_every": self.save_interval,
                "sample_every": self.image_interval}


def loss_weight_options() -> tuple:
    """The loss weights among the options (``*_lambda``), each a term of ``training.losses``."""
    return tuple(f.name for f in dataclasses.fields(EncoderTrainConfig) if f.name.endswith("_lambda"))


def learning_rate(cfg: EncoderTrainConfig, step: int) -> float:
    """Constant (official), or a cosine from learning_rate to learning_rate * lr_final_fraction that ends
    where the BatchNorm-frozen tail begins."""
    if cfg.lr_schedule == "constant":
        return cfg.learning_rate
    t = min(step / max(cfg.max_steps - cfg.freeze_bn_steps, 1), 1.0)
    f = cfg.lr_final_fraction
    return cfg.learning_rate * (f + (1 - f) * 0.5 * (1 + math.cos(math.pi * t)))


def progressive_steps(cfg: EncoderTrainConfig) -> list[int] | None:
    """The official ``progressive_steps``: [0, start, start + every, ...], one entry per style (stage i
    begins at entry i); None when training is not progressive."""
    if not cfg.encoder.progressive or cfg.progressive_start is None:
        return None
    return [0] + [cfg.progressive_start + i * cfg.progressive_step_every for i in range(cfg.encoder.n_styles - 1)]


def progressive_stage(cfg: EncoderTrainConfig, step: int) -> int | None:
    """The number of offsets trained at ``step`` (e4e); None = all of them (not progressive, or the last
    stage, which trains every offset as inference uses them)."""
    steps = progressive_steps(cfg)
    if steps is None:
        return None
    stage = sum(1 for s in steps if step >= s) - 1
    return None if stage >= cfg.encoder.n_styles - 1 else stage


def trained_rows(cfg: EncoderTrainConfig, step: int) -> list[int]:
    """The w+ rows the encoder trains at ``step``: 0..stage (the official dims_to_discriminate)."""
    stage = progressive_stage(cfg, step)
    return list(range(cfg.encoder.n_styles if stage is None else stage + 1))


def official_opts(cfg: EncoderTrainConfig, output_size: int, loss_options: dict, world_size: int = 1) -> dict:
    """The options as the official coaches save them (``vars(opts)``), plus restyle-lab's own;
    ``loss_options``: the loss weights under their names (``training.losses.official_loss_options``)."""
    opts = {"dataset_type": cfg.dataset_type, "encoder_type": cfg.encoder.official_encoder_type or "custom",
            "input_nc": cfg.encoder.input_nc, "batch_size": cfg.batch_size, "test_batch_size": cfg.test_batch_size,
            "learning_rate": cfg.learning_rate, "optim_name": cfg.optim_name, "train_decoder": False,
            "start_from_latent_avg": cfg.start_from_latent_avg, **loss_options, "stylegan_weights": cfg.generator,
            "checkpoint_path": None, "max_steps": cfg.max_steps, "image_interval": cfg.image_interval,
            "board_interval": cfg.board_interval, "val_interval": cfg.val_interval,
            "save_interval": cfg.save_interval, "n_iters_per_batch": cfg.n_iters_per_batch}
    opts["stylegan_size" if cfg.family == "e4e" else "output_size"] = output_size
    if cfg.encoder.progressive:
        opts.update(delta_norm=cfg.delta_norm, progressive_steps=progressive_steps(cfg),
                    progressive_start=cfg.progressive_start, progressive_step_every=cfg.progressive_step_every,
                    w_discriminator_lr=cfg.w_discriminator_lr, r1=cfg.r1, d_reg_every=cfg.d_reg_every,
                    use_w_pool=cfg.use_w_pool, w_pool_size=cfg.w_pool_size)
    opts.update(effective_batch_size=cfg.batch_size * cfg.accumulate * world_size, world_size=world_size,
                accumulate=cfg.accumulate, lr_schedule=cfg.lr_schedule, freeze_bn_steps=cfg.freeze_bn_steps,
                backbone_init=cfg.backbone_init, seed=cfg.seed, family=cfg.family, domain=cfg.domain)
    return opts


# ------------------------------------------------------------------ command-line overrides

# the fields a command line may set, with their types; everything but the architecture and paths
OVERRIDABLE = {f.name: f.type for f in dataclasses.fields(EncoderTrainConfig)
               if f.name not in ("family", "encoder", "generator", "domain", "dataset_type", "target_style",
                                 "init_encoder", "nested")}


def parse_value(name: str, text):
    """A command-line value for option ``name``: int / float / bool / str / optional int ("none")."""
    kind = str(OVERRIDABLE[name])
    if not isinstance(text, str):
        return text
    if "None" in kind and text.lower() in ("none", "null", ""):
        return None
    try:
        if kind.startswith("int"):
            return int(text)
        if kind.startswith("float"):
            return float(text)
        if kind.startswith("bool"):
            if text.lower() in ("1", "true", "yes"):
                return True
            if text.lower() in ("0", "false", "no"):
                return False
            raise ValueError(text)
    except ValueError:
        raise UsageError(f"--{name}: expected {kind}, got {text!r}") from None
    return text


def with_overrides(cfg: EncoderTrainConfig, overrides: dict) -> EncoderTrainConfig:
    """``cfg`` with options replaced (name -> value or command-line text); unknown names are refused."""
    unknown = sorted(set(overrides) - set(OVERRIDABLE))
    if unknown:
        raise UsageError(f"unknown training option(s) {unknown}; known: {', '.join(OVERRIDABLE)}")
    return dataclasses.replace(cfg, **{k: parse_value(k, v) for k, v in overrides.items()})
