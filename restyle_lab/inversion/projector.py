"""Optimisation-based inversion: the Karras et al. (StyleGAN2) projector, and hybrids.

The schedule follows the StyleGAN2 projector: Adam at lr 0.1 with a cosine ramp-down over
the last 25% of the steps and a 5% ramp-up; Gaussian noise added to w with a scale of
0.05 * std(w), decaying to zero at 75% of the steps; per-layer noise maps optimised with
the multi-scale autocorrelation regulariser (weight 1e5) and renormalised every step.

Perceptual loss: LPIPS with a VGG16 backbone (the ``lpips`` package, as in rosinality's
projector) plus an optional MSE term. When the VGG16 weights are missing offline, the
projector runs as an MSE-only variant, never silently: its loss is recorded (``mse``), an unnamed projector's
name says so (``..._mse``), and figures label a named method's inversions "MSE loss".

Snapshots are recorded at ``record_at`` step counts of one run, so intermediate points
belong to the longest schedule (its learning rate has not finished decaying there).

A batch is N independent problems: each image has its own latent, noise maps, Adam
state and random stream (its initial noise maps and per-step w noise), and the loss is
a sum of per-image losses (the noise regulariser included), so an image's result does
not depend on the batch it is in. Each image's stream is seeded from ``config.seed`` and
an image key: the ``seeds`` given to ``invert`` / ``optimize`` (e.g. the images'
positions in the test set), else a digest of the image's uint8 codes.
"""

from __future__ import annotations

import hashlib
import math
import threading
from dataclasses import asdict, replace

import torch
import torch.nn.functional as F

from ..facts.geometry import Geometry
from ..facts.notices import notice
from ..facts.schedule import ProjectorConfig
from ..metrics.lpips_metric import load_lpips
from ..metrics.weights import MetricUnavailable
from ..models.impl import set_impl
from ..models.net import render
from ..models.precision import autocast
from .inverters import Inverter, compute_dtype_for
from .trace import StepClock, Trace, TraceStep, to_host


def load_lpips_vgg(device):
    """lpips.LPIPS(net='vgg'), or MetricUnavailable naming the missing VGG16 file."""
    return load_lpips(device, net="vgg")


def content_seeds(x: torch.Tensor) -> list[int]:
    """One 63-bit key per image [N, 3, H, W] in [-1, 1]: a digest of its uint8 codes."""
    codes = ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()
    return [int.from_bytes(hashlib.sha256(c.numpy().tobytes()).digest()[:8], "little") >> 1 for c in codes]


def image_generators(seed: int, keys) -> list[torch.Generator]:
    """A CPU random stream per image, from the config seed and the image's key."""
    return [torch.Generator().manual_seed((seed * 1_000_003 + int(k)) % (2 ** 63)) for k in keys]


def noise_regularizer(noises: list) -> torch.Tensor:
    """Per-image multi-scale autocorrelation of the noise maps [N, 1, H, W] -> [N].

    For each map and each of its scales down to 8x8: the squared mean over the map of
    noise * (noise shifted by one pixel), horizontally and vertically, summed. All maps
    at one scale run together (one set of ops per scale): the maps of that size and
    those pooled down to it from larger sizes, stacked along the channels.
    """
    by_size: dict = {}
    for noise in noises:
        by_size.setdefault(noise.shape[-1], []).append(noise)
    loss = 0.0
    carried = None  # maps pooled down from the scale above, still above 8x8 before pooling
    for size in sorted(by_size, reverse=True):
        while carried is not None and carried.shape[-1] > size:  # scales no map starts at
            loss = loss + _autocorrelation(carried)
            carried = F.avg_pool2d(carried, 2) if carried.shape[-1] > 8 else None
        maps = by_size[size] if carried is None else [carried] + by_size[size]
        group = torch.cat(maps, 1) if len(maps) > 1 else maps[0]  # [N, maps, size, size]
        loss = loss + _autocorrelation(group)
        carried = F.avg_pool2d(group, 2) if size > 8 else None
    while carried is not None:
        loss = loss + _autocorrelation(carried)
        carried = F.avg_pool2d(carried, 2) if carried.shape[-1] > 8 else None
    return loss


def _autocorrelation(noise: torch.Tensor) -> torch.Tensor:
    """Sum over the maps of [N, maps, H, W] of the squared one-pixel autocorrelations -> [N]."""
    return ((noise * torch.roll(noise, 1, dims=3)).mean((2, 3)).pow(2)
            + (noise * torch.roll(noise, 1, dims=2)).mean((2, 3)).pow(2)).sum(1)


