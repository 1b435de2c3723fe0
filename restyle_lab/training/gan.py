"""Adversarial training of a (small) StyleGAN2 generator on rendered images. Resumable.

Non-saturating logistic loss, lazy R1 on the discriminator, style-mixing regularisation,
an exponential moving average of the generator (the one that is shipped). No path-length
regulariser: it doubles the cost of a generator step on a CPU.

Resumable and repeatable: see ``restyle_lab.training.loop``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ..facts.configs import GeneratorConfig, generator_config_from_dict
from ..models.checkpoints import save_generator
from ..models.discriminator import Discriminator
from ..models.stylegan2 import Generator
from ..records.images import from_uint8, grid, save_png
from .loop import SavedConfig, read_state, train_loop


@dataclass
class GanConfig(SavedConfig):
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    d_channel_base: int = 2048
    d_channel_max: int = 128
    style: str = "photo"
    batch: int = 32
    iters: int = 4000
    lr: float = 0.002
    r1_gamma: float = 0.2
    r1_every: int = 16
    mixing_prob: float = 0.9
    ema_kimg: float = 5.0  # EMA half-life in thousands of images
    n_train_images: int = 30000
    seed: int = 0
    checkpoint_every: int = 100
    sample_every: int = 500
    freeze_mapping: bool = False  # fine-tuning: keep w space fixed so the two generators stay aligned
    nested: ClassVar[dict] = {"generator": generator_config_from_dict}
    # the learning rate is constant: a resume may also run the schedule longer or shorter
    resume_free_options: ClassVar[tuple] = ("iters", "checkpoint_every", "sample_every")


def _mixing_styles(gen: Generator, batch: int, prob: float):
    z = torch.randn(batch, gen.style_dim)
    if torch.rand(()) < prob:
        z2 = torch.randn(batch, gen.style_dim)
        inject = int(torch.randint(1, gen.n_latent, ()))
        return [z, z2], inject
    return [z], None


def _ema(target: Generator, source: Generator, beta: float):
    with torch.no_grad():
        for pt, ps in zip(target.parameters(), source.parameters()):
            pt.lerp_(ps, 1 - beta)
        for bt, bs in zip(target.buffers(), source.buffers()):
            bt.copy_(bs)


class GanTrainer:
    """One G step and one D step (+ lazy R1) per training step; ``images``: uint8 [n, size, size, 3]."""

    def __init__(self, cfg: GanConfig, images, init_from=None):
        self.cfg, self.images, self.init_from = cfg, images, init_from
        self.G = Generator(cfg.generator)
        self.D = Discriminator(cfg.generator.size, cfg.d_channel_base, cfg.d_channel_max)
        self.G_ema = copy.deepcopy(self.G).eval()
        g_params = [p for n, p in self.G.named_parameters() if not (cfg.freeze_mapping and n.startswith("style."))]
        c = cfg.r1_every / (cfg.r1_every + 1)  # lazy regularisation: rescale D's lr and betas
        self.opt_g = torch.optim.Adam(g_params, lr=cfg.lr, betas=(0.0, 0.99))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr * c, betas=(0.0, 0.99 ** c))
        if cfg.freeze_mapping:
            for p in self.G.style.parameters():
                p.requires_grad_(False)
        self.beta = 0.5 ** (cfg.batch / (cfg.ema_kimg * 1000))
        self.sample_z = torch.randn(32, cfg.generator.style_dim,
                                    generator=torch.Generator().manual_seed(cfg.seed + 7))

    def start(self, log):
        if self.init_from is not None:
            state = read_state(self.init_from)
            self.G.load_state_dict(state["G_ema"])
            self.G_ema.load_state_dict(state["G_ema"])
            self.D.load_state_dict(state["D"])
            log(f"fine-tuning from {self.init_from} (step {state['step']})")

    def load(self, state):
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])

    def state(self):
        return {"G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict()}

    def step(self, step):
        cfg, G, D = self.cfg, self.G, self.D
        idx = torch.randint(0, len(self.images), (cfg.batch,)).numpy()
        real = from_uint8(self.images[np.sort(idx)])
        flip = torch.rand(cfg.batch) < 0.5
        real[flip] = real[flip].flip(-1)

        styles, inject = _mixing_styles(G, cfg.batch, cfg.mixing_prob)
        with torch.no_grad():
            fake, _ = G(styles, inject_index=inject)
        d_loss = F.softplus(D(fake)).mean() + F.softplus(-D(real)).mean()
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        r1 = torch.zeros(())
        if step % cfg.r1_every == 0:
            real.requires_grad_(True)
            (grad,) = torch.autograd.grad(D(real).sum(), real, create_graph=True)
            r1 = grad.pow(2).flatten(1).sum(1).mean()
            self.opt_d.zero_grad(set_to_none=True)
            (cfg.r1_gamma / 2 * r1 * cfg.r1_every).backward()
            self.opt_d.step()

        styles, inject = _mixing_styles(G, cfg.batch, cfg.mixing_prob)
        fake, _ = G(styles, inject_index=inject)
        g_loss = F.softplus(-D(fake)).mean()
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        _ema(self.G_ema, G, self.beta)
        return {"d_loss": float(d_loss.detach()), "g_loss": float(g_loss.detach()), "r1": float(r1.detach())}

    def sample(self, step, record, path):
        with torch.no_grad():
            img, _ = self.G_ema([self.sample_z], randomize_noise=False)
        save_png(grid(img, 8), path, scale=2)
        return f"d={record['d_loss']:.3f} g={record['g_loss']:.3f}"


def train_gan(cfg: GanConfig, out_dir, images, init_from=None, max_minutes: float | None = None, log=print) -> Path:
    """Train (or resume) into ``out_dir`` on ``images`` (uint8 [n, size, size, 3]); returns ``state.pt``.

    ``init_from``: a state.pt of an earlier run to fine-tune from (G, G_ema and D weights).
    ``max_minutes``: stop early (resumably) after this much wall time.
    """
    return train_loop(GanTrainer(cfg, images, init_from), cfg, out_dir, max_minutes, log)


def export_generator(state_path, out_path, note: str = "") -> str:
    """Ship G_ema of a training state in the rosinality layout, with w_avg; returns sha256."""
    state = torch.load(state_path, map_location="cpu", weights_only=True)
    cfg = GanConfig.from_dict(state["config"])
    G = Generator(cfg.generator)
    G.load_state_dict(state["G_ema"])
    w_avg = G.mean_latent(100_000, seed=0)[0]
    meta = {"trained_steps": state["step"], "train_minutes": state["elapsed_s"] / 60,
            "train_config": state["config"], "note": note}
    return save_generator(G, out_path, w_avg=w_avg, extra={"training": meta})
