"""Seeded random-weight checkpoints written exactly as the official code writes them (no restyle-lab entry),
for a real domain's geometry and architectures. Only for mechanics: their outputs mean nothing, and no
number computed with them is ever reported as a metric.

Layouts (reference/checkpoint_layouts.json): ReStyle / pSp / e4e coaches save {'state_dict' (encoder.*
then decoder.*), 'opts', 'latent_avg' (n_styles, 512)}; rosinality's generator files {'g_ema',
'latent_avg' (512,)}.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from restyle_lab.facts.configs import GeneratorConfig, encoder_config_from_official
from restyle_lab.facts.domains import get_domain
from restyle_lab.models import Generator
from restyle_lab.models.net import InversionNet

# per domain: output size, and per checkpoint key (official encoder_type, input channels, opts beyond the common)
DOMAINS = {
    "cars": (512, {"restyle_psp": ("ResNetBackboneEncoder", 6, {"n_iters_per_batch": 5}),
                   "restyle_e4e": ("ResNetProgressiveBackboneEncoder", 6, {"n_iters_per_batch": 5}),
                   "psp": ("GradualStyleEncoder", 3, {"start_from_latent_avg": True, "learn_in_w": False}),
                   "e4e": ("Encoder4Editing", 3, {"start_from_latent_avg": True})}),
    "faces": (1024, {"restyle_psp": ("BackboneEncoder", 6, {"n_iters_per_batch": 5}),
                     "restyle_e4e": ("ProgressiveBackboneEncoder", 6, {"n_iters_per_batch": 5}),
                     "psp": ("GradualStyleEncoder", 3, {"start_from_latent_avg": True, "learn_in_w": False}),
                     "e4e": ("Encoder4Editing", 3, {"start_from_latent_avg": True})}),
}
FAMILIES = {"restyle_psp": "restyle_psp", "restyle_e4e": "restyle_e4e", "psp": "psp", "e4e": "e4e"}


def write_official_checkpoints(folder, domain: str = "cars", seed: int = 0, keys=None) -> dict:
    """key -> path of every file the domain's notebooks look for (its Domain record), official names."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    size, encoders = DOMAINS[domain]
    dom = get_domain(domain)
    torch.manual_seed(seed)
    gen = Generator(GeneratorConfig(size=size))
    w_avg = gen.mean_latent(2000, seed=seed)[0]
    names = dom.checkpoint_files()
    paths = {"generator": folder / names["generator"]}
    torch.save({"g_ema": gen.state_dict(), "latent_avg": w_avg.clone()}, paths["generator"])
    for key, (encoder_type, input_nc, extra) in encoders.items():
        if keys is not None and key not in keys:
            continue
        torch.manual_seed(seed + 1 + len(paths))
        config = encoder_config_from_official(encoder_type, input_nc, gen.n_styles)
        net = InversionNet(FAMILIES[key], config, gen.config, geometry=dom.geometry)
        state = OrderedDict((f"encoder.{k}", v) for k, v in net.encoder.state_dict().items())
        state.update((f"decoder.{k}", v) for k, v in gen.state_dict().items())
        size_key = "stylegan_size" if key == "e4e" else "output_size"
        opts = {"encoder_type": encoder_type, size_key: size, "dataset_type": dom.dataset_type, "device": "cuda:0",
                **({} if key == "e4e" else {"input_nc": input_nc}), **extra}
        paths[key] = folder / names[key]
        torch.save({"state_dict": state, "opts": opts, "latent_avg": w_avg.repeat(gen.n_styles, 1)}, paths[key])
    return paths


def write_photos(folder, n: int, size: tuple, seed: int = 0) -> Path:
    """n smooth random colour fields as JPEGs of ``size`` (W, H): stand-in test images."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize(size, Image.Resampling.BICUBIC).save(folder / f"{i:05d}.jpg", quality=90)
    return folder
