"""Encoder-based inverters: ReStyle (with optional bootstrapping) and single-pass / naive pSp, e4e."""

from __future__ import annotations

import torch

from ..net import InversionNet
from ..restyle import average_image, iterate_naive, iterate_restyle
from .trace import StepClock, Trace, TraceStep, to_host


class Inverter:
    """Common interface: ``invert(x) -> Trace`` for a batch x [N, 3, H, W] in [-1, 1]."""

    name = "inverter"
    device = "cpu"
    dtype = torch.float32

    def __init__(self):
        self._warm = None

    def invert(self, x: torch.Tensor) -> Trace:
        if self._warm != tuple(x.shape):  # warm-up per input shape (kernels are chosen per shape); never recorded
            self._warmup(x)
            self._warm = tuple(x.shape)
        return self._run(x)

    def _warmup(self, x) -> None:
        self._run(x)

    def _run(self, x) -> Trace:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> dict:
        """What the provenance records about this inverter beyond its spec (family, loss, ...)."""
        return {"name": self.name}


class ReStyleInverter(Inverter):
    """n_steps ReStyle iterations from (latent_avg, average image).

    ``bootstrap``: another ReStyle inverter and a step count; its result is the
    starting point (encoder bootstrapping, paper Sec. 5.5). Its time counts towards step 1.
    """

    def __init__(self, net: InversionNet, n_steps: int = 5, name: str | None = None,
                 bootstrap: tuple | None = None):
        super().__init__()
        if not net.is_restyle:
            raise ValueError(f"ReStyleInverter needs a ReStyle network, got family {net.family!r}")
        self.net, self.n_steps = net, n_steps
        self.name = name or net.family
        self.bootstrap = bootstrap
        p = next(net.parameters())
        self.device, self.dtype = p.device, p.dtype
        self.avg = average_image(net)

    def _run(self, x) -> Trace:
        x = x.to(self.device, self.dtype)
        trace = Trace(self.name, batch_size=x.shape[0])
        with torch.no_grad():
            clock = StepClock(self.device)
            init_latent = init_image = None
            extra = 0.0
            if self.bootstrap is not None:
                first, k = self.bootstrap
                for step in iterate_restyle(first.net, x, k):
                    init_latent, init_image = step.latent, step.fed
                extra = clock.lap()
                trace.start_image = to_host(init_image)
                trace.start_latent = to_host(init_latent)
                trace.info["bootstrap"] = {"from": first.name, "steps": k}
                clock.resume()
            else:
                trace.start_image = to_host(self.avg.unsqueeze(0).expand(x.shape[0], -1, -1, -1))
                trace.start_latent = to_host(self.net.latent_avg_rows(x.shape[0]).expand(-1, self.net.n_styles, -1))
            for step in iterate_restyle(self.net, x, self.n_steps, avg_image=self.avg,
                                        init_latent=init_latent, init_image=init_image):
                dt = clock.lap() + extra
                extra = 0.0
                trace.steps.append(TraceStep(step.index + 1, to_host(step.latent), to_host(step.image),
                                             dt / x.shape[0]))
                clock.resume()
        return trace

    def describe(self):
        d = {"name": self.name, "family": self.net.family, "steps": self.n_steps}
        if self.bootstrap:
            d["bootstrap"] = {"from": self.bootstrap[0].name, "steps": self.bootstrap[1]}
        return d


class EncoderInverter(Inverter):
    """A single-pass pSp / e4e encoder; with n_steps > 1, the naive iteration (output fed back)."""

    def __init__(self, net: InversionNet, n_steps: int = 1, name: str | None = None):
        super().__init__()
        if net.is_restyle:
            raise ValueError(f"EncoderInverter is for single-pass encoders, got family {net.family!r}")
        self.net, self.n_steps = net, n_steps
        self.name = name or (net.family if n_steps == 1 else f"{net.family}_naive")
        p = next(net.parameters())
        self.device, self.dtype = p.device, p.dtype

    def _run(self, x) -> Trace:
        x = x.to(self.device, self.dtype)
        trace = Trace(self.name, batch_size=x.shape[0], start_image=to_host(x))
        with torch.no_grad():
            clock = StepClock(self.device)
            for step in iterate_naive(self.net, x, self.n_steps):
                dt = clock.lap()
                trace.steps.append(TraceStep(step.index + 1, to_host(step.latent), to_host(step.image),
                                             dt / x.shape[0]))
                clock.resume()
        return trace

    def describe(self):
        return {"name": self.name, "family": self.net.family, "steps": self.n_steps}
