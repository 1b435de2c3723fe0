"""The ArcFace IR-SE50 face recogniser behind the official ID loss, official key names.

The official ``id_loss`` builds ``Backbone(input_size=112, num_layers=50, drop_ratio=0.6,
mode='ir_se')`` and loads ``model_ir_se50.pth`` into it: the IR-SE stem and body that the faces
encoders share (``models.backbones``, 3-channel input), then an output layer
(BatchNorm2d, Dropout, Flatten, Linear(512 * 7 * 7, 512), BatchNorm1d) and an L2 normalisation.
"""

from __future__ import annotations

import torch
from torch import nn

from ..facts.configs import IR_SE50, BackboneConfig
from .backbones import build_body, build_stem


class ArcFace(nn.Module):
    """Face image [N, 3, input_size, input_size] in [-1, 1] -> unit embedding [N, embedding].

    ``backbone``: IR-SE50 for the real network; narrower configs only for tests.
    """

    def __init__(self, backbone: BackboneConfig = IR_SE50, input_size: int = 112, drop_ratio: float = 0.6,
                 embedding: int = 512):
        super().__init__()
        if backbone.kind != "ir_se":
            raise ValueError(f"ArcFace is an IR-SE network. Got a {backbone.kind!r} backbone")
        self.input_size = input_size
        self.input_layer = build_stem(backbone, 3)["input_layer"]
        self.body, _ = build_body(backbone)
        feat, spatial = backbone.channels[-1], input_size // 16
        self.output_layer = nn.Sequential(nn.BatchNorm2d(feat), nn.Dropout(drop_ratio), nn.Flatten(),
                                          nn.Linear(feat * spatial * spatial, embedding),
                                          nn.BatchNorm1d(embedding))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        emb = self.output_layer(self.body(self.input_layer(x)))
        return emb / emb.norm(2, dim=1, keepdim=True)
