"""Training ReStyle encoders (and single-pass pSp / e4e baselines) against a frozen generator.

The ReStyle scheme (paper Sec. 4): for every batch, ``n_iters_per_batch`` iterations
start from (latent_avg, average image); at each the encoder sees [x, y_t] and predicts a
residual, w_{t+1} = w_t + E([x, y_t]); the loss of every iteration is back-propagated,
y_t and w_t are detached before the next iteration, and the optimiser steps once per
batch. A single-pass baseline is the same with one iteration and a 3-channel input.

Losses: L2 (+ LPIPS when its pretrained weights are available; the choice is recorded),
the pSp w-norm regulariser, and for e4e variants progressive training and the delta
regulariser. Resumable and repeatable: see ``restyle_lab.training.loop``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..checkpoints import load_generator, load_network, save_network
from ..configs import EncoderConfig, encoder_config_from_dict
from ..geometry import Geometry
from ..images import from_uint8, grid, save_png
from ..metrics.lpips_metric import LpipsUnavailable, load_lpips
from ..net import InversionNet
from ..inversion.loops import average_image
from .loop import SavedConfig, train_loop


@dataclass
class EncoderTrainConfig(SavedConfig):
    family: str = "restyle_psp"
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    generator: str = ""  # path of the (frozen) generator file; training images are always photo renders
    batch: int = 8
    iters: int = 3000
    n_iters_per_batch: int = 5
    lr: float = 3e-4
    lr_final_fraction: float = 0.1  # cosine decay from lr to lr * this over the run
    l2_lambda: float = 1.0
    lpips_lambda: float = 0.8  # used only when LPIPS weights are available offline
    w_norm_lambda: float = 0.0
    delta_norm_lambda: float = 2e-4
    progressive_start: int | None = None  # e4e: steps before the first offset is trained
    progressive_step_every: int = 100
    n_train_images: int = 30000
    seed: int = 0
    checkpoint_every: int = 100
    sample_every: int = 500
    randomize_noise: bool = True  # as the official coaches (pSp.forward's default)
    # encoder file whose encoder weights start the run (a new generator's encoder is
    # fine-tuned from a trained one, as the toonify GAN is fine-tuned from the FFHQ one)
    init_encoder: str = ""
    # ReStyle feeds each batch through the encoder n_iters_per_batch times with inputs of different
    # statistics ([x, average image] first, [x, nearly x] last). BatchNorm's running averages become a
    # mixture that matches none of them, so eval-mode inference is worse than training at every step
    # (on mini, 3.5x the MSE at step 1). The last freeze_bn_steps steps train with the running
    # statistics fixed, as inference uses them; the cosine decay ends where they begin.
    freeze_bn_steps: int = 0
    # "": the target is the input. "toon": the target is the toon render of the same face (same
    # split and index). Only a synthetic domain has such pairs; the mini toon generator, fine-tuned
    # briefly, can still draw photo-like faces in W+, and an encoder trained to reproduce the photo
    # learns to do exactly that (see the mini-restyle-psp-toon preset).
    target_style: str = ""
    nested: ClassVar[dict] = {"encoder": encoder_config_from_dict}


def build_net(cfg: EncoderTrainConfig) -> InversionNet:
    gen, w_avg, _ = load_generator(cfg.generator)
    size = gen.config.size
    net = InversionNet(cfg.family, cfg.encoder, gen.config, latent_avg=w_avg.repeat(gen.n_styles, 1),
                       start_from_latent_avg=True, geometry=Geometry(size, (size, size)))
    net.decoder.load_state_dict(gen.state_dict())
    net.decoder.requires_grad_(False)
    return net


def learning_rate(cfg: EncoderTrainConfig, step: int) -> float:
    t = min(step / max(cfg.iters - cfg.freeze_bn_steps, 1), 1.0)
    return cfg.lr * (cfg.lr_final_fraction + (1 - cfg.lr_final_fraction) * 0.5 * (1 + math.cos(math.pi * t)))


def progressive_stage(cfg: EncoderTrainConfig, step: int) -> int | None:
    """e4e's schedule: only w_0 until progressive_start, then one more offset every step_every."""
    if not cfg.encoder.progressive or cfg.progressive_start is None:
        return None
    if step < cfg.progressive_start:
        return 0
    stage = 1 + (step - cfg.progressive_start) // cfg.progressive_step_every
    return None if stage >= cfg.encoder.n_styles - 1 else stage


