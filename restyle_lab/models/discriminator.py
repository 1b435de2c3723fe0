"""A StyleGAN2-style residual discriminator, used to train the mini-domain generators.

Not meant to read rosinality's ``d`` weights (no analysis needs a discriminator); it keeps
the parts that matter for training quality (equalized learning rate, residual blocks,
minibatch standard deviation) and downsamples with average pooling, which is cheaper on
a CPU than the blur + strided convolution of the original.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .ops import SQRT2, EqualConv2d, EqualLinear


def _lrelu(x):
    return F.leaky_relu(x, 0.2) * SQRT2


class DiscriminatorBlock(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.conv1 = EqualConv2d(in_ch, in_ch, 3, padding=1)
        self.conv2 = EqualConv2d(in_ch, out_ch, 3, padding=1)
        self.skip = EqualConv2d(in_ch, out_ch, 1, bias=False)

    def forward(self, x):
        out = _lrelu(self.conv1(x))
        out = F.avg_pool2d(_lrelu(self.conv2(out)), 2)
        skip = self.skip(F.avg_pool2d(x, 2))
        return (out + skip) / SQRT2


class Discriminator(nn.Module):
    """Image [N, 3, size, size] -> realness logit [N, 1]."""

    def __init__(self, size: int, channel_base: int = 2048, channel_max: int = 128, mbstd_group: int = 4):
        super().__init__()
        ch = lambda res: int(min(channel_max, channel_base // res))  # noqa: E731
        self.from_rgb = EqualConv2d(3, ch(size), 1)
        blocks = []
        res = size
        while res > 4:
            blocks.append(DiscriminatorBlock(ch(res), ch(res // 2)))
            res //= 2
        self.blocks = nn.Sequential(*blocks)
        self.mbstd_group = mbstd_group
        self.final_conv = EqualConv2d(ch(4) + 1, ch(4), 3, padding=1)
        self.final_linear = EqualLinear(ch(4) * 16, ch(4), activation=True)
        self.out = EqualLinear(ch(4), 1)
        self.size = size

    def forward(self, x):
        out = self.blocks(_lrelu(self.from_rgb(x)))
        n, c, h, w = out.shape
        group = min(n, self.mbstd_group)
        if n % group:
            group = 1
        y = out.view(group, -1, 1, c, h, w)
        y = torch.sqrt(y.var(0, unbiased=False) + 1e-8).mean([2, 3, 4], keepdim=True).squeeze(2)
        y = y.repeat(group, 1, h, w)
        out = _lrelu(self.final_conv(torch.cat([out, y], 1)))
        return self.out(self.final_linear(out.view(n, -1)))

