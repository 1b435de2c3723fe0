"""e4e's latent discriminator while an encoder trains: its pools of past codes, its step and R1.

As the official ReStyle-e4e coach: before each encoder step the discriminator takes one Adam step
(lr ``w_discriminator_lr``) on "real" codes, the mapping network's w of fresh z, against "fake" ones,
the encoder's raw output for [x, average image] at the rows being trained; with ``use_w_pool`` both go
through a pool of ``w_pool_size`` past codes first. Every ``d_reg_every`` steps an R1 step follows
(r1 / 2 * penalty * d_reg_every). The fake codes are the encoder's output *before* latent_avg is added,
as in the official code.
"""

from __future__ import annotations

import torch

from ..models.latent_discriminator import LatentCodesDiscriminator
from . import criteria
from .distributed import Ranks, average_gradients


class LatentPool:
    """e4e's LatentCodesPool. query(ws): ws [N, D], or [N, R, D] (one random row of each is used). While
    fewer than ``size`` codes are stored, each code is stored and returned; after that, with probability
    1/2 it is swapped for a random stored one, which is returned instead. Size 0: codes pass through."""

    def __init__(self, size: int):
        self.size = size
        self.codes: list = []

    def query(self, ws: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return ws
        out = []
        for w in ws:
            if w.ndim == 2:
                w = w[int(torch.randint(len(w), ()))]
            if len(self.codes) < self.size:
                self.codes.append(w.detach().clone())
                out.append(w)
            elif float(torch.rand(())) > 0.5:
                i = int(torch.randint(self.size, ()))
                out.append(self.codes[i].clone())
                self.codes[i] = w.detach().clone()
            else:
                out.append(w)
        return torch.stack(out)

    def state(self) -> torch.Tensor:
        return torch.stack(self.codes).cpu() if self.codes else torch.zeros(0)

    def load(self, codes: torch.Tensor, device) -> None:
        self.codes = [c.to(device) for c in codes]


class LatentDiscriminatorTrainer:
    """The discriminator, its Adam optimiser and its two pools (one set per rank; gradients are averaged)."""

    def __init__(self, cfg, style_dim: int, device, ranks: Ranks):
        self.cfg, self.ranks = cfg, ranks
        self.D = LatentCodesDiscriminator(style_dim, 4).to(device)
        self.opt = torch.optim.Adam(self.D.parameters(), lr=cfg.w_discriminator_lr)
        size = cfg.w_pool_size if cfg.use_w_pool else 0
        self.real_pool, self.fake_pool = LatentPool(size), LatentPool(size)
        self.D.requires_grad_(False)

    def step(self, step: int, inputs: list, encoder, mapping, rows, style_dim: int) -> dict:
        """One discriminator step over this rank's micro-batches of encoder inputs; returns its losses."""
        D, n = self.D, len(inputs)
        D.requires_grad_(True)
        self.opt.zero_grad(set_to_none=True)
        reals, log = [], {"d_real_loss": 0.0, "d_fake_loss": 0.0}
        for x_input in inputs:
            with torch.no_grad():
                z = torch.randn(x_input.shape[0], style_dim, device=x_input.device, dtype=x_input.dtype)
                real = self.real_pool.query(mapping(z))
                fake = self.fake_pool.query(encoder(x_input)[:, rows])
                if fake.ndim == 3:
                    fake = fake[:, 0]
            real_pred, fake_pred = D(real), D(fake)
            log["d_real_loss"] += float(torch.nn.functional.softplus(-real_pred.detach()).mean()) / n
            log["d_fake_loss"] += float(torch.nn.functional.softplus(fake_pred.detach()).mean()) / n
            (criteria.discriminator_loss(real_pred, fake_pred) / n).backward()
            reals.append(real)
        average_gradients(D, self.ranks)
        self.opt.step()
        log["discriminator_loss"] = log["d_real_loss"] + log["d_fake_loss"]
        if step % self.cfg.d_reg_every == 0:
            self.opt.zero_grad(set_to_none=True)
            r1_total = 0.0
            for real in reals:
                real = real.detach().requires_grad_(True)
                penalty = criteria.r1_penalty(D(real), real)
                final = self.cfg.r1 / 2 * penalty * self.cfg.d_reg_every
                (final / n).backward()
                r1_total += float(final.detach()) / n
            average_gradients(D, self.ranks)
            self.opt.step()
            log["discriminator_r1_loss"] = r1_total
        D.requires_grad_(False)
        return log

    def state(self) -> dict:
        return {"discriminator": self.D.state_dict(), "discriminator_opt": self.opt.state_dict()}

    def pools(self) -> dict:
        """This rank's pools (every rank keeps its own)."""
        return {"real_pool": self.real_pool.state(), "fake_pool": self.fake_pool.state()}

    def load(self, state: dict, pools: dict | None, device) -> None:
        self.D.load_state_dict(state["discriminator"])
        self.opt.load_state_dict(state["discriminator_opt"])
        if pools is not None:
            self.real_pool.load(pools["real_pool"], device)
            self.fake_pool.load(pools["fake_pool"], device)