class Losses:
    """The weighted training loss; ``names`` records which terms are active."""

    def __init__(self, cfg: EncoderTrainConfig, lpips_model=None):
        self.cfg = cfg
        self.lpips = lpips_model
        self.names = ["l2"] + (["lpips"] if lpips_model is not None else [])
        if cfg.w_norm_lambda > 0:
            self.names.append("w_norm")
        if cfg.encoder.progressive and cfg.delta_norm_lambda > 0:
            self.names.append("delta_norm")

    def __call__(self, y_hat, y, latent, latent_avg):
        parts = {"l2": F.mse_loss(y_hat, y)}
        total = self.cfg.l2_lambda * parts["l2"]
        if self.lpips is not None:
            parts["lpips"] = self.lpips(y_hat, y).mean()
            total = total + self.cfg.lpips_lambda * parts["lpips"]
        if "w_norm" in self.names:
            parts["w_norm"] = (latent - latent_avg).norm(2, dim=(1, 2)).mean() / latent.shape[1]
            total = total + self.cfg.w_norm_lambda * parts["w_norm"]
        if "delta_norm" in self.names:
            parts["delta_norm"] = (latent[:, 1:] - latent[:, :1]).norm(2, dim=2).sum(1).mean()
            total = total + self.cfg.delta_norm_lambda * parts["delta_norm"]
        return total, {k: float(v.detach()) for k, v in parts.items()}


def _lpips_if_available(log):
    try:
        return load_lpips()
    except LpipsUnavailable as err:
        log(f"training without LPIPS: {err.reason}")
        return None


