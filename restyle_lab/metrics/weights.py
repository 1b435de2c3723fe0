"""Where the metric libraries look for pretrained weights, and the error when they are absent."""

from __future__ import annotations

import os
from pathlib import Path

from ..facts.errors import RestyleLabError

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"  # torchvision AlexNet (LPIPS alex backbone)
VGG16_FILE = "vgg16-397923af.pth"  # torchvision VGG16 (projector's perceptual loss, LPIPS vgg)
FACENET_FILE = "20180402-114759-vggface2.pt"  # facenet-pytorch InceptionResnetV1 vggface2


class MetricUnavailable(RestyleLabError):
    """A metric (or loss) whose pretrained weights are not on this machine.

    ``reason`` is one sentence naming the file, where it was looked for and the fix.
    """

    def __init__(self, name: str, reason: str):
        super().__init__(f"{name} is unavailable: {reason}")
        self.name = name
        self.reason = reason


def torch_home() -> Path:
    """torch.hub's cache root: $TORCH_HOME, else $XDG_CACHE_HOME/torch, else ~/.cache/torch."""
    if os.environ.get("TORCH_HOME"):
        return Path(os.environ["TORCH_HOME"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "torch"


def torchvision_weight_path(filename: str) -> Path:
    return torch_home() / "hub" / "checkpoints" / filename


def facenet_weight_path() -> Path:
    # facenet-pytorch uses $TORCH_HOME/checkpoints (no hub/)
    return torch_home() / "checkpoints" / FACENET_FILE


def missing_message(filename: str, path: Path, err: BaseException | None) -> str:
    if path.exists() and err is not None:
        return (f"the weight file {path} exists but could not be loaded ({type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else ''}); delete it to download it again, or replace it "
                f"with a good copy of {filename}.")
    why = f" and could not be downloaded ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})" \
        if err is not None else ""
    return (f"the pretrained weight file {filename} is not at {path}{why}. On a machine with internet it "
            f"downloads on first use; offline, copy the file to that path (or point TORCH_HOME elsewhere).")
