"""Tiny random-weight networks at the mini geometry (64 px), for engine tests.

Their outputs are meaningless as images; tests use them only to check mechanics
(shapes, equalities, resumption), never to report a metric.
"""

from __future__ import annotations

from pathlib import Path

import torch

from restyle_lab.facts.configs import TINY
from restyle_lab.facts.geometry import Geometry
from restyle_lab.models.checkpoints import save_generator, save_network
from restyle_lab.models.net import InversionNet

GEOMETRY = Geometry(64, (64, 64))
ENCODERS = {"restyle_psp": "tiny-restyle-psp", "restyle_e4e": "tiny-restyle-e4e", "psp": "tiny-psp", "e4e": "tiny-e4e"}


def tiny_net(family: str, seed: int = 0) -> InversionNet:
    torch.manual_seed(seed)
    gen = TINY["tiny-generator"]
    net = InversionNet(family, TINY[ENCODERS[family]], gen, geometry=GEOMETRY)
    # a shared generator across families, as the real checkpoints share one StyleGAN
    torch.manual_seed(1234)
    net.decoder.load_state_dict(type(net.decoder)(gen).state_dict())
    net.latent_avg = net.decoder.mean_latent(2000, seed=0)[0].repeat(gen.n_styles, 1)
    return net.eval()


def write_tiny_checkpoints(folder) -> dict:
    folder = Path(folder)
    paths = {}
    for family in ENCODERS:
        paths[family] = folder / f"{family}.pt"
        save_network(tiny_net(family), paths[family])
    net = tiny_net("restyle_psp")
    paths["generator"] = folder / "generator.pt"
    save_generator(net.decoder, paths["generator"], w_avg=net.latent_avg[0])
    return paths


def write_tiny_images(folder, n: int = 6) -> Path:
    from restyle_lab.mini.dataset import write_test_set

    return write_test_set(folder, n=n)
