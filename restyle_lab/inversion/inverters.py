"""Encoder-based inverters: ReStyle (with optional bootstrapping) and single-pass / naive pSp, e4e."""

from __future__ import annotations

import torch

from ..models.net import InversionNet
from ..models.precision import LOW_PRECISION, autocast, dtype_name, resolve_dtype
from .loops import average_image, iterate_naive, iterate_restyle
from .trace import HostCopier, StepTimer, Trace, TraceStep, to_host


class Inverter:
    """Common interface: ``invert(x) -> Trace`` for a batch x [N, 3, H, W] in [-1, 1]."""

    name = "inverter"
    device = "cpu"
    dtype = torch.float32  # the inputs' and the weights' dtype
    compute_dtype = torch.float32  # what the arithmetic runs in (bf16 / fp16 through autocast)

    def __init__(self, warmup: bool = True):
        """``warmup``: run each new input shape once unrecorded before timing it (off where times are not
        results, as in ``restyle-lab invert``)."""
        self._warm = None
        self.warmup = warmup
        self.on_step = None  # a step callback (done, total, images): progress of long inversions

    def observe(self, callback) -> None:
        """``callback(steps done, steps in all, images)`` after each optimiser step of a long inversion."""
        self.on_step = callback

    def invert(self, x: torch.Tensor) -> Trace:
        self._warm_up_for(x)
        return self._run(x)

    def _warm_up_for(self, x) -> None:
        """Run a new input shape once, unrecorded (kernels are chosen per shape), its steps not reported to the
        step callback: progress counts the recorded run only."""
        if not self.warmup or self._warm == tuple(x.shape):
            return
        callback = self.on_step
        self.observe(None)
        try:
            self._warmup(x)
        finally:
            self.observe(callback)
        self._warm = tuple(x.shape)

    def _warmup(self, x) -> None:
        self._run(x)

    def _run(self, x) -> Trace:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> dict:
        """What the provenance records about this inverter beyond its spec (family, loss, ...)."""
        return {"name": self.name}


def compute_dtype_for(weights_dtype: torch.dtype, dtype) -> torch.dtype:
    """The compute dtype an inverter runs in: ``None`` -> the weights' dtype; bf16 / fp16 -> autocast.

    float32 / float64 must match the weights (load the network in that dtype instead).
    """
    if dtype is None:
        return weights_dtype
    dtype = resolve_dtype(dtype)
    if dtype not in LOW_PRECISION and dtype != weights_dtype:
        raise ValueError(f"dtype={dtype_name(dtype)!r} but the weights are {dtype_name(weights_dtype)}: load the "
                         f"network in {dtype_name(dtype)} (autocast only lowers precision, to bf16 or fp16)")
    return dtype


def _timed_steps(steps, n_steps: int, timer, copy) -> list:
    """(step number, host latent, host image) of the first ``n_steps`` of ``steps``, each step timed
    alone; the host copies are queued (``copy.wait()`` before reading them)."""
    out = []
    for _ in range(n_steps):
        timer.start()
        step = next(steps)
        timer.stop()
        out.append((step.index + 1, copy(step.latent), copy(step.image)))
    return out


def _host_rows(t: torch.Tensor, n: int) -> torch.Tensor:
    """A host tensor [1, ...] repeated to [n, ...] (a copy, so callers may modify it)."""
    return t.expand(n, *t.shape[1:]).clone()


