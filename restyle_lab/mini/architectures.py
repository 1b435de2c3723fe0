"""Architectures and training recipes of the shipped mini-domain models.

``restyle-lab train --preset <name>`` regenerates each shipped file from these.
"""

from __future__ import annotations

from ..facts.configs import BackboneConfig, EncoderConfig, GeneratorConfig

IMAGE_SIZE = 64

# 64 px StyleGAN2: 10 style inputs (coarse 0-3, medium 4-7, fine 8-9), 96/96/96/48/24 channels
# at 4/8/16/32/64 px, a 128-d w space behind an 8-layer mapping network.
MINI_GENERATOR = GeneratorConfig(size=IMAGE_SIZE, style_dim=128, n_mlp=8, channel_multiplier=1,
                                 channel_base=1536, channel_max=96)

# A narrow IR-SE backbone: four stages of 1/2/2/1 units, 32-128 channels, 4x4 final map.
MINI_IRSE = BackboneConfig(kind="ir_se", units=(1, 2, 2, 1), channels=(32, 48, 64, 128), stem_channels=32,
                           se_reduction=8)


def mini_encoder(head: str, progressive: bool, input_nc: int) -> EncoderConfig:
    return EncoderConfig(head=head, progressive=progressive, backbone=MINI_IRSE, input_nc=input_nc,
                         n_styles=MINI_GENERATOR.n_styles, style_dim=MINI_GENERATOR.style_dim,
                         input_size=IMAGE_SIZE)


MINI_ENCODERS = {
    "restyle_psp": mini_encoder("simple", False, 6),
    "restyle_psp_fpn": mini_encoder("fpn", False, 6),
    "restyle_e4e": mini_encoder("simple", True, 6),
    "psp": mini_encoder("fpn", False, 3),
    "e4e": mini_encoder("fpn", True, 3),
}