def _split(n: int, parts: int) -> list[tuple[int, int]]:
    """[start, stop) bounds of up to ``parts`` nearly equal contiguous parts of n images."""
    parts = max(1, min(parts, n))
    cuts = [round(k * n / parts) for k in range(parts + 1)]
    return [(a, b) for a, b in zip(cuts, cuts[1:])]


class _SharedClock:
    """The step clock of one ``optimize`` call, shared by its concurrent parts.

    Each mark (start, lap, resume) waits until every part reaches it, then one of them
    reads the clock, so a lap is the wall time of the slowest part: the batch's time.
    """

    def __init__(self, device, parts: int):
        self.device, self.seconds, self.clock = device, [], None
        barrier = (lambda action: threading.Barrier(parts, action=action)) if parts > 1 else (lambda action: None)
        self._barriers = [barrier(self._start), barrier(self._lap), barrier(self._resume)]

    def _start(self):
        self.clock = StepClock(self.device)

    def _lap(self):
        self.seconds.append(self.clock.lap())

    def _resume(self):
        self.clock.resume()

    def _mark(self, k: int, action):
        barrier = self._barriers[k]
        if barrier is None:
            action()
        else:
            barrier.wait()

    def start(self):
        self._mark(0, self._start)

    def lap(self):
        self._mark(1, self._lap)

    def resume(self):
        self._mark(2, self._resume)

    def abort(self):
        for barrier in self._barriers:
            if barrier is not None:
                barrier.abort()


