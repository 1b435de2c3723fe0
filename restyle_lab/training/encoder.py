"""Training ReStyle encoders (and single-pass pSp / e4e ones) against a frozen generator: the one
encoder trainer, for the real domains' presets and the mini ones alike.

The ReStyle scheme (paper Sec. 4, the official coaches): for every batch, ``n_iters_per_batch``
iterations of the inversion's own loop (``inversion.loops.iterate_restyle``) start from (latent_avg,
average image); at each the encoder sees [x, y_t] and predicts a residual, w_{t+1} = w_t + E([x, y_t]);
each iteration's loss (``training.losses``) is back-propagated at once (the gradients accumulate), y_t
and w_t are detached before the next iteration, and the optimiser steps once per batch. A single-pass
pSp / e4e encoder trains one pass of x per batch (``iterate_naive``, one step), as the official coaches.

Randomness (flips, the generator's noise, the discriminator's z and pools) is drawn from a seed made of
(seed, step, micro-batch), so a step computes the same on any number of ranks with the same global
batch, and a resumed run the same as an uninterrupted one. Resumable: see ``training.loop``.
"""

from __future__ import annotations

import copy
import random
from pathlib import Path

import numpy as np
import torch

from ..facts.domains import get_domain
from ..facts.errors import UsageError
from ..inversion.loops import average_image, iterate_naive, iterate_restyle
from ..models.checkpoints import load_generator, load_network, save_network
from ..models.impl import set_impl
from ..models.net import InversionNet
from ..models.precision import autocast
from ..records.images import grid, save_png
from .config import EncoderTrainConfig, learning_rate, official_opts, progressive_stage, trained_rows
from .data import ShardedOrder
from .distributed import Ranks, gather, mean_over_ranks, sync_context, wrap
from .latent_gan import LatentDiscriminatorTrainer
from .loop import train_loop
from .losses import EncoderLoss, loss_names, official_loss_options
from .ranger import build_optimizer
from .weights import IRSE50_FILE, RESNET34_FILES, init_backbone

# seeds of a micro-batch's random draws, one stream per purpose
FLIPS, DISCRIMINATOR, ITERATIONS = 0, 1, 2


def micro_seed(seed: int, step: int, micro: int, purpose: int) -> int:
    return int(np.random.SeedSequence([seed, step, micro, purpose]).generate_state(1, np.uint64)[0])


def build_net(cfg: EncoderTrainConfig, device="cpu") -> InversionNet:
    """Encoder (fresh) + the frozen generator of ``cfg.generator`` + its latent_avg repeated per style, at
    the domain's geometry."""
    gen, w_avg, _ = load_generator(cfg.generator)
    net = InversionNet(cfg.family, cfg.encoder, gen.config, latent_avg=w_avg.repeat(gen.n_styles, 1),
                       start_from_latent_avg=cfg.start_from_latent_avg, geometry=get_domain(cfg.domain).geometry)
    net.decoder.load_state_dict(gen.state_dict())
    net.decoder.requires_grad_(False)
    return net.to(device)


