"""Per-step traces of an inversion and the timing protocol.

Timing: the first call of an inverter is a warm-up and is not recorded; the device is
synchronised before every clock read; copies to the host happen outside the timed
intervals; times are per image (batch time / batch size) and per step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch


@dataclass
class TraceStep:
    """One recorded step. step: ReStyle / naive iteration count or optimiser step count (1-based)."""

    step: int
    latent: torch.Tensor  # [N, n_styles, D], CPU
    image: torch.Tensor  # [N, 3, h, w] in [-1, 1] at the evaluation size, CPU float32
    seconds_per_image: float  # time of this step alone (since the previous recorded step)


@dataclass
class Trace:
    method: str
    steps: list = field(default_factory=list)
    batch_size: int = 0
    start_image: torch.Tensor | None = None  # what step 1 changes (ReStyle: the average image)
    start_latent: torch.Tensor | None = None  # the code step 1 starts from (ReStyle: latent_avg)
    info: dict = field(default_factory=dict)

    def cumulative_seconds(self) -> list[float]:
        total, out = 0.0, []
        for s in self.steps:
            total += s.seconds_per_image
            out.append(total)
        return out


def synchronize(device) -> None:
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":  # pragma: no cover - not on our CI
        torch.mps.synchronize()


class StepClock:
    """Measures the device time between ``lap()`` calls; time between a ``lap()`` and the next
    ``resume()`` (host copies, bookkeeping) is not counted."""

    def __init__(self, device):
        self.device = device
        synchronize(device)
        self.t = time.perf_counter()

    def lap(self) -> float:
        synchronize(self.device)
        now = time.perf_counter()
        dt, self.t = now - self.t, now
        return dt

    def resume(self):
        synchronize(self.device)
        self.t = time.perf_counter()


def to_host(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu", torch.float32)
