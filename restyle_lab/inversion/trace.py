"""Per-step traces of an inversion and the timing protocol.

Timing: the first call of an inverter is a warm-up and is not recorded; times are per
image (batch time / batch size) and per step; copies to the host are not counted.
``StepClock`` synchronises the device at every clock read (the projector, whose steps
are long). ``StepTimer`` and ``HostCopier`` let the encoder inverters run like the bare
loop: on a GPU each step boundary is a CUDA event (no host synchronisation until the
end) and each result is copied to pinned host memory on a side stream while the next
step computes; on a CPU both reduce to the clock and plain copies.
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


class StepTimer:
    """Durations of ``start()`` / ``stop()`` intervals, read once at the end by ``seconds()``.

    CUDA: events on the current stream, so marking a step never waits for the device.
    Elsewhere: ``time.perf_counter`` after a synchronisation (a no-op on the CPU).
    """

    def __init__(self, device):
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.marks: list = []

    def _mark(self):
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        synchronize(self.device)
        return time.perf_counter()

    def start(self):
        if len(self.marks) % 2:
            raise RuntimeError("StepTimer.start() twice without stop()")
        self.marks.append(self._mark())

    def stop(self):
        if not len(self.marks) % 2:
            raise RuntimeError("StepTimer.stop() without start()")
        self.marks.append(self._mark())

    def seconds(self) -> list[float]:
        """Seconds of each finished interval, in order (synchronises the device once)."""
        synchronize(self.device)
        pairs = zip(self.marks[0::2], self.marks[1::2])
        if self.cuda:
            return [a.elapsed_time(b) / 1000.0 for a, b in pairs]
        return [b - a for a, b in pairs]


class HostCopier:
    """``copier(t)`` -> a float32 CPU copy of t that is complete after ``wait()``.

    On CUDA the copy goes to pinned memory on a side stream that first waits for the
    work queued so far, so it overlaps the next step; the source is kept alive for that
    stream (``record_stream``). Elsewhere it is ``to_host`` at once.
    """

    def __init__(self, device):
        self.device = torch.device(device)
        self.stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        if self.stream is None:
            return to_host(t)
        src = t.detach()
        self.stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(self.stream):
            out = torch.empty(src.shape, dtype=torch.float32, pin_memory=True)
            out.copy_(src.float(), non_blocking=True)  # a bf16 / fp16 result widens on the device
        src.record_stream(self.stream)
        return out

    def wait(self):
        if self.stream is not None:
            self.stream.synchronize()
