"""Architecture configs: frozen dataclasses that travel with the weights.

A config fully determines a module's parameter names and shapes, so a checkpoint
written by this package can be rebuilt without guessing. The official checkpoints
carry no such config; ``restyle_lab.models.checkpoints`` derives one from their ``opts``
and state dict.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

__all__ = [
    "Family",
    "FAMILIES",
    "GeneratorConfig",
    "BackboneConfig",
    "EncoderConfig",
    "OFFICIAL_ENCODER_TYPES",
    "IR_SE50",
    "RESNET34",
    "encoder_config_from_official",
    "to_dict",
    "generator_config_from_dict",
    "encoder_config_from_dict",
    "TINY",
]


@dataclass(frozen=True)
class Family:
    """An inversion network family. base: the single-pass method it builds on (pSp or e4e: e4e trains
    offsets progressively and saves its own option names); restyle: a 6-channel input [x, y_t] and a
    residual per step from the average latent and image, instead of one pass from x alone."""

    name: str
    base: str
    restyle: bool


FAMILIES = {f.name: f for f in (Family("restyle_psp", "psp", True), Family("restyle_e4e", "e4e", True),
                                Family("psp", "psp", False), Family("e4e", "e4e", False))}


def _log2_exact(value: int, what: str) -> int:
    log = int(round(math.log2(value))) if value > 0 else -1
    if value <= 0 or 2 ** log != value:
        raise ValueError(f"{what} must be a power of two. Got: {value}")
    return log


@dataclass(frozen=True)
class GeneratorConfig:
    """StyleGAN2 generator, parameter-compatible with rosinality's ``Generator``.

    Channels per resolution follow rosinality's table, which is
    ``min(channel_max, channel_base * channel_multiplier // res)`` (512 up to 32 px,
    then halving). Narrow generators lower ``channel_base`` / ``channel_max``.
    ``conv_clamp``: NVlabs' clamp of every layer's activation (and each RGB output) to
    +-conv_clamp (stylegan2-ada-pytorch ``--cfg auto`` uses 256); None: no clamp (rosinality).
    """

    size: int = 1024
    style_dim: int = 512
    n_mlp: int = 8
    channel_multiplier: int = 2
    channel_base: int = 16384
    channel_max: int = 512
    lr_mlp: float = 0.01
    blur_kernel: tuple = (1, 3, 3, 1)
    conv_clamp: float | None = None

    def __post_init__(self):
        if self.conv_clamp is not None and not self.conv_clamp > 0:
            raise ValueError(f"GeneratorConfig.conv_clamp must be positive or None. Got: {self.conv_clamp}")
        if _log2_exact(self.size, "GeneratorConfig.size") < 3:
            raise ValueError(f"GeneratorConfig.size must be at least 8. Got: {self.size}")
        object.__setattr__(self, "blur_kernel", tuple(self.blur_kernel))

    @property
    def log_size(self) -> int:
        return int(math.log2(self.size))

    @property
    def n_styles(self) -> int:
        """Number of w+ rows: 2*log2(size) - 2 (18 at 1024, 16 at 512, 14 at 256)."""
        return 2 * self.log_size - 2

    @property
    def n_noises(self) -> int:
        return 2 * (self.log_size - 2) + 1

    def channels(self, res: int) -> int:
        return int(min(self.channel_max, self.channel_base * self.channel_multiplier // res))


@dataclass(frozen=True)
class BackboneConfig:
    """Feature extractor of the encoders.

    ``kind='ir_se'``: the ArcFace IR-SE network (a 3x3 stride-1 stem, four stages whose
    first unit has stride 2). ``kind='resnet'``: torchvision ResNet BasicBlocks behind
    a 7x7 stride-2 stem with a PReLU and no max-pool (the first stage has stride 1).
    Either way the last feature map is input_size / 16.
    """

    kind: str = "ir_se"
    units: tuple = (3, 4, 14, 3)
    channels: tuple = (64, 128, 256, 512)
    stem_channels: int = 64
    se_reduction: int = 16

    def __post_init__(self):
        if self.kind not in ("ir_se", "resnet"):
            raise ValueError(f"BackboneConfig.kind must be 'ir_se' or 'resnet'. Got: {self.kind!r}")
        object.__setattr__(self, "units", tuple(self.units))
        object.__setattr__(self, "channels", tuple(self.channels))
        if len(self.units) != 4 or len(self.channels) != 4:
            raise ValueError(f"a backbone has 4 stages. Got units={self.units}, channels={self.channels}")
        if self.kind == "ir_se" and min(self.channels) // self.se_reduction < 1:
            raise ValueError(
                f"se_reduction={self.se_reduction} leaves no channels in the SE block of a "
                f"{min(self.channels)}-channel stage")


IR_SE50 = BackboneConfig("ir_se", (3, 4, 14, 3), (64, 128, 256, 512), 64, 16)
RESNET34 = BackboneConfig("resnet", (3, 4, 6, 3), (64, 128, 256, 512), 64, 16)


@dataclass(frozen=True)
class EncoderConfig:
    """One of the pSp / e4e / ReStyle encoders.

    head: ``'simple'`` reads every style from the last feature map (ReStyle's
    BackboneEncoder); ``'fpn'`` is pSp's GradualStyleEncoder: styles
    [0, coarse_ind) from the last map, [coarse_ind, middle_ind) from the 2x map and
    the rest from the 4x map.
    progressive: e4e's form, one base code plus per-style offsets.
    input_size: the nominal input width; the style heads' stride-2 convolution count
    is log2 of each tapped map's width.
    """

    head: str = "simple"
    progressive: bool = False
    backbone: BackboneConfig = field(default_factory=lambda: IR_SE50)
    input_nc: int = 6
    n_styles: int = 18
    style_dim: int = 512
    input_size: int = 256
    coarse_ind: int = 3
    middle_ind: int = 7

    def __post_init__(self):
        if self.head not in ("simple", "fpn"):
            raise ValueError(f"EncoderConfig.head must be 'simple' or 'fpn'. Got: {self.head!r}")
        if isinstance(self.backbone, dict):
            object.__setattr__(self, "backbone", BackboneConfig(**self.backbone))
        if _log2_exact(self.input_size, "EncoderConfig.input_size") < 5:
            raise ValueError(f"EncoderConfig.input_size must be at least 32. Got: {self.input_size}")
        if self.n_styles < 1:
            raise ValueError(f"EncoderConfig.n_styles must be positive. Got: {self.n_styles}")

    @property
    def official_encoder_type(self) -> str | None:
        for name, (head, progressive, backbone) in OFFICIAL_ENCODER_TYPES.items():
            if (head, progressive, backbone) == (self.head, self.progressive, self.backbone.kind):
                if name == "Encoder4Editing" and self.input_nc != 3:
                    continue
                return name
        return None


# Official encoder_type -> (head, progressive, backbone kind). The ReStyle repo accepts the
# first six; Encoder4Editing is the original e4e encoder (3-channel input hard-coded).
OFFICIAL_ENCODER_TYPES = {
    "BackboneEncoder": ("simple", False, "ir_se"),
    "ResNetBackboneEncoder": ("simple", False, "resnet"),
    "GradualStyleEncoder": ("fpn", False, "ir_se"),
    "ResNetGradualStyleEncoder": ("fpn", False, "resnet"),
    "ProgressiveBackboneEncoder": ("simple", True, "ir_se"),
    "ResNetProgressiveBackboneEncoder": ("simple", True, "resnet"),
    "Encoder4Editing": ("fpn", True, "ir_se"),
}


def encoder_config_from_official(encoder_type: str, input_nc: int, n_styles: int) -> EncoderConfig:
    """The EncoderConfig of an official ``encoder_type`` (IR-SE50 / ResNet34, 512-d styles)."""
    if encoder_type not in OFFICIAL_ENCODER_TYPES:
        known = ", ".join(OFFICIAL_ENCODER_TYPES)
        raise ValueError(f"unknown encoder_type {encoder_type!r}; known types: {known}")
    head, progressive, kind = OFFICIAL_ENCODER_TYPES[encoder_type]
    backbone = IR_SE50 if kind == "ir_se" else RESNET34
    return EncoderConfig(head=head, progressive=progressive, backbone=backbone,
                         input_nc=input_nc, n_styles=n_styles)


def to_dict(config) -> dict:
    """Plain-dict form of a config (JSON- and weights_only-safe)."""
    out = dataclasses.asdict(config)
    return _tuples_to_lists(out)


def _tuples_to_lists(value):
    if isinstance(value, dict):
        return {k: _tuples_to_lists(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_tuples_to_lists(v) for v in value]
    return value


def _known_fields(cls, data: dict, what: str) -> dict:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{what} has unknown fields {unknown}; known: {sorted(names)}")
    return dict(data)


def generator_config_from_dict(data: dict) -> GeneratorConfig:
    return GeneratorConfig(**_known_fields(GeneratorConfig, data, "generator config"))


def encoder_config_from_dict(data: dict) -> EncoderConfig:
    data = _known_fields(EncoderConfig, data, "encoder config")
    if "backbone" in data:
        data["backbone"] = BackboneConfig(**_known_fields(BackboneConfig, data["backbone"], "backbone config"))
    return EncoderConfig(**data)


# Narrow members of each family. "tiny" is for unit tests (seconds on a CPU, random weights,
# the mini domain's 64 px geometry); the mini domain's shipped models use restyle_lab.mini.architectures.
_TINY_BACKBONE = BackboneConfig("ir_se", (1, 1, 1, 1), (8, 16, 16, 32), 8, 4)
_TINY_RESNET = BackboneConfig("resnet", (1, 1, 1, 1), (8, 16, 16, 32), 8, 4)
TINY = {
    "tiny-generator": GeneratorConfig(size=64, style_dim=32, n_mlp=2, channel_multiplier=1,
                                      channel_base=512, channel_max=32),
    "tiny-restyle-psp": EncoderConfig("simple", False, _TINY_BACKBONE, 6, 10, 32, 64),
    "tiny-restyle-psp-fpn": EncoderConfig("fpn", False, _TINY_BACKBONE, 6, 10, 32, 64),
    "tiny-restyle-psp-resnet": EncoderConfig("simple", False, _TINY_RESNET, 6, 10, 32, 64),
    "tiny-restyle-e4e": EncoderConfig("simple", True, _TINY_BACKBONE, 6, 10, 32, 64),
    "tiny-psp": EncoderConfig("fpn", False, _TINY_BACKBONE, 3, 10, 32, 64),
    "tiny-e4e": EncoderConfig("fpn", True, _TINY_BACKBONE, 3, 10, 32, 64),
}
