"""Encoder backbones: IR-SE (ArcFace) and ResNet (torchvision BasicBlock), official key names.

Both expose ``stem(x)`` and ``body`` (an ``nn.Sequential`` of residual units) plus
``taps``: the body indices whose outputs feed the FPN (ends of stages 2, 3, 4).
"""

from __future__ import annotations

from torch import nn

from ..facts.configs import BackboneConfig
from . import backbones_fast as fast
from .impl import HasImpl


class SEModule(nn.Module):
    def __init__(self, channels: int, reduction: int):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        return x * self.sigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(x)))))


class BottleneckIRSE(HasImpl, nn.Module):
    """IR-SE unit: BN-conv-PReLU-conv(stride)-BN-SE, plus a shortcut."""

    def __init__(self, in_ch: int, depth: int, stride: int, se_reduction: int):
        super().__init__()
        if in_ch == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(in_ch, depth, 1, stride, bias=False),
                                                nn.BatchNorm2d(depth))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_ch),
            nn.Conv2d(in_ch, depth, 3, 1, 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
            nn.BatchNorm2d(depth),
            SEModule(depth, se_reduction),
        )

    def forward(self, x):
        if self.impl == "fast" and not self.training:
            return fast.irse_unit(self, x)
        return self.res_layer(x) + self.shortcut_layer(x)


class BasicBlock(HasImpl, nn.Module):
    """torchvision's ResNet BasicBlock (same attribute names, so the same state dict)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x):
        if self.impl == "fast" and not self.training:
            return fast.basic_block(self, x)
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


def _stage_ends(units) -> list[int]:
    ends, total = [], 0
    for u in units:
        total += u
        ends.append(total - 1)
    return ends


def build_stem(config: BackboneConfig, input_nc: int) -> dict[str, nn.Module]:
    """Named stem modules, registered directly on the encoder (official layout)."""
    if config.kind == "ir_se":
        return {"input_layer": nn.Sequential(nn.Conv2d(input_nc, config.stem_channels, 3, 1, 1, bias=False),
                                             nn.BatchNorm2d(config.stem_channels),
                                             nn.PReLU(config.stem_channels))}
    return {"conv1": nn.Conv2d(input_nc, config.stem_channels, 7, 2, 3, bias=False),
            "bn1": nn.BatchNorm2d(config.stem_channels),
            "relu": nn.PReLU(config.stem_channels)}


def build_body(config: BackboneConfig) -> tuple[nn.Sequential, tuple[int, int, int]]:
    """The residual units and the (c1, c2, c3) tap indices."""
    units = []
    in_ch = config.stem_channels
    for stage, (n, depth) in enumerate(zip(config.units, config.channels)):
        for k in range(n):
            if config.kind == "ir_se":
                units.append(BottleneckIRSE(in_ch, depth, 2 if k == 0 else 1, config.se_reduction))
            else:
                stride = 2 if (k == 0 and stage > 0) else 1
                units.append(BasicBlock(in_ch, depth, stride))
            in_ch = depth
    ends = _stage_ends(config.units)
    return nn.Sequential(*units), (ends[1], ends[2], ends[3])