def rng_state() -> dict:
    """This process's random states (torch, CUDA, numpy, Python) as tensors and ints (weights_only-safe)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                      "cached": float(cached)},
            "python": {"version": version, "internal": torch.tensor(internal, dtype=torch.int64), "gauss": gauss}}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["internal"]), p["gauss"]))


class EncoderTrainer:
    """The ReStyle / pSp / e4e scheme (module docstring) for ``training.loop.train_loop``.

    source: training images (``training.data``); weights: file name -> path of the pretrained files
    (``training.losses.locate_weights``); dtype: float32 or float64 (every network, image, code and loss
    in it), or bf16 / fp16 autocast over float32; impl: the generator's ops (the encoder trains on the
    reference ones: the fast path is eval-mode only); validator: a ``training.validate.Validator`` or None.
    """

    def __init__(self, cfg: EncoderTrainConfig, source, weights: dict | None = None, device="cpu",
                 ranks: Ranks = Ranks(), dtype: str = "float32", impl: str = "reference", validator=None, log=print):
        self.cfg, self.source, self.weights = cfg, source, weights or {}
        self.device, self.ranks, self.dtype, self.log = torch.device(device), ranks, dtype, log
        self.precision = torch.float64 if dtype == "float64" else torch.float32
        torch.manual_seed(cfg.seed)  # the new layers' initial weights: the same in every run of this config
        self.net = build_net(cfg, self.device).to(self.precision)
        set_impl(self.net.decoder, impl)
        self.ops = {"encoder": "reference (training mode)", "decoder": impl}
        self.encoder = wrap(self.net.encoder, ranks, self.device, find_unused=cfg.encoder.progressive)
        self.opt = build_optimizer(cfg.optim_name, self.net.encoder.parameters(), cfg.learning_rate)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=dtype == "fp16")
        self.gan = None
        if cfg.w_discriminator_lambda > 0:
            self.gan = LatentDiscriminatorTrainer(cfg, self.net.decoder.config.style_dim, self.device, ranks)
            self.gan.D.to(self.precision)
        self.loss = EncoderLoss(cfg, self.weights, self.device, self.precision,
                                discriminator=None if self.gan is None else self.gan.D)
        self.order = ShardedOrder(len(source), cfg.batch_size, cfg.accumulate, ranks.world_size, ranks.rank, cfg.seed)
        self.batch_norms = [m for m in self.net.encoder.modules()
                            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        self.avg = average_image(self.net, float32_cast=False)
        self.validator, self.best = validator, None
        self.fixed = source.load(np.arange(min(4, len(source))))[0].to(self.device, self.precision)

    # ------------------------------------------------------------------ loop protocol

    def start(self, log):
        """A fresh run: the backbone from its pretrained file (or another encoder's weights)."""
        if self.cfg.init_encoder:
            self.net.encoder.load_state_dict(load_network(self.cfg.init_encoder).encoder.state_dict())
            log(f"encoder initialised from {self.cfg.init_encoder}")
        elif self.cfg.backbone_init == "pretrained":
            kind = self.cfg.encoder.backbone.kind
            path = self.weights[IRSE50_FILE if kind == "ir_se" else RESNET34_FILES[0]]
            init_backbone(self.net.encoder, path, self.cfg.seed)
            log(f"{kind} backbone initialised from {path}")

    def state(self) -> dict:
        """Everything a resumed run needs; per-rank parts (random states, pools) of every rank."""
        per_rank = gather({"rng": rng_state(), **({} if self.gan is None else self.gan.pools())}, self.ranks)
        out = {"encoder": self.net.encoder.state_dict(), "opt": self.opt.state_dict(),
               "scaler": self.scaler.state_dict(), "ranks": per_rank, "world_size": self.ranks.world_size,
               "data": {"source": self.source.identity(), "global_batch": self.order.global_batch},
               "best": self.best, "ops": self.ops, "dtype": self.dtype}
        if self.gan is not None:
            out.update(self.gan.state())
        return out

    def load(self, state: dict) -> None:
        saved_dtype = state.get("dtype", "float32")
        if saved_dtype != self.dtype:  # the precision is not in the config, so check_resume cannot see it
            raise UsageError(f"cannot resume exactly: the run was trained with --dtype {saved_dtype}, this one has "
                             f"--dtype {self.dtype}; give --dtype {saved_dtype}, or train into a new --workdir")
        data = state["data"]
        if data["global_batch"] != self.order.global_batch or data["source"] != self.source.identity():
            raise UsageError(f"cannot resume exactly: the run was trained on {data['source']} with global batch "
                               f"{data['global_batch']}, this one has {self.source.identity()} and "
                               f"{self.order.global_batch}; use the same data and global batch, or a new --workdir")
        self.net.encoder.load_state_dict(state["encoder"])
        self.opt.load_state_dict(state["opt"])
        self.scaler.load_state_dict(state["scaler"])
        self.best = state["best"]
        mine = state["ranks"][self.ranks.rank] if state["world_size"] == self.ranks.world_size else None
        if mine is not None:
            set_rng_state(mine["rng"])
        if self.gan is not None:
            self.gan.load(state, mine, self.device)

    def step(self, step: int) -> dict:
        cfg, net = self.cfg, self.net
        net.encoder.progressive_stage = progressive_stage(cfg, step)
        net.encoder.train()
        if step >= cfg.max_steps - cfg.freeze_bn_steps:
            for module in self.batch_norms:
                module.eval()
        for group in self.opt.param_groups:
            group["lr"] = learning_rate(cfg, step)
        batches = [self._micro_batch(step, j) for j in range(cfg.accumulate)]
        record = {}
        if self.gan is not None:  # the discriminator judges the encoder's first iteration
            inputs = [torch.cat([x, self._avg_batch(len(x))], 1) if net.is_restyle else x for x, _ in batches]
            torch.manual_seed(micro_seed(cfg.seed, step, self.order.micro_index(0), DISCRIMINATOR))
            record.update(self.gan.step(step, inputs, net.encoder, net.decoder.style, trained_rows(cfg, step),
                                        net.decoder.config.style_dim))
        self.opt.zero_grad(set_to_none=True)
        parts = []
        for j, (x, y) in enumerate(batches):
            torch.manual_seed(micro_seed(cfg.seed, step, self.order.micro_index(j), ITERATIONS))
            parts.append(self._iterations(step, x, y, last_micro=j == cfg.accumulate - 1))
        self.scaler.step(self.opt)
        self.scaler.update()
        # the official log holds the last iteration's losses; the per-iteration L2 shows ReStyle at work
        last = {k: float(np.mean([p[-1][k] for p in parts])) for k in parts[0][-1]}
        for t in range(len(parts[0])):
            if "loss_l2" in parts[0][t]:
                last[f"loss_l2_iter{t + 1}"] = float(np.mean([p[t]["loss_l2"] for p in parts]))
        record.update(last)
        record["lr"] = learning_rate(cfg, step)
        return mean_over_ranks(record, self.ranks)

    def _micro_batch(self, step: int, j: int):
        torch.manual_seed(micro_seed(self.cfg.seed, step, self.order.micro_index(j), FLIPS))
        x, y = self.source.load(self.order.indices(step, j))
        flip = torch.rand(len(x)) < 0.5
        x[flip] = x[flip].flip(-1)
        if y is None:
            y = x
        else:
            y[flip] = y[flip].flip(-1)
        return x.to(self.device, self.precision), y.to(self.device, self.precision)

    def _avg_batch(self, n: int) -> torch.Tensor:
        return self.avg.unsqueeze(0).repeat(n, 1, 1, 1)

    def _forward(self, inp: torch.Tensor, latent: torch.Tensor | None):
        """One network call of the loop, through the (DDP-wrapped) encoder, under the run's autocast:
        ``InversionNet.forward`` with the generator's noise as the run draws it."""
        net = self.net
        with autocast(self.device, self.dtype):
            codes = self.encoder(inp)
            if latent is not None:
                codes = codes + latent
            elif net.start_from_latent_avg:
                codes = codes + net.latent_avg_rows(len(inp))
            y_hat = net.synthesize(codes, resize=True, randomize_noise=self.cfg.randomize_noise)
        return y_hat.to(self.precision), codes

    def _iterations(self, step: int, x, y, last_micro: bool) -> list[dict]:
        """The micro-batch's iterations, each loss back-propagated at once; DDP reduces at the last one."""
        cfg, net = self.cfg, self.net
        if net.is_restyle:
            n = cfg.n_iters_per_batch
            steps = iterate_restyle(net, x, n, avg_image=self.avg, forward=self._forward)
        else:
            n = 1
            steps = iterate_naive(net, x, n, forward=self._forward)
        logs = []
        for t in range(n):
            with sync_context(self.encoder, last_micro and t == n - 1):
                s = next(steps)
                loss, parts = self.loss(s.image, y, x, s.latent.to(self.precision), net.latent_avg, step)
                self.scaler.scale(loss / cfg.accumulate).backward()
            logs.append(parts)
        return logs

    # ------------------------------------------------------------------ pictures, validation, checkpoints

    def sample(self, step: int, record: dict, path: Path) -> str:
        """Input, then steps 1..n of a few fixed training images, one row each."""
        net, stage = self.net, self.net.encoder.progressive_stage
        was = net.encoder.training
        net.encoder.eval()
        x = self.fixed
        with torch.no_grad():
            if net.is_restyle:
                steps = iterate_restyle(net, x, self.cfg.n_iters_per_batch, avg_image=self.avg)
            else:
                steps = iterate_naive(net, x, 1)
            rows = [x] + [s.fed for s in steps]
        net.encoder.train(was)
        net.encoder.progressive_stage = stage
        save_png(grid(torch.stack(rows, 1).flatten(0, 1), len(rows)), path, scale=2 if x.shape[-1] <= 128 else 1)
        l2 = [f"{record[k]:.4f}" for k in sorted(k for k in record if k.startswith("loss_l2_iter"))]
        return "loss_l2 per iteration: " + " ".join(l2) if l2 else f"loss {record.get('loss', float('nan')):.4f}"

    def validate(self, step: int) -> dict | None:
        """The validator's numbers (rank 0), and the best checkpoint when its loss is the lowest so far."""
        if self.validator is None:
            return None
        self.net.encoder.progressive_stage = progressive_stage(self.cfg, step)
        result = self.validator(self.net, self.avg, self.loss, step)
        if self.best is None or result["loss"] < self.best["loss"]:
            self.best = {"step": step, "loss": result["loss"]}
            result["is_best"] = True
        return result

    def export(self, path, step: int, best: bool = False, minutes: float | None = None) -> str:
        """The encoder in the official layout (state_dict, opts, latent_avg) plus restyle-lab's record."""
        extra = {"global_step": step, "best_val_loss": None if self.best is None else self.best["loss"],
                 "training": {"trained_steps": step, "train_minutes": minutes, "losses": loss_names(self.cfg),
                              "ops": self.ops, "dtype": self.dtype, "world_size": self.ranks.world_size,
                              "train_config": self.cfg.as_dict(), "best": best}}
        if self.gan is not None:
            extra["discriminator_state_dict"] = {k: v.cpu() for k, v in self.gan.D.state_dict().items()}
        opts = official_opts(self.cfg, self.net.decoder.config.size, official_loss_options(self.cfg),
                             self.ranks.world_size)
        # the official layout holds float32 weights; a float64 run keeps its own in its state
        net = self.net if self.precision == torch.float32 else copy.deepcopy(self.net).float()
        return save_network(net, path, opts=opts, extra=extra)


def train_encoder(cfg: EncoderTrainConfig, out_dir, source, weights: dict | None = None, device="cpu",
                  dtype: str = "float32", impl: str = "reference", validator=None, val_every: int | None = None,
                  max_minutes: float | None = None, ranks: Ranks = Ranks(), log=print) -> Path:
    """Train (or resume) into ``out_dir``; returns the path of ``state.pt``. See ``EncoderTrainer``."""
    trainer = EncoderTrainer(cfg, source, weights, device, ranks, dtype, impl, validator, log)
    return train_loop(trainer, cfg, out_dir, max_minutes, log, ranks, val_every)


def export_state(state_path, out_path, note: str = "") -> str:
    """A training state's encoder with its generator in the official layout; returns the file's sha256."""
    state = torch.load(state_path, map_location="cpu", weights_only=True)
    cfg = EncoderTrainConfig.from_dict(state["config"])
    net = build_net(cfg)
    net.encoder.load_state_dict(state["encoder"])
    meta = {"trained_steps": state["step"], "train_minutes": state["elapsed_s"] / 60, "losses": loss_names(cfg),
            "ops": state.get("ops"), "dtype": state.get("dtype"), "world_size": state.get("world_size"),
            "train_config": state["config"], "note": note}
    opts = official_opts(cfg, net.decoder.config.size, official_loss_options(cfg), state.get("world_size", 1))
    return save_network(net, out_path, opts=opts, extra={"global_step": state["step"], "training": meta})