class ReStyleInverter(Inverter):
    """n_steps ReStyle iterations from (latent_avg, average image).

    ``bootstrap``: another ReStyle inverter and a step count; its result is the
    starting point (encoder bootstrapping, paper Sec. 5.5). Its time counts towards step 1.
    ``dtype``: None (the weights' dtype), or ``"bf16"`` / ``"fp16"`` to run under autocast
    (see ``restyle_lab.models.precision``); traces are float32 either way. The average
    image is computed once, at full precision. ``resize``: trace images pooled (and cropped)
    to the evaluation size, else at the generator's resolution.
    """

    def __init__(self, net: InversionNet, n_steps: int = 5, name: str | None = None,
                 bootstrap: tuple | None = None, dtype=None, resize: bool = True, warmup: bool = True):
        super().__init__(warmup)
        self.resize = resize
        if not net.is_restyle:
            raise ValueError(f"ReStyleInverter needs a ReStyle network, got family {net.family!r}")
        self.net, self.n_steps = net, n_steps
        self.name = name or net.family
        self.bootstrap = bootstrap
        p = next(net.parameters())
        self.device, self.dtype = p.device, p.dtype
        self.compute_dtype = compute_dtype_for(p.dtype, dtype)
        self.avg = average_image(net)
        self._avg_host = to_host(self.avg).unsqueeze(0)
        self._latent_avg_host = to_host(net.latent_avg_rows(1).expand(-1, net.n_styles, -1))

    def _run(self, x) -> Trace:
        x = x.to(self.device, self.dtype)
        n = x.shape[0]
        trace = Trace(self.name, batch_size=n)
        timer, copy = StepTimer(self.device), HostCopier(self.device)
        init_latent = init_image = None
        with torch.no_grad(), autocast(self.device, self.compute_dtype):
            if self.bootstrap is not None:
                first, k = self.bootstrap
                timer.start()
                for step in iterate_restyle(first.net, x, k, avg_image=first.avg):
                    init_latent, init_image = step.latent, step.fed
                timer.stop()
                trace.start_image, trace.start_latent = copy(init_image), copy(init_latent)
                trace.info["bootstrap"] = {"from": first.name, "steps": k}
            else:
                trace.start_image = _host_rows(self._avg_host, n)
                trace.start_latent = _host_rows(self._latent_avg_host, n)
            steps = iterate_restyle(self.net, x, self.n_steps, resize_outputs=self.resize, avg_image=self.avg,
                                    init_latent=init_latent, init_image=init_image)
            copies = _timed_steps(steps, self.n_steps, timer, copy)
        copy.wait()
        seconds = timer.seconds()
        if self.bootstrap is not None:  # the bootstrap's time counts towards step 1
            seconds = [seconds[0] + seconds[1]] + seconds[2:]
        trace.steps = [TraceStep(i, latent, image, dt / n) for (i, latent, image), dt in zip(copies, seconds)]
        return trace

    def describe(self):
        d = {"name": self.name, "family": self.net.family, "head": self.net.encoder.config.head,
             "steps": self.n_steps}
        if self.bootstrap:
            d["bootstrap"] = {"from": self.bootstrap[0].name, "steps": self.bootstrap[1]}
        return d


class EncoderInverter(Inverter):
    """A single-pass pSp / e4e encoder; with n_steps > 1, the naive iteration (output fed back).

    ``dtype``, ``resize``, ``warmup``: as for ReStyleInverter.
    """

    def __init__(self, net: InversionNet, n_steps: int = 1, name: str | None = None, dtype=None, resize: bool = True,
                 warmup: bool = True):
        super().__init__(warmup)
        self.resize = resize
        if net.is_restyle:
            raise ValueError(f"EncoderInverter is for single-pass encoders, got family {net.family!r}")
        self.net, self.n_steps = net, n_steps
        self.name = name or (net.family if n_steps == 1 else f"{net.family}_naive")
        p = next(net.parameters())
        self.device, self.dtype = p.device, p.dtype
        self.compute_dtype = compute_dtype_for(p.dtype, dtype)

    def _run(self, x) -> Trace:
        x = x.to(self.device, self.dtype)
        n = x.shape[0]
        trace = Trace(self.name, batch_size=n, start_image=to_host(x))
        timer, copy = StepTimer(self.device), HostCopier(self.device)
        with torch.no_grad(), autocast(self.device, self.compute_dtype):
            copies = _timed_steps(iterate_naive(self.net, x, self.n_steps, resize_outputs=self.resize), self.n_steps,
                                  timer, copy)
        copy.wait()
        trace.steps = [TraceStep(i, latent, image, dt / n) for (i, latent, image), dt in zip(copies, timer.seconds())]
        return trace

    def describe(self):
        return {"name": self.name, "family": self.net.family, "head": self.net.encoder.config.head,
                "steps": self.n_steps}


def inverter_for(net: InversionNet, n_steps: int, **kwargs) -> Inverter:
    """The inverter of a network: ReStyle iterations for a ReStyle network, else the single pass (naive
    iteration when ``n_steps`` > 1). ``kwargs``: those of the two classes (name, dtype, resize, warmup)."""
    return (ReStyleInverter if net.is_restyle else EncoderInverter)(net, n_steps, **kwargs)
