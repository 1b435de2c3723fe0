"""A small CNN that reads the mini attributes off a 64 px image: the judge of edits on mini.

GAN samples and inversions have no ground-truth attributes, so edits on mini are measured by
this regressor, trained on photo-style renders of the train split (whose attributes are known)
and checked on held-out test-split renders (``held_out_accuracy``). It predicts every
continuous attribute of ``FaceAttributes`` except the two hues (``bg_hue``, ``eye_hue``): a hue
is circular, so a plain regression target would be wrong at the wrap-around, and neither is an
edit anyone asks for.

Shipped as ``restyle_lab/assets/mini/attributes_mini.pt`` (preset ``mini-attributes``), a plain
dict of tensors, numbers and strings: ``state_dict``, ``config``, ``training`` (steps, minutes,
held-out accuracy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..facts.errors import CheckpointError
from ..facts.mini_models import mini_path
from ..records.files import atomic_torch_save, read_torch
from ..records.images import from_uint8
from ..training.loop import SavedConfig, train_loop
from .dataset import training_images
from .render import render_batch, sample_attributes

ATTRIBUTES = ("head_w", "head_h", "head_x", "head_y", "yaw", "skin_tone", "hair_tone", "hair_length", "eye_size",
              "smile", "bg_light", "bg_gradient")
# test-split faces used for the held-out accuracy (the split's seed stream is never trained on)
HELD_OUT = range(1000, 3000)


def true_attributes(split: str, indices) -> np.ndarray:
    """float64 [N, len(ATTRIBUTES)]: the renderer's parameters of faces ``indices`` of ``split``."""
    rows = [sample_attributes(split, int(i)).as_dict() for i in indices]
    return np.array([[r[a] for a in ATTRIBUTES] for r in rows], dtype=np.float64)


@dataclass(frozen=True)
class RegressorConfig:
    """Five stride/3x3 convolution stages (64 -> 4 px), a 1x1 squeeze, two linear layers."""

    channels: tuple = (24, 32, 48, 64, 64)
    strides: tuple = (2, 2, 1, 2, 2)
    squeeze: int = 16
    hidden: int = 96
    attributes: tuple = ATTRIBUTES
    image_size: int = 64


class AttributeRegressor(nn.Module):
    """x [N, 3, 64, 64] in [-1, 1] -> attributes [N, len(config.attributes)] in the renderer's units."""

    def __init__(self, config: RegressorConfig = RegressorConfig()):
        super().__init__()
        self.config = config
        layers, c_in, size = [], 3, config.image_size
        for c, s in zip(config.channels, config.strides):
            layers += [nn.Conv2d(c_in, c, 3, s, 1), nn.LeakyReLU(0.2)]
            c_in, size = c, size // s
        layers += [nn.Conv2d(c_in, config.squeeze, 1), nn.Flatten(), nn.Linear(config.squeeze * size * size,
                                                                              config.hidden),
                   nn.LeakyReLU(0.2), nn.Linear(config.hidden, len(config.attributes))]
        self.body = nn.Sequential(*layers)
        # the targets' train-split mean and std: the network predicts standardised values
        self.register_buffer("mean", torch.zeros(len(config.attributes)))
        self.register_buffer("std", torch.ones(len(config.attributes)))

    def standardised(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1:] != (3, self.config.image_size, self.config.image_size):
            raise ValueError(f"expected images [N, 3, {self.config.image_size}, {self.config.image_size}] in [-1, 1]. "
                             f"Got: {tuple(x.shape)}")
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.standardised(x) * self.std + self.mean

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
        """Attributes [N, A] of images [N, 3, H, W] in [-1, 1] (resized to 64 px when larger)."""
        p = self.mean
        out = []
        for start in range(0, len(images), batch):
            x = images[start: start + batch].to(p.device, p.dtype)
            if x.shape[-1] != self.config.image_size:
                x = F.adaptive_avg_pool2d(x, self.config.image_size)
            out.append(self(x))
        return torch.cat(out) if out else images.new_zeros(0, len(self.config.attributes))


@dataclass
class AttributeTrainConfig(SavedConfig):
    regressor: RegressorConfig = field(default_factory=RegressorConfig)
    n_train_images: int = 30000
    batch: int = 64
    iters: int = 1600
    lr: float = 2e-3
    lr_final_fraction: float = 0.05  # cosine decay from lr to lr * this
    # GAN outputs are softer and noisier than renders; blur and noise make the judge read both alike
    blur_max: float = 1.0
    noise_std: float = 0.03
    seed: int = 0
    checkpoint_every: int = 100
    sample_every: int = 400  # held-out check (a quick 256-face one) this often

    nested: ClassVar[dict] = {"regressor": lambda d: _regressor_config(d)}
    # the learning rate decays over iters: a resume may change only when states and checks are made
    resume_free_options: ClassVar[tuple] = ("checkpoint_every", "sample_every")


def _regressor_config(d: dict) -> RegressorConfig:
    return RegressorConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def _soften(x: torch.Tensor, cfg: AttributeTrainConfig) -> torch.Tensor:
    """Each image mixed with its [1, 2, 1]-binomial blur by a random amount, plus Gaussian noise."""
    k = torch.tensor([1.0, 2.0, 1.0]) / 4
    kernel = (k[:, None] * k[None, :]).expand(3, 1, 3, 3)
    blurred = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=3)
    t = torch.rand(len(x), 1, 1, 1) * cfg.blur_max
    return (1 - t) * x + t * blurred + cfg.noise_std * torch.randn_like(x)