def _run_concurrently(jobs: list, clock: _SharedClock) -> list:
    """Results of ``jobs`` (no-argument functions); more than one run in threads with one torch thread each.

    Images are independent problems, so parts of a batch can run side by side: on a
    CPU that keeps both cores busy on small operators that one operator's threads
    cannot split well.
    """
    if len(jobs) == 1:
        return [jobs[0]()]
    results, errors = [None] * len(jobs), []

    def work(k):
        try:
            results[k] = jobs[k]()
        except threading.BrokenBarrierError:
            pass
        except BaseException as err:  # noqa: BLE001 - re-raised below, after the other parts stop
            errors.append(err)
            clock.abort()

    threads_before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        threads = [threading.Thread(target=work, args=(k,)) for k in range(len(jobs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        torch.set_num_threads(threads_before)
    if errors:
        raise errors[0]
    return results


class Projector(Inverter):
    """Karras et al. projector into W or W+ of ``generator`` (a Generator; its weights stay frozen).

    impl: None keeps the generator's own impl; ``"reference"`` / ``"fast"`` switches it
    (in place: a network that shares this generator switches too). dtype: None (the
    weights' dtype) or ``"bf16"`` / ``"fp16"``: the forward pass under autocast, the
    latents, noise maps, loss and Adam state in the weights' dtype (no loss scaling).
    workers: on a CPU, optimise the batch in this many parts at once, each in its own
    thread with one torch thread (results are the same: the images are independent).
    """

    def __init__(self, generator, w_avg, config: ProjectorConfig = ProjectorConfig(),
                 geometry: Geometry = Geometry(), name: str | None = None, perceptual_model=None,
                 impl: str | None = None, dtype=None, workers: int = 1):
        super().__init__()
        if int(workers) < 1:
            raise ValueError(f"workers must be at least 1. Got: {workers}")
        self.workers = int(workers)
        self.gen = generator.eval().requires_grad_(False)
        if impl is not None:
            set_impl(self.gen, impl)
        p = next(generator.parameters())
        self.device, self.dtype = p.device, p.dtype
        self.compute_dtype = compute_dtype_for(p.dtype, dtype)
        self.config = config
        self.geometry = geometry
        self.unavailable = None
        self.perceptual = None
        if config.perceptual:
            try:
                self.perceptual = perceptual_model or load_lpips_vgg(self.device)
            except MetricUnavailable as err:
                self.unavailable = err.reason
                notice(f"{err.name} is unavailable, so optimisation runs MSE-only (the provenance records loss: "
                       "mse, and figures say 'MSE loss'); the reason and the fix are in the provenance "
                       "(perceptual_unavailable)")
        loss_name = "lpipsvgg" if self.perceptual is not None else "mse"
        if self.perceptual is not None and config.mse_weight > 0:
            loss_name += "+mse"
        self.loss_name = loss_name
        self.name = name or f"optim_{config.space}_{loss_name}"
        with torch.no_grad():
            gen_z = torch.Generator().manual_seed(config.seed)
            z = torch.randn(config.w_std_samples, generator.style_dim, generator=gen_z).to(self.device, self.dtype)
            w = generator.style(z)
            self.w_avg = w.mean(0) if w_avg is None else w_avg.reshape(-1).to(self.device, self.dtype)
            self.w_std = ((w - self.w_avg).pow(2).sum() / config.w_std_samples).sqrt().item()

    def _loss(self, synth, target) -> torch.Tensor:
        """Sum over images of each image's loss (so each image's gradient is its own)."""
        synth = synth.to(target.dtype)
        mse = F.mse_loss(synth, target, reduction="none").flatten(1).mean(1).sum()
        if self.perceptual is None:
            return mse
        p = self.perceptual(synth, target, normalize=False).sum()
        return p + self.config.mse_weight * mse

    def invert(self, x: torch.Tensor, seeds=None) -> Trace:
        """``optimize`` after a warm-up per input shape; seeds: one key per image (see the module doc)."""
        self._warm_up_for(x)
        return self.optimize(x, seeds=seeds)

    def _run(self, x, init_latent=None) -> Trace:
        return self.optimize(x, init_latent)

    def _warmup(self, x) -> None:
        full, self.config = self.config, replace(self.config, record_at=(2,))
        try:
            self.optimize(x)
        finally:
            self.config = full

    def _w_noise(self, streams, shape, scale: float) -> torch.Tensor:
        """Per-step w noise [N, rows, D]: each image's rows from its own stream."""
        noise = torch.cat([torch.randn(1, *shape[1:], generator=g) for g in streams])
        if self.device.type == "cuda":
            noise = noise.pin_memory()
        return noise.to(self.device, self.dtype, non_blocking=True) * scale

    def optimize(self, x, init_latent=None, start_seconds: float = 0.0, seeds=None) -> Trace:
        """Optimise from w_avg (or ``init_latent`` [N, n_styles, D] with the generator's fixed noise).

        x: [N, 3, h, w] targets at the evaluation geometry; seeds: N image keys or None.
        With ``workers`` > 1 (CPU) the batch is split into that many parts optimised
        concurrently; the clock marks every recorded step once all parts reach it.
        """
        cfg = self.config
        x = x.to(self.device, self.dtype)
        n = x.shape[0]
        keys = content_seeds(x) if seeds is None else [int(s) for s in seeds]
        if len(keys) != n:
            raise ValueError(f"seeds must give one key per image: {n} images, {len(keys)} seeds")
        if init_latent is not None and cfg.space != "w+":
            raise ValueError("starting from a w+ code needs space='w+'")
        bounds = _split(n, self.workers if self.device.type == "cpu" else 1)
        clock = _SharedClock(self.device, len(bounds))
        jobs = [lambda a=a, b=b: self._solve(x[a:b], None if init_latent is None else init_latent[a:b], keys[a:b],
                                             clock) for a, b in bounds]
        parts = _run_concurrently(jobs, clock)
        trace = Trace(self.name, batch_size=n, info={"config": asdict(self.config), "loss": self.loss_name,
                                                     "unavailable": self.unavailable})
        trace.start_image = torch.cat([p[0] for p in parts])
        trace.start_latent = torch.cat([p[1] for p in parts])
        seconds = list(clock.seconds)
        seconds[0] += start_seconds
        for j, (step, dt) in enumerate(zip(cfg.record_at, seconds)):
            trace.steps.append(TraceStep(step, torch.cat([p[2][j][0] for p in parts]),
                                         torch.cat([p[2][j][1] for p in parts]), dt / n))
        return trace

    def _solve(self, x, init_latent, keys, clock) -> tuple:
        """One part of a batch: (start image, start latent, [(latent, image) at each record_at]), on the host."""
        cfg, gen = self.config, self.gen
        n = x.shape[0]
        streams = image_generators(cfg.seed, keys)
        if init_latent is None:
            start = self.w_avg.reshape(1, 1, -1).repeat(n, 1 if cfg.space == "w" else gen.n_latent, 1)
            noises = [torch.cat([torch.randn(1, *b.shape[1:], generator=g) for g in streams]).to(self.device, self.dtype)
                      for b in gen.fixed_noise()]
        else:
            start = init_latent.to(self.device, self.dtype).clone()
            noises = [b.repeat(n, 1, 1, 1).clone() for b in gen.fixed_noise()]
        w_opt = start.clone().requires_grad_(True)
        for buf in noises:
            buf.requires_grad_(True)
        opt = torch.optim.Adam([w_opt] + noises, lr=cfg.lr, betas=(0.9, 0.999))
        with torch.no_grad(), autocast(self.device, self.compute_dtype):
            start_image = to_host(render(gen, self.geometry, self._broadcast(start), noises))
        records = []
        clock.start()
        for i in range(cfg.n_steps):
            t = i / cfg.n_steps
            w_noise_scale = self.w_std * cfg.noise_scale * max(0.0, 1.0 - t / cfg.noise_ramp) ** 2
            lr_ramp = min(1.0, (1.0 - t) / cfg.lr_rampdown)
            lr_ramp = 0.5 - 0.5 * math.cos(lr_ramp * math.pi)
            lr_ramp = lr_ramp * min(1.0, t / cfg.lr_rampup)
            for group in opt.param_groups:
                group["lr"] = cfg.lr * lr_ramp
            # once the ramp reaches zero the streams are no longer needed: adding zero noise changes nothing
            w = w_opt + self._w_noise(streams, w_opt.shape, w_noise_scale) if w_noise_scale > 0 else w_opt
            with torch.enable_grad():
                with autocast(self.device, self.compute_dtype):
                    synth = render(gen, self.geometry, self._broadcast(w), noises)
                loss = self._loss(synth, x) + cfg.noise_regularize * noise_regularizer(noises).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
            opt.step()
            if self.on_step is not None:
                self.on_step(i + 1, cfg.n_steps, n)
            with torch.no_grad():
                for buf in noises:
                    buf -= buf.mean(dim=(1, 2, 3), keepdim=True)
                    buf *= buf.pow(2).mean(dim=(1, 2, 3), keepdim=True).rsqrt()
            if i + 1 in cfg.record_at:
                clock.lap()
                with torch.no_grad(), autocast(self.device, self.compute_dtype):
                    latent = self._broadcast(w_opt.detach())
                    # a copy: on the CPU to_host returns w_opt's own storage, which the next steps change
                    records.append((to_host(latent).clone(), to_host(render(gen, self.geometry, latent, noises))))
                clock.resume()
        return start_image, to_host(self._broadcast(start)), records

    def _broadcast(self, w):
        return w.expand(-1, self.gen.n_latent, -1) if w.shape[1] == 1 else w

    def describe(self):
        return {"name": self.name, "space": self.config.space, "loss": self.loss_name,
                "perceptual_unavailable": self.unavailable, "config": asdict(self.config)}


class HybridInverter(Inverter):
    """An encoder's inversion as the projector's starting point (w+ and the fixed noise maps)."""

    def __init__(self, encoder: Inverter, projector: Projector, name: str | None = None):
        super().__init__()
        if projector.config.space != "w+":
            raise ValueError("a hybrid starts from an encoder's w+ code: give it a projector with space='w+'")
        self.encoder, self.projector = encoder, projector
        self.device, self.dtype = projector.device, projector.dtype
        self.compute_dtype = projector.compute_dtype
        self.name = name or f"{encoder.name}+{projector.name}"

    def observe(self, callback) -> None:
        super().observe(callback)
        self.projector.observe(callback)  # its steps are the long part

    def invert(self, x: torch.Tensor, seeds=None) -> Trace:
        self._warm_up_for(x)
        return self._run(x, seeds)

    def _warmup(self, x) -> None:
        self.encoder._warmup(x)
        self.projector._warmup(x)

    def _run(self, x, seeds=None) -> Trace:
        first = self.encoder._run(x)
        spent = sum(s.seconds_per_image for s in first.steps) * x.shape[0]
        trace = self.projector.optimize(x, init_latent=first.steps[-1].latent, start_seconds=spent, seeds=seeds)
        trace.method = self.name
        trace.info["init"] = {"method": first.method, "latent": first.steps[-1].latent}
        return trace

    def describe(self):
        projector = self.projector.describe()
        return {"name": self.name, "encoder": self.encoder.name, "family": self.encoder.describe().get("family"),
                "loss": projector["loss"], "perceptual_unavailable": projector["perceptual_unavailable"]}
