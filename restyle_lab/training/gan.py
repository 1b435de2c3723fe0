"""Adversarial training of a (small) StyleGAN2 generator on rendered images. Resumable.

Non-saturating logistic loss, lazy R1 on the discriminator, style-mixing regularisation,
an exponential moving average of the generator (the one that is shipped). No path-length
regulariser: it doubles the cost of a generator step on a CPU.

Every step draws its randomness from ``seed`` and the step number, so a run killed and
resumed from its last state computes the same steps it would have computed anyway.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..configs import GeneratorConfig, generator_config_from_dict, to_dict
from ..images import from_uint8, grid, save_png
from ..models.discriminator import Discriminator
from ..models.stylegan2 import Generator


@dataclass
class GanConfig:
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

    def as_dict(self) -> dict:
        return to_dict(self)  # nested configs included

    @classmethod
    def from_dict(cls, d: dict) -> "GanConfig":
        d = dict(d)
        d["generator"] = generator_config_from_dict(d["generator"])
        return cls(**d)


def training_images(style: str, n: int, size: int, cache_dir: Path, log=print) -> np.ndarray:
    """uint8 [n, size, size, 3] renders of the train split, cached on disk."""
    from ..mini.render import render_batch

    path = Path(cache_dir) / f"train_{style}_{size}_{n}.npy"
    if path.exists():
        return np.load(path, mmap_mode="r")
    log(f"rendering {n} training images ({style}) into {path} ...")
    t0 = time.time()
    arr = np.empty((n, size, size, 3), np.uint8)
    for start in range(0, n, 1000):
        arr[start: start + 1000] = render_batch("train", range(start, min(n, start + 1000)), size, style)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, arr)
    tmp.replace(path)
    log(f"rendered in {time.time() - t0:.0f} s")
    return arr


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


def _save_state(path: Path, step, cfg, G, D, G_ema, opt_g, opt_d, elapsed):
    from ..checkpoints import atomic_save

    atomic_save({"step": step, "config": cfg.as_dict(), "G": G.state_dict(), "D": D.state_dict(),
                 "G_ema": G_ema.state_dict(), "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                 "elapsed_s": elapsed}, path)


def train_gan(cfg: GanConfig, out_dir, init_from=None, max_minutes: float | None = None, log=print) -> Path:
    """Train (or resume) into ``out_dir``; returns the path of ``state.pt``.

    ``init_from``: a state.pt of an earlier run to fine-tune from (G, G_ema and D weights).
    ``max_minutes``: stop early (resumable) after this much wall time.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state_path = out_dir / "state.pt"
    (out_dir / "config.json").write_text(json.dumps(cfg.as_dict(), indent=1))
    data = training_images(cfg.style, cfg.n_train_images, cfg.generator.size, out_dir.parent / "cache", log)

    G = Generator(cfg.generator)
    D = Discriminator(cfg.generator.size, cfg.d_channel_base, cfg.d_channel_max)
    G_ema = copy.deepcopy(G).eval()
    g_params = [p for n, p in G.named_parameters() if not (cfg.freeze_mapping and n.startswith("style."))]
    c = cfg.r1_every / (cfg.r1_every + 1)  # lazy regularisation: rescale D's lr and betas
    opt_g = torch.optim.Adam(g_params, lr=cfg.lr, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr * c, betas=(0.0, 0.99 ** c))
    step, elapsed = 0, 0.0
    if state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        G.load_state_dict(state["G"]); D.load_state_dict(state["D"]); G_ema.load_state_dict(state["G_ema"])
        opt_g.load_state_dict(state["opt_g"]); opt_d.load_state_dict(state["opt_d"])
        step, elapsed = state["step"], state["elapsed_s"]
        log(f"resumed {state_path} at step {step} ({elapsed / 60:.1f} min so far)")
    elif init_from is not None:
        state = torch.load(init_from, map_location="cpu", weights_only=True)
        G.load_state_dict(state["G_ema"]); G_ema.load_state_dict(state["G_ema"]); D.load_state_dict(state["D"])
        log(f"fine-tuning from {init_from} (step {state['step']})")
    if cfg.freeze_mapping:
        for p in G.style.parameters():
            p.requires_grad_(False)

    beta = 0.5 ** (cfg.batch / (cfg.ema_kimg * 1000))
    sample_z = torch.randn(32, cfg.generator.style_dim, generator=torch.Generator().manual_seed(cfg.seed + 7))
    log_path = out_dir / "log.jsonl"
    t_start = time.time() - elapsed
    t_session = time.time()
    while step < cfg.iters:
        torch.manual_seed(cfg.seed * 1_000_003 + step)
        idx = torch.randint(0, len(data), (cfg.batch,)).numpy()
        real = from_uint8(data[np.sort(idx)])
        flip = torch.rand(cfg.batch) < 0.5
        real[flip] = real[flip].flip(-1)

        # discriminator
        styles, inject = _mixing_styles(G, cfg.batch, cfg.mixing_prob)
        with torch.no_grad():
            fake, _ = G(styles, inject_index=inject)
        d_loss = F.softplus(D(fake)).mean() + F.softplus(-D(real)).mean()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        r1 = torch.zeros(())
        if step % cfg.r1_every == 0:
            real.requires_grad_(True)
            (grad,) = torch.autograd.grad(D(real).sum(), real, create_graph=True)
            r1 = grad.pow(2).flatten(1).sum(1).mean()
            opt_d.zero_grad(set_to_none=True)
            (cfg.r1_gamma / 2 * r1 * cfg.r1_every).backward()
            opt_d.step()

        # generator
        styles, inject = _mixing_styles(G, cfg.batch, cfg.mixing_prob)
        fake, _ = G(styles, inject_index=inject)
        g_loss = F.softplus(-D(fake)).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        _ema(G_ema, G, beta)
        step += 1

        if step % 25 == 0 or step == cfg.iters:
            rec = {"step": step, "d_loss": float(d_loss.detach()), "g_loss": float(g_loss.detach()), "r1": float(r1.detach()),
                   "minutes": (time.time() - t_start) / 60}
            with open(log_path, "a") as fh:
                fh.write(json.dumps(rec) + "\n")
        if step % cfg.checkpoint_every == 0 or step == cfg.iters:
            _save_state(state_path, step, cfg, G, D, G_ema, opt_g, opt_d, time.time() - t_start)
        if step % cfg.sample_every == 0 or step == cfg.iters:
            with torch.no_grad():
                img, _ = G_ema([sample_z], randomize_noise=False)
            save_png(grid(img, 8), out_dir / f"samples_{step:06d}.png", scale=2)
            log(f"step {step}/{cfg.iters} d={float(d_loss.detach()):.3f} g={float(g_loss.detach()):.3f} "
                f"{(time.time() - t_start) / 60:.1f} min")
        if max_minutes is not None and time.time() - t_session > max_minutes * 60:
            _save_state(state_path, step, cfg, G, D, G_ema, opt_g, opt_d, time.time() - t_start)
            log(f"stopping after {max_minutes} min at step {step}; run again to resume")
            break
    return state_path


def export_generator(state_path, out_path, note: str = "") -> str:
    """Ship G_ema of a training state in the rosinality layout, with w_avg; returns sha256."""
    from ..checkpoints import save_generator

    state = torch.load(state_path, map_location="cpu", weights_only=True)
    cfg = GanConfig.from_dict(state["config"])
    G = Generator(cfg.generator)
    G.load_state_dict(state["G_ema"])
    w_avg = G.mean_latent(100_000, seed=0)[0]
    meta = {"trained_steps": state["step"], "train_minutes": state["elapsed_s"] / 60,
            "train_config": state["config"], "note": note}
    return save_generator(G, out_path, w_avg=w_avg, extra={"training": meta})
