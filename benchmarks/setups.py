"""The benchmarked networks: each configuration's architecture with seeded random weights.

Random weights cost the same arithmetic as trained ones; only the encoders' BatchNorm
statistics and the generator's noise strengths are drawn so that no branch is zero.
"""

from __future__ import annotations

import copy

import torch

from restyle_lab.facts.configs import GeneratorConfig, encoder_config_from_official
from restyle_lab.facts.geometry import CARS_GEOMETRY, Geometry
from restyle_lab.mini.architectures import MINI_GENERATOR, mini_encoder
from restyle_lab.models import set_impl
from restyle_lab.models.net import InversionNet

# name -> (official encoder_type, generator size, geometry); mini uses its own presets
CONFIGS = {
    "faces": ("BackboneEncoder", 1024, Geometry()),
    "cars": ("ResNetBackboneEncoder", 512, CARS_GEOMETRY),
    "church": ("ResNetBackboneEncoder", 256, Geometry()),
    "mini": (None, 64, Geometry(64, (64, 64))),
}


def build_net(config: str, seed: int = 0) -> InversionNet:
    """A ReStyle-pSp network of ``config`` with seeded random weights, eval mode, reference impl."""
    if config not in CONFIGS:
        raise ValueError(f"config must be one of {list(CONFIGS)}. Got: {config!r}")
    encoder_type, size, geometry = CONFIGS[config]
    torch.manual_seed(seed)
    if encoder_type is None:
        gen_cfg, enc_cfg = MINI_GENERATOR, mini_encoder("simple", False, 6)
    else:
        gen_cfg = GeneratorConfig(size)
        enc_cfg = encoder_config_from_official(encoder_type, 6, gen_cfg.n_styles)
    net = InversionNet("restyle_psp", enc_cfg, gen_cfg, geometry=geometry)
    with torch.no_grad():
        for name, module in net.named_modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
        for name, p in net.decoder.named_parameters():
            if name.endswith("noise.weight"):
                p.normal_(0, 0.1)
        net.latent_avg = net.decoder.mean_latent(2000, seed=seed)[0].repeat(gen_cfg.n_styles, 1)
    return net.eval()


def variants(net: InversionNet, impls: list[str]) -> dict:
    """impl name -> its own copy of ``net`` (``"fast+compile"``: torch.compile on top, opt-in)."""
    out = {}
    for name in impls:
        base, _, extra = name.partition("+")
        if extra not in ("", "compile"):
            raise ValueError(f"impl must be reference or fast, optionally +compile. Got: {name!r}")
        copy_ = set_impl(copy.deepcopy(net), base)
        if extra == "compile":
            copy_.encoder.forward = torch.compile(copy_.encoder.forward, dynamic=False)
            copy_.decoder.forward = torch.compile(copy_.decoder.forward, dynamic=False)
        out[name] = copy_
    return out


def input_batch(net: InversionNet, batch: int, seed: int = 1) -> torch.Tensor:
    """Seeded random images [batch, 3, H, W] in [-1, 1] at the encoder's input size (content does not change the cost)."""
    gen = torch.Generator().manual_seed(seed)
    p = next(net.parameters())
    return (torch.rand(batch, 3, *net.geometry.input_hw, generator=gen) * 2 - 1).to(p.device, p.dtype)
