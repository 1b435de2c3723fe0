"""Reconstruction metrics, each a pure function with its protocol in its name.

``METRICS[name].build(device)`` returns an object with ``prepare(target)`` (work done
once per target image, e.g. a face embedding) and ``__call__(pred, prepared)``, which
gives one float64 value per image; NaN means skipped for that image (no face found).
A metric whose weights are missing raises ``MetricUnavailable`` when built. The names
live in ``restyle_lab.facts.metric_names``; which metrics a domain records, in its ``Domain``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..facts.metric_names import IDENTITY, LPIPS, MSE, PSNR, SSIM, label
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
    """A metric: its name and how it is built on a device (how figures name it: ``metric_names.label``)."""

    name: str
    make: Callable

    def build(self, device="cpu"):
        return self.make(device)


METRICS = {m.name: m for m in (
    MetricSpec(MSE, lambda device: _Pair(mse_pm1)),
    MetricSpec(LPIPS, _Lpips),
    MetricSpec(PSNR, lambda device: _Pair(psnr_pm1)),
    MetricSpec(SSIM, lambda device: _Pair(ssim_pm1)),
    MetricSpec(IDENTITY, FaceIdentity),
)}


__all__ = ["METRICS", "MetricSpec", "MetricUnavailable", "label", "mse_pm1", "psnr_pm1", "ssim_pm1", "latent_mse"]
