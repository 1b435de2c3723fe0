"""The terms of an encoder's training loss, one class each (the official ``calc_loss``).

A term owns its weight option (the official name, an ``EncoderTrainConfig`` field), the names it is
recorded under (``losses.csv``, a checkpoint's ``training.losses``), its weight in each preset, the
pretrained file it reads (and the one-line error when that file is missing), the frozen network it
builds from it, and its computation (a formula of ``training.criteria``). The trainer, the official
options a checkpoint saves, the records and the file check iterate over ``TERMS``: adding a loss is one
class here, its weight field in ``training.config`` (the command line reads the options from there
without importing torch) and its test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..facts.configs import Family
from ..facts.domains import Domain
from ..metrics.weights import ALEXNET_FILE
from . import criteria
from .config import EncoderTrainConfig, progressive_stage, progressive_steps, trained_rows
from .presets import REAL_DOMAINS
from .weights import IRSE50_FILE, MOCO_FILE, Need, backbone_need, load_arcface, load_lpips_alex, load_moco, locate


@dataclass
class Reconstruction:
    """What one training iteration gives the loss: the output y_hat, the target y, the input x (all
    [N, 3, H, W]), the codes w+ [N, n_styles, D], the generator's latent_avg, the training step."""

    y_hat: torch.Tensor
    y: torch.Tensor
    x: torch.Tensor
    latent: torch.Tensor
    latent_avg: torch.Tensor | None
    step: int


class LossTerm:
    """One weighted term. Subclasses set the class facts and ``value``; those with a pretrained file
    build their frozen network in ``build``."""

    option: ClassVar[str]  # the official weight option
    label: ClassVar[str]  # its name in a checkpoint's list of the losses trained with
    record: ClassVar[str]  # its value's name in losses.csv
    e4e_option: ClassVar[bool] = False  # an option of e4e's coach: saved in progressive runs' options only
    files: ClassVar[tuple] = ()  # the pretrained file it reads (alternative names, in order)
    purpose: ClassVar[str] = ""  # what the file is for, in the missing-file error

    def __init__(self, cfg: EncoderTrainConfig, weights: dict, device, dtype: torch.dtype, discriminator=None):
        self.cfg, self.weight = cfg, getattr(cfg, self.option)
        self.build(weights, device, dtype, discriminator)

    def build(self, weights: dict, device, dtype: torch.dtype, discriminator) -> None:
        """Load the frozen network this term needs (``weights``: file name -> path)."""

    @classmethod
    def active(cls, cfg: EncoderTrainConfig) -> bool:
        """Whether a run of ``cfg`` trains with this term (its weight above 0)."""
        return getattr(cfg, cls.option) > 0

    @classmethod
    def preset_weight(cls, family: Family, domain: Domain) -> float:
        """Its weight in the preset of ``family`` on ``domain`` (the official commands; the mini presets
        train with no pretrained file: none can be downloaded where they were trained)."""
        raise NotImplementedError

    @classmethod
    def need(cls, cfg: EncoderTrainConfig) -> Need | None:
        """The pretrained file a run of ``cfg`` needs for this term, if any."""
        if not cls.files or not cls.active(cfg):
            return None
        return Need(cls.files, f"{cls.purpose} ({cls.option}={getattr(cfg, cls.option)})", f"--{cls.option} 0")

    def value(self, r: Reconstruction) -> tuple[torch.Tensor, dict]:
        """(the unweighted term, {record name: value}, its value under ``record`` and any extra)."""
        raise NotImplementedError


def _real(domain: Domain) -> bool:
    return domain.name in REAL_DOMAINS


class LatentDiscriminatorTerm(LossTerm):
    """e4e's adversarial loss against the latent discriminator, over the w+ rows being trained."""

    option, label, record, e4e_option = "w_discriminator_lambda", "w_discriminator", "encoder_discriminator_loss", True

    def build(self, weights, device, dtype, discriminator):
        self.discriminator = discriminator

    @classmethod
    def preset_weight(cls, family, domain):
        return 0.1 if family.base == "e4e" and _real(domain) else 0.0

    def value(self, r):
        adv = criteria.adversarial_loss(self.discriminator, r.latent, trained_rows(self.cfg, r.step))
        return adv, {self.record: adv}


class DeltaNormTerm(LossTerm):
    """e4e's delta regulariser, while the progressive stage is below the last (every offset trained)."""

    option, label, record, e4e_option = "delta_norm_lambda", "delta_norm", "total_delta_loss", True

    @classmethod
    def active(cls, cfg):
        return progressive_steps(cfg) is not None and cfg.delta_norm_lambda > 0

    @classmethod
    def preset_weight(cls, family, domain):
        return 2e-4

    def value(self, r):
        stage = progressive_stage(self.cfg, r.step)
        delta = criteria.delta_loss(r.latent, self.cfg.encoder.n_styles - 1 if stage is None else stage,
                                    self.cfg.delta_norm)
        return delta, {self.record: delta}


class _Similarity(LossTerm):
    """ID / MoCo: 1 - the cosine of a frozen network's features; also records ``id_improve`` (official)."""

    def value(self, r):
        loss, improvement = self.net(r.y_hat, r.y, r.x)
        return loss, {self.record: loss, "id_improve": improvement}


