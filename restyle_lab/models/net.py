"""Encoder + generator + average latent: a ReStyle network or a single-pass pSp / e4e one."""

from __future__ import annotations

import torch
from torch import nn

from ..facts.configs import FAMILIES, EncoderConfig, GeneratorConfig
from ..facts.geometry import Geometry
from . import Generator, StyleEncoder


def render(generator: Generator, geometry: Geometry, codes: torch.Tensor, noise: list | None = None,
           resize: bool = True, randomize_noise: bool = False) -> torch.Tensor:
    """The image an inversion shows for codes w [N, D] / w+ [N, n_styles, D]: [N, 3, h, w].

    The generator's output, average-pooled to ``geometry.pool_size`` when ``resize``
    (the official face_pool; a no-op at that size already) and cropped as the geometry
    says. noise: one map per layer (the projector's), else the generator's fixed maps
    or, with ``randomize_noise``, fresh draws.
    """
    images, _ = generator([codes], input_is_latent=True, noise=noise, randomize_noise=randomize_noise)
    if resize and images.shape[-2:] != (geometry.pool_size, geometry.pool_size):
        images = nn.functional.adaptive_avg_pool2d(images, (geometry.pool_size, geometry.pool_size))
    rows = geometry.crop_pooled if resize else geometry.crop_full
    return images if rows is None else images[:, :, rows[0]: rows[1], :]


class InversionNet(nn.Module):
    """An inversion network as the official pSp / e4e / ReStyle classes hold it.

    family: ``restyle_psp`` / ``restyle_e4e`` (6-channel input [x, y_t]; each call
    predicts a residual) or ``psp`` / ``e4e`` (3-channel, single pass).
    latent_avg: [n_styles, style_dim] or [style_dim]; not part of the state dict,
    as in the official checkpoints where it is stored beside it.
    """

    def __init__(self, family: str, encoder_config: EncoderConfig, generator_config: GeneratorConfig,
                 latent_avg: torch.Tensor | None = None, start_from_latent_avg: bool = True,
                 geometry: Geometry = Geometry()):
        super().__init__()
        if family not in FAMILIES:
            raise ValueError(f"family must be one of {tuple(FAMILIES)}. Got: {family!r}")
        if encoder_config.n_styles != generator_config.n_styles:
            raise ValueError(f"encoder predicts {encoder_config.n_styles} styles but a {generator_config.size}px "
                             f"generator takes {generator_config.n_styles}")
        if encoder_config.style_dim != generator_config.style_dim:
            raise ValueError(f"encoder style_dim {encoder_config.style_dim} != generator style_dim "
                             f"{generator_config.style_dim}")
        self.family = family
        self.encoder = StyleEncoder(encoder_config)
        self.decoder = Generator(generator_config)
        self.face_pool = nn.AdaptiveAvgPool2d((geometry.pool_size, geometry.pool_size))
        self.geometry = geometry
        self.start_from_latent_avg = start_from_latent_avg or FAMILIES[family].restyle
        self.register_buffer("latent_avg", None if latent_avg is None else latent_avg.clone(), persistent=False)
        self.info: dict = {}

    @property
    def is_restyle(self) -> bool:
        return FAMILIES[self.family].restyle

    @property
    def n_styles(self) -> int:
        return self.decoder.n_styles

    def extra_repr(self):
        return f"family={self.family!r}, geometry={self.geometry}"

    def latent_avg_rows(self, batch: int) -> torch.Tensor:
        """latent_avg as [batch, n_styles or 1, style_dim] (a [D] latent_avg broadcasts)."""
        if self.latent_avg is None:
            raise RuntimeError("this network has no latent_avg; load it from a checkpoint or set net.latent_avg")
        return self.latent_avg.repeat(batch, 1, 1)

    def encode(self, x: torch.Tensor, latent: torch.Tensor | None = None) -> torch.Tensor:
        """Codes [N, n_styles, D]. ReStyle: E([x, y_t]) + latent (step t>0) or + latent_avg (step 0)."""
        codes = self.encoder(x)
        if x.shape[1] == 6 and latent is not None:
            return codes + latent
        if self.start_from_latent_avg:
            return codes + self.latent_avg_rows(codes.shape[0])
        return codes

    def synthesize(self, codes: torch.Tensor, resize: bool = True, randomize_noise: bool = False) -> torch.Tensor:
        """Generator image for w / w+ codes, pooled to pool_size when ``resize``, cropped as the geometry says."""
        return render(self.decoder, self.geometry, codes, resize=resize, randomize_noise=randomize_noise)

    def crop(self, images: torch.Tensor, pooled: bool) -> torch.Tensor:
        rows = self.geometry.crop_pooled if pooled else self.geometry.crop_full
        return images if rows is None else images[:, :, rows[0]: rows[1], :]

    def to_input(self, images: torch.Tensor) -> torch.Tensor:
        """A (cropped) output resized to what the encoder reads, as the official loop feeds it back."""
        if tuple(images.shape[-2:]) == self.geometry.input_hw:
            return images
        return nn.functional.adaptive_avg_pool2d(images, self.geometry.input_hw)

    def forward(self, x, latent=None, resize=True, randomize_noise=False):
        """(images, codes) for an input batch: one official ``net.forward`` call."""
        codes = self.encode(x, latent)
        return self.synthesize(codes, resize=resize, randomize_noise=randomize_noise), codes
