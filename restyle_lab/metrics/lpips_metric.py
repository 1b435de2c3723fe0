"""LPIPS through the ``lpips`` package: AlexNet (the metric) or VGG16 (the projector's loss), v0.1 weights."""

from __future__ import annotations

import contextlib
import io
import warnings

import torch

from ..facts.metric_names import LPIPS
from .weights import ALEXNET_FILE, VGG16_FILE, MetricUnavailable, missing_message, torchvision_weight_path

NAME = LPIPS
BACKBONE_FILES = {"alex": ALEXNET_FILE, "vgg": VGG16_FILE}
_FAILED: dict = {}


class LpipsUnavailable(MetricUnavailable):
    def __init__(self, reason: str, name: str = NAME):
        super().__init__(name, reason)


def load_lpips(device="cpu", allow_download: bool = True, net: str = "alex"):
    """``lpips.LPIPS(net=net, version='0.1')`` in eval mode without gradients, or ``LpipsUnavailable``.

    net: ``"alex"`` (the metric, ``lpips_alex_v0.1``) or ``"vgg"`` (the projector's
    perceptual loss). The package ships its linear layers; the backbone comes from
    torchvision's cache (``$TORCH_HOME/hub/checkpoints``). A failed download is
    remembered for the rest of the process so a long run does not retry it per batch.
    """
    if net not in BACKBONE_FILES:
        raise ValueError(f"net must be one of {list(BACKBONE_FILES)}. Got: {net!r}")
    name, filename = f"lpips_{net}_v0.1", BACKBONE_FILES[net]
    path = torchvision_weight_path(filename)
    if str(path) in _FAILED and not path.exists():
        raise LpipsUnavailable(_FAILED[str(path)], name)
    if not path.exists() and not allow_download:
        raise LpipsUnavailable(missing_message(filename, path, None), name)
    import lpips

    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            model = lpips.LPIPS(net=net, version="0.1", verbose=False)
    except Exception as err:  # URLError offline, a corrupt cached file, ...
        _FAILED[str(path)] = missing_message(filename, path, err)
        raise LpipsUnavailable(_FAILED[str(path)], name) from None
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
