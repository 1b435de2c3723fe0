"""The pSp / e4e / ReStyle encoders in one configurable module, official key names.

``StyleEncoder(EncoderConfig)`` covers every official encoder_type:

=================================  ======  ===========  ========
official class                     head    progressive  backbone
=================================  ======  ===========  ========
BackboneEncoder (ReStyle-pSp)      simple  no           IR-SE50
ResNetBackboneEncoder              simple  no           ResNet34
GradualStyleEncoder (pSp, FPN)     fpn     no           IR-SE50
ResNetGradualStyleEncoder          fpn     no           ResNet34
ProgressiveBackboneEncoder (e4e)   simple  yes          IR-SE50
ResNetProgressiveBackboneEncoder   simple  yes          ResNet34
Encoder4Editing (original e4e)     fpn     yes          IR-SE50
=================================  ======  ===========  ========
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..facts.configs import EncoderConfig
from . import backbones_fast, encoders_fast
from .backbones import build_body, build_stem
from .impl import HasImpl, set_impl
from .ops import EqualLinear


class GradualStyleBlock(nn.Module):
    """map2style: log2(spatial) stride-2 3x3 convs with LeakyReLU(0.01), then an EqualLinear."""

    def __init__(self, in_ch: int, out_ch: int, spatial: int):
        super().__init__()
        n_down = max(int(math.log2(spatial)), 1)
        layers = [nn.Conv2d(in_ch, out_ch, 3, 2, 1), nn.LeakyReLU()]
        for _ in range(n_down - 1):
            layers += [nn.Conv2d(out_ch, out_ch, 3, 2, 1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(out_ch, out_ch, lr_mul=1)
        self.out_ch = out_ch

    def forward(self, x):
        x = self.convs(x)
        if x.shape[-2:] != (1, 1):
            raise ValueError(f"map2style expects its convolutions to reach 1x1, got {tuple(x.shape[-2:])}: "
                             "the input size does not match EncoderConfig.input_size")
        return self.linear(x.view(-1, self.out_ch))


def _upsample_add(x, y):
    return F.interpolate(x, size=y.shape[-2:], mode="bilinear", align_corners=True) + y


class StyleEncoder(HasImpl, nn.Module):
    """Image [N, input_nc, H, W] in [-1, 1] -> codes [N, n_styles, style_dim].

    Codes are offsets: pSp / e4e / ReStyle add ``latent_avg`` (or the previous latent)
    outside the encoder. ``progressive_stage`` (e4e only): None uses every offset
    (official ``ProgressiveStage.Inference``); k uses offsets 1..k.
    ``impl``: ``"reference"`` or ``"fast"`` (eval mode only; see ``backbones_fast``).
    """

    def __init__(self, config: EncoderConfig, impl: str = "reference"):
        super().__init__()
        self.config = config
        bb = config.backbone
        for name, module in build_stem(bb, config.input_nc).items():
            self.add_module(name, module)
        self.body, self.taps = build_body(bb)
        feat = bb.channels[-1]
        base = config.input_size // 16
        self.styles = nn.ModuleList()
        for i in range(config.n_styles):
            spatial = base
            if config.head == "fpn":
                spatial = base if i < config.coarse_ind else (base * 2 if i < config.middle_ind else base * 4)
            self.styles.append(GradualStyleBlock(feat, config.style_dim, spatial))
        if config.head == "fpn":
            self.latlayer1 = nn.Conv2d(bb.channels[2], feat, 1)
            self.latlayer2 = nn.Conv2d(bb.channels[1], feat, 1)
        self.progressive_stage: int | None = None
        set_impl(self, impl)

    def _stem(self, x):
        if self.impl == "fast" and not self.training:
            return backbones_fast.stem(self, x)
        if self.config.backbone.kind == "ir_se":
            return self.input_layer(x)
        return self.relu(self.bn1(self.conv1(x)))

    def _pyramid(self, x):
        """Body pass keeping the three tapped maps (c1: 4x, c2: 2x, c3: final)."""
        taps = {}
        for i, unit in enumerate(self.body):
            x = unit(x)
            if i in self.taps:
                taps[i] = x
        return [taps[i] for i in self.taps]

    def _check_input(self, x):
        if x.ndim != 4 or x.shape[1] != self.config.input_nc:
            raise ValueError(f"encoder expects [N, {self.config.input_nc}, H, W] input. Got: {tuple(x.shape)}")

    def forward(self, x):
        self._check_input(x)
        c = self.config
        n_active = c.n_styles
        if c.progressive and self.progressive_stage is not None:
            n_active = min(self.progressive_stage + 1, c.n_styles)
        x = self._stem(x)

        if c.head == "simple":
            feat = self.body(x)
            source = lambda i: feat  # noqa: E731
        else:
            c1, c2, c3 = self._pyramid(x)
            cache = {}

            def source(i):
                if i < c.coarse_ind:
                    return c3
                if "p2" not in cache:
                    cache["p2"] = _upsample_add(c3, self.latlayer1(c2))
                if i < c.middle_ind:
                    return cache["p2"]
                if "p1" not in cache:
                    cache["p1"] = _upsample_add(cache["p2"], self.latlayer2(c1))
                return cache["p1"]

        if not c.progressive:
            return torch.stack(self._styles(source, range(c.n_styles)), dim=1)
        codes = self._styles(source, range(n_active))
        w0 = codes[0]
        rows = [w0] + [w0 + codes[i] for i in range(1, n_active)]
        rows += [w0] * (c.n_styles - n_active)
        return torch.stack(rows, dim=1)

    def _styles(self, source, indices) -> list:
        """[N, style_dim] per style index, in index order."""
        if self.impl != "fast" or self.training:
            return [self.styles[i](source(i)) for i in indices]
        runs = []  # consecutive indices that read the same map run together
        for i in indices:
            if runs and source(runs[-1][-1]) is source(i):
                runs[-1].append(i)
            else:
                runs.append([i])
        codes = []
        for run in runs:
            codes += encoders_fast.style_heads([self.styles[i] for i in run], source(run[0]))
        return codes