class IdTerm(_Similarity):
    """The ArcFace IR-SE50 identity loss (faces)."""

    option, label, record = "id_lambda", "id", "loss_id"
    files, purpose = (IRSE50_FILE,), "the ArcFace ID loss"

    def build(self, weights, device, dtype, discriminator):
        self.net = criteria.IdLoss(load_arcface(weights[IRSE50_FILE], device).to(dtype))

    @classmethod
    def preset_weight(cls, family, domain):
        return 0.1 if domain.faces and _real(domain) else 0.0


class L2Term(LossTerm):
    """The pixel MSE."""

    option, label, record = "l2_lambda", "l2", "loss_l2"

    @classmethod
    def preset_weight(cls, family, domain):
        return 1.0

    def value(self, r):
        l2 = criteria.l2_loss(r.y_hat, r.y)
        return l2, {self.record: l2}


class LpipsTerm(LossTerm):
    """LPIPS with AlexNet (the lpips package's v0.1 'alex', its AlexNet from torchvision's file)."""

    option, label, record = "lpips_lambda", "lpips", "loss_lpips"
    files, purpose = (ALEXNET_FILE,), "the LPIPS loss"

    def build(self, weights, device, dtype, discriminator):
        self.net = load_lpips_alex(weights[ALEXNET_FILE], device).to(dtype)

    @classmethod
    def preset_weight(cls, family, domain):
        return 0.8 if _real(domain) else 0.0

    def value(self, r):
        lpips = criteria.lpips_loss(self.net, r.y_hat, r.y)
        return lpips, {self.record: lpips}


class WNormTerm(LossTerm):
    """pSp's w-norm: the codes' distance from latent_avg (from 0 without start_from_latent_avg)."""

    option, label, record = "w_norm_lambda", "w_norm", "loss_w_norm"

    @classmethod
    def preset_weight(cls, family, domain):
        return 0.0

    def value(self, r):
        norm = criteria.w_norm_loss(r.latent, r.latent_avg if self.cfg.start_from_latent_avg else None)
        return norm, {self.record: norm}


class MocoTerm(_Similarity):
    """The MoCo v2 similarity loss (every domain but faces)."""

    option, label, record = "moco_lambda", "moco", "loss_moco"
    files, purpose = (MOCO_FILE,), "the MoCo similarity loss"

    def build(self, weights, device, dtype, discriminator):
        self.net = criteria.MocoLoss(load_moco(weights[MOCO_FILE], device).to(dtype))

    @classmethod
    def preset_weight(cls, family, domain):
        return 0.5 if not domain.faces and _real(domain) else 0.0


# the order their weighted values are summed in (it fixes the float sum, so it stays as it was)
TERMS = (LatentDiscriminatorTerm, DeltaNormTerm, IdTerm, L2Term, LpipsTerm, WNormTerm, MocoTerm)


def preset_weights(family: Family, domain: Domain) -> dict:
    """option -> weight of every term in the preset of ``family`` on ``domain``."""
    return {term.option: term.preset_weight(family, domain) for term in TERMS}


def loss_names(cfg: EncoderTrainConfig) -> list[str]:
    """The terms a config trains with."""
    return [term.label for term in TERMS if term.active(cfg)]


def official_loss_options(cfg: EncoderTrainConfig) -> dict:
    """The weight options as the official coach saves them (e4e's own ones in progressive runs only)."""
    return {term.option: getattr(cfg, term.option) for term in TERMS
            if not term.e4e_option or cfg.encoder.progressive}


def needed_files(cfg: EncoderTrainConfig) -> list[Need]:
    """The pretrained files ``cfg`` needs: the terms', then the backbone's."""
    needs = [term.need(cfg) for term in TERMS] + [backbone_need(cfg)]
    return [need for need in needs if need is not None]


def locate_weights(cfg: EncoderTrainConfig, weights_dir) -> dict:
    """file name -> path of every file ``cfg`` needs; missing ones are a one-line UsageError naming each."""
    return locate(needed_files(cfg), weights_dir)


class EncoderLoss:
    """The weighted sum of the configured terms for one iteration.

    Every term is added to the total. The official e4e coach of ReStyle once wrote ``loss = id_lambda * ID``
    over the adversarial and delta terms added before it; its commit 7f2bee3 (2021-09-27) made that
    ``loss += loss_id * id_lambda``, so this sum is what the current official code computes.
    """

    def __init__(self, cfg: EncoderTrainConfig, weights: dict | None = None, device="cpu",
                 dtype: torch.dtype = torch.float32, discriminator=None):
        self.terms = [term(cfg, weights or {}, device, dtype, discriminator) for term in TERMS if term.active(cfg)]

    def __call__(self, y_hat, y, x, latent, latent_avg, step: int) -> tuple[torch.Tensor, dict]:
        r = Reconstruction(y_hat, y, x, latent, latent_avg, step)
        total, parts = y_hat.new_zeros(()), {}
        for term in self.terms:
            value, records = term.value(r)
            parts.update(records)
            total = total + term.weight * value
        parts["loss"] = total
        return total, {k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in parts.items()
                       if v is not None}
