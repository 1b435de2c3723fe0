"""e4e's latent discriminator (``LatentCodesDiscriminator(512, 4)``), official key names.

It tells w codes mapped from z ("real") from the encoder's codes ("fake"): n_mlp - 1 blocks of
Linear(style_dim, style_dim) + LeakyReLU(0.2), then Linear(style_dim, 1), all in ``mlp``.
"""

from __future__ import annotations

import torch
from torch import nn


class LatentCodesDiscriminator(nn.Module):
    """w [N, style_dim] -> logit [N, 1]."""

    def __init__(self, style_dim: int = 512, n_mlp: int = 4):
        super().__init__()
        layers = []
        for _ in range(n_mlp - 1):
            layers += [nn.Linear(style_dim, style_dim), nn.LeakyReLU(0.2)]
        layers.append(nn.Linear(style_dim, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return self.mlp(w)