def _learning_rate(cfg: AttributeTrainConfig, step: int) -> float:
    t = min(step / max(cfg.iters, 1), 1.0)
    return cfg.lr * (cfg.lr_final_fraction + (1 - cfg.lr_final_fraction) * 0.5 * (1 + math.cos(math.pi * t)))


class RegressorTrainer:
    """The regressor's step for ``train_loop``: soft renders in, standardised attributes out."""

    def __init__(self, cfg: AttributeTrainConfig, cache_dir, log=print):
        self.cfg = cfg
        self.images = training_images("photo", cfg.n_train_images, cfg.regressor.image_size, cache_dir, log)
        self.targets = torch.from_numpy(true_attributes("train", range(cfg.n_train_images))).float()
        self.model = AttributeRegressor(cfg.regressor)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)

    def start(self, log) -> None:
        self.model.mean.copy_(self.targets.mean(0))
        self.model.std.copy_(self.targets.std(0))

    def load(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])

    def state(self) -> dict:
        return {"model": self.model.state_dict(), "opt": self.opt.state_dict()}

    def step(self, step: int) -> dict:
        cfg, model = self.cfg, self.model
        rows = np.sort(torch.randint(0, len(self.images), (cfg.batch,)).numpy())
        x = _soften(from_uint8(self.images[rows]), cfg)
        y = (self.targets[rows] - model.mean) / model.std
        for group in self.opt.param_groups:
            group["lr"] = _learning_rate(cfg, step)
        model.train()
        loss = F.mse_loss(model.standardised(x), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.item()}

    def sample(self, step: int, record: dict, path: Path) -> str:
        # no picture: a regressor's progress is its held-out fit
        acc = held_out_accuracy(self.model.eval(), HELD_OUT[:256])
        return f"loss {record['loss']:.4f} held-out R^2 (256 faces) {acc.r2.mean():.3f}"


def train_regressor(cfg: AttributeTrainConfig, out_dir, cache_dir, max_minutes: float | None = None,
                    log=print) -> Path:
    """Train (or resume) into ``out_dir``; returns the path of ``state.pt``."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return train_loop(RegressorTrainer(cfg, cache_dir, log), cfg, out_dir, max_minutes, log)


@torch.no_grad()
def held_out_accuracy(model: AttributeRegressor, indices=HELD_OUT):
    """Per attribute on test-split renders: R^2, MAE (renderer units), MAE / std and the std.

    Returns a DataFrame with columns attribute, r2, mae, mae_over_std, std, n.
    """
    x = from_uint8(render_batch("test", indices))
    pred = model.predict(x).double().numpy()
    true = true_attributes("test", indices)
    return accuracy_table(pred, true, model.config.attributes)


def accuracy_table(pred: np.ndarray, true: np.ndarray, attributes=ATTRIBUTES):
    """R^2 and MAE per attribute of predictions [N, A] against truth [N, A] (a DataFrame)."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    if pred.shape != true.shape or pred.ndim != 2 or pred.shape[1] != len(attributes):
        raise ValueError(f"expected predictions and truth of equal shape [N, {len(attributes)}]. "
                         f"Got: {pred.shape} and {true.shape}")
    err = pred - true
    var = true.var(0)
    return pd.DataFrame({"attribute": list(attributes), "r2": 1 - (err ** 2).mean(0) / var,
                         "mae": np.abs(err).mean(0), "mae_over_std": np.abs(err).mean(0) / np.sqrt(var),
                         "std": np.sqrt(var), "n": len(true)})


def export_regressor(state_path, out_path, note: str = "") -> str:
    """Ship the trained regressor with its held-out accuracy (2,000 test renders); returns sha256."""
    state = torch.load(state_path, map_location="cpu", weights_only=True)
    cfg = AttributeTrainConfig.from_dict(state["config"])
    model = AttributeRegressor(cfg.regressor)
    model.load_state_dict(state["model"])
    acc = held_out_accuracy(model.eval())
    held_out = {"faces": f"test split {HELD_OUT.start}-{HELD_OUT.stop - 1} (photo renders)",
                **{row.attribute: {"r2": round(row.r2, 4), "mae": round(row.mae, 5),
                                   "mae_over_std": round(row.mae_over_std, 4)} for row in acc.itertuples()}}
    meta = {"trained_steps": state["step"], "train_minutes": state["elapsed_s"] / 60, "losses": ["mse_standardised"],
            "train_config": state["config"], "held_out": held_out, "note": note}
    return atomic_torch_save({"kind": "mini_attribute_regressor", "config": cfg.as_dict()["regressor"],
                        "state_dict": model.state_dict(), "training": meta,
                        "stored": "attribute regressor, float32"}, out_path)


def load_regressor(path=None, device="cpu") -> AttributeRegressor:
    """The shipped regressor (or the file ``path``), in eval mode."""
    path = Path(path) if path else mini_path("attributes")
    ckpt = read_torch(path)
    if not isinstance(ckpt, dict) or ckpt.get("kind") != "mini_attribute_regressor":
        raise CheckpointError(f"{path}: not a mini attribute regressor (expected a dict with "
                              f"kind='mini_attribute_regressor', as export_regressor writes)")
    model = AttributeRegressor(_regressor_config(ckpt["config"]))
    model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval()
