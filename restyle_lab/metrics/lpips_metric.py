"""LPIPS through the ``lpips`` package (AlexNet backbone, v0.1 linear weights)."""

from __future__ import annotations

import contextlib
import io
import warnings

import torch

from .weights import ALEXNET_FILE, MetricUnavailable, missing_message, torchvision_weight_path

NAME = "lpips_alex_v0.1"
_FAILED: dict = {}


class LpipsUnavailable(MetricUnavailable):
    def __init__(self, reason: str):
        super().__init__(NAME, reason)


def load_lpips(device="cpu", allow_download: bool = True):
    """``lpips.LPIPS(net='alex', version='0.1')`` in eval mode, or ``LpipsUnavailable``.

    The package ships its linear layers; the AlexNet backbone comes from torchvision's
    cache (``$TORCH_HOME/hub/checkpoints``). A failed download is remembered for the
    rest of the process so a long run does not retry it per batch.
    """
    path = torchvision_weight_path(ALEXNET_FILE)
    if str(path) in _FAILED and not path.exists():
        raise LpipsUnavailable(_FAILED[str(path)])
    if not path.exists() and not allow_download:
        raise LpipsUnavailable(missing_message(ALEXNET_FILE, path, None))
    import lpips

    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            model = lpips.LPIPS(net="alex", version="0.1", verbose=False)
    except Exception as err:  # URLError offline, a corrupt cached file, ...
        _FAILED[str(path)] = missing_message(ALEXNET_FILE, path, err)
        raise LpipsUnavailable(_FAILED[str(path)]) from None
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval().to(device)


def lpips_distance(model, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image LPIPS [N] between images [N, 3, H, W] in [-1, 1] (the package's own range)."""
    if pred.shape != target.shape:
        raise ValueError(f"pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    p = next(model.parameters())
    with torch.no_grad():
        d = model(pred.to(p.device, p.dtype), target.to(p.device, p.dtype), normalize=False)
    return d.reshape(pred.shape[0]).to(pred.device, torch.float64)