class EncoderTrainer:
    """The ReStyle scheme (module docstring) against a frozen generator; ``images``: uint8 [n, size, size, 3]
    inputs, ``targets``: what to reproduce (the inputs themselves, or paired renders of the same faces)."""

    def __init__(self, cfg: EncoderTrainConfig, images, targets=None, use_lpips: bool = True, log=print):
        self.cfg, self.images = cfg, images
        self.targets = images if targets is None else targets
        self.net = build_net(cfg)
        self.losses = Losses(cfg, _lpips_if_available(log) if use_lpips else None)
        self.opt = torch.optim.Adam(self.net.encoder.parameters(), lr=cfg.lr)
        self.batch_norms = [m for m in self.net.encoder.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        with torch.no_grad():
            self.avg = average_image(self.net, float32_cast=False)
        self.fixed = from_uint8(images[:8])

    def start(self, log):
        if self.cfg.init_encoder:
            source = load_network(self.cfg.init_encoder)
            self.net.encoder.load_state_dict(source.encoder.state_dict())
            log(f"encoder initialised from {self.cfg.init_encoder}")

    def load(self, state):
        self.net.encoder.load_state_dict(state["encoder"])
        self.opt.load_state_dict(state["opt"])

    def state(self):
        return {"encoder": self.net.encoder.state_dict(), "opt": self.opt.state_dict(), "losses": self.losses.names}

    def step(self, step):
        cfg, net = self.cfg, self.net
        rows = np.sort(torch.randint(0, len(self.images), (cfg.batch,)).numpy())
        x = from_uint8(self.images[rows])
        y = x if self.targets is self.images else from_uint8(self.targets[rows])
        flip = torch.rand(cfg.batch) < 0.5
        x[flip] = x[flip].flip(-1)
        if y is not x:
            y[flip] = y[flip].flip(-1)
        net.encoder.progressive_stage = progressive_stage(cfg, step)
        net.encoder.train()  # sampling switches to eval mode and back
        if step >= cfg.iters - cfg.freeze_bn_steps:
            for module in self.batch_norms:
                module.eval()
        for group in self.opt.param_groups:
            group["lr"] = learning_rate(cfg, step)
        self.opt.zero_grad(set_to_none=True)
        parts_log = []
        y_hat, latent = self.avg.unsqueeze(0).repeat(cfg.batch, 1, 1, 1), None
        for _ in range(cfg.n_iters_per_batch):
            inp = torch.cat([x, y_hat], 1) if net.is_restyle else x
            codes = net.encode(inp, latent)
            y_hat = net.synthesize(codes, resize=True, randomize_noise=cfg.randomize_noise)
            loss, parts = self.losses(y_hat, y, codes, net.latent_avg)
            loss.backward()
            parts_log.append(parts)
            y_hat, latent = net.to_input(y_hat.detach()), codes.detach()
        self.opt.step()
        return {"stage": net.encoder.progressive_stage, "per_iter": parts_log}

    def sample(self, step, record, path):
        _sample(self.net, self.fixed, self.avg, self.cfg, path)
        return "l2 per iteration: " + " ".join(f"{p['l2']:.4f}" for p in record["per_iter"])


def train_encoder(cfg: EncoderTrainConfig, out_dir, images, targets=None, max_minutes: float | None = None,
                  log=print, use_lpips: bool = True) -> Path:
    """Train (or resume) into ``out_dir``; returns the path of ``state.pt``. ``images`` / ``targets``: see
    ``EncoderTrainer``."""
    trainer = EncoderTrainer(cfg, images, targets, use_lpips, log)
    return train_loop(trainer, cfg, out_dir, max_minutes, log)


def _sample(net, x, avg, cfg, path):
    was = net.encoder.training
    net.encoder.eval()
    stage = net.encoder.progressive_stage
    with torch.no_grad():
        rows = [x]
        y, latent = avg.unsqueeze(0).repeat(len(x), 1, 1, 1), None
        for _ in range(cfg.n_iters_per_batch if net.is_restyle else 3):
            inp = torch.cat([x, y], 1) if net.is_restyle else (x if latent is None else y)
            y, latent = net(inp, latent)
            rows.append(y)
    net.encoder.train(was)
    net.encoder.progressive_stage = stage
    imgs = torch.stack(rows, 1).flatten(0, 1)
    save_png(grid(imgs, len(rows)), path, scale=2)


def export_encoder(state_path, out_path, note: str = "") -> str:
    """Ship a trained encoder with its generator in the official checkpoint layout; returns sha256."""
    state = torch.load(state_path, map_location="cpu", weights_only=True)
    cfg = EncoderTrainConfig.from_dict(state["config"])
    net = build_net(cfg)
    net.encoder.load_state_dict(state["encoder"])
    official_like = {"dataset_type": "mini_encode", "n_iters_per_batch": cfg.n_iters_per_batch,
                     "batch_size": cfg.batch, "learning_rate": cfg.lr, "optim_name": "adam",
                     "l2_lambda": cfg.l2_lambda,
                     "lpips_lambda": cfg.lpips_lambda if "lpips" in state["losses"] else 0.0,
                     "w_norm_lambda": cfg.w_norm_lambda, "max_steps": cfg.iters,
                     "start_from_latent_avg": True}
    if cfg.encoder.progressive:
        official_like.update(delta_norm_lambda=cfg.delta_norm_lambda, progressive_start=cfg.progressive_start,
                             progressive_step_every=cfg.progressive_step_every)
    meta = {"trained_steps": state["step"], "train_minutes": state["elapsed_s"] / 60, "losses": state["losses"],
            "train_config": state["config"], "note": note}
    return save_network(net, out_path, opts=official_like, extra={"training": meta})
