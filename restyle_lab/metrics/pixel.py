"""Pixel metrics on images in [-1, 1]: one float64 value per image.

scikit-image is imported where PSNR and SSIM are computed: it brings scipy.stats, a second
of import time for every notebook kernel and command that never computes them.
"""

from __future__ import annotations

import numpy as np
import torch


def _check(pred, target):
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(f"expected two [N, C, H, W] batches of the same shape. Got: {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}")


def mse_pm1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image on values in [-1, 1] (the official L2: torch MSELoss).

    >>> mse_pm1(torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)).item()
    1.0
    """
    _check(pred, target)
    return (pred.double() - target.double()).pow(2).flatten(1).mean(1)


def psnr_pm1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR in dB with a data range of 2 (values in [-1, 1]), via scikit-image."""
    _check(pred, target)
    p, t = pred.double().cpu().numpy(), target.double().cpu().numpy()
    with np.errstate(divide="ignore"):
        from skimage.metrics import peak_signal_noise_ratio

        vals = [peak_signal_noise_ratio(t[i], p[i], data_range=2.0) for i in range(len(p))]
    return torch.tensor(vals, dtype=torch.float64)


def ssim_pm1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SSIM per image (Wang et al.: 11x11 Gaussian window, sigma 1.5), data range 2, via scikit-image."""
    _check(pred, target)
    p, t = pred.double().cpu().numpy(), target.double().cpu().numpy()
    from skimage.metrics import structural_similarity

    vals = [structural_similarity(t[i], p[i], channel_axis=0, data_range=2.0, gaussian_weights=True, sigma=1.5,
                                  use_sample_covariance=False) for i in range(len(p))]
    return torch.tensor(vals, dtype=torch.float64)


def latent_mse(pred_latent: torch.Tensor, true_latent: torch.Tensor) -> torch.Tensor:
    """Mean squared difference per image between w+ codes [N, n_styles, D]."""
    if pred_latent.shape != true_latent.shape:
        raise ValueError(f"latent shapes differ: {tuple(pred_latent.shape)} vs {tuple(true_latent.shape)}")
    return (pred_latent.double() - true_latent.double()).pow(2).flatten(1).mean(1)
