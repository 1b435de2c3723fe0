"""Reconstruction metrics, each a pure function with its protocol in its name.

``METRICS[name].build(device)`` returns an object with ``prepare(target)`` (work done
once per target image, e.g. a face embedding) and ``__call__(pred, prepared)``, which
gives one float64 value per image; NaN means skipped for that image (no face found).
A metric whose weights are missing raises ``MetricUnavailable`` when built. The names
live in ``restyle_lab.metric_names``; which metrics a domain records, in its ``Domain``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..metric_names import CUMULATIVE_SECONDS, IDENTITY, LATENT_MSE, LPIPS, MSE, PSNR, SECONDS, SSIM
from .identity import FaceIdentity
from .lpips_metric import load_lpips, lpips_distance
from .pixel import latent_mse, mse_pm1, psnr_pm1, ssim_pm1
from .weights import MetricUnavailable


class _Pair:
    """A metric that needs no preparation of its targets."""

    def __init__(self, fn):
        self.fn = fn

    def prepare(self, target):
        return target

    def __call__(self, pred, target):
        return self.fn(pred, target)


class _Lpips(_Pair):
    def __init__(self, device):
        model = load_lpips(device)
        super().__init__(lambda p, t: lpips_distance(model, p, t))


@dataclass(frozen=True)
class MetricSpec:
    """A metric: its name, the label its plots carry, and how it is built on a device."""

    name: str
    label: str
    make: Callable

    def build(self, device="cpu"):
        return self.make(device)


METRICS = {m.name: m for m in (
    MetricSpec(MSE, "MSE ([-1, 1])", lambda device: _Pair(mse_pm1)),
    MetricSpec(LPIPS, "LPIPS (alex, v0.1)", _Lpips),
    MetricSpec(PSNR, "PSNR (dB)", lambda device: _Pair(psnr_pm1)),
    MetricSpec(SSIM, "SSIM", lambda device: _Pair(ssim_pm1)),
    MetricSpec(IDENTITY, "ID similarity (facenet, not CurricularFace)", FaceIdentity),
)}
# labels of the other measured rows (the engine computes them itself)
ROW_LABELS = {LATENT_MSE: "latent MSE (w+)", SECONDS: "time per image per step (s)",
              CUMULATIVE_SECONDS: "time per image (s)"}


def label(name: str) -> str:
    """The axis label of a stored metric (its name when unknown)."""
    return METRICS[name].label if name in METRICS else ROW_LABELS.get(name, name)


__all__ = ["METRICS", "MetricSpec", "MetricUnavailable", "label", "mse_pm1", "psnr_pm1", "ssim_pm1", "latent_mse"]
