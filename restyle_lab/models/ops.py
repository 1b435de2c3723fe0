"""Plain-PyTorch versions of StyleGAN2's two custom CUDA ops, and the equalized layers.

The official code compiles ``fused_bias_act`` and ``upfirdn2d`` at import time, which is
why it cannot run on a CPU. These are the same computations in native PyTorch; they run
in any dtype on any device and are exact in float64.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .impl import check_impl

SQRT2 = math.sqrt(2.0)


def depthwise_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                     padding: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, padding=padding, groups=C)`` for x [N, C, H, W], weight [C, 1, kh, kw].

    oneDNN, which runs a CPU's depthwise convolutions, has no float64 kernels; without it
    torch convolves one channel at a time (an unfold and a matrix product per channel and
    image: 1,152 calls for one 512 px generator layer). In float64 on a CPU this takes the
    kh * kw shifted multiply-adds instead: the same products, summed in another order.
    """
    if x.device.type != "cpu" or x.dtype != torch.float64:
        return F.conv2d(x, weight, bias, padding=padding, groups=x.shape[1])
    ph, pw = padding
    kh, kw = weight.shape[-2:]
    xp = F.pad(x, [pw, pw, ph, ph]) if ph or pw else x
    h, w = xp.shape[-2] - kh + 1, xp.shape[-1] - kw + 1
    taps = weight[:, 0].to(x.dtype)
    y = xp[:, :, :h, :w] * taps[:, 0, 0].view(1, -1, 1, 1)
    for a in range(kh):
        for b in range(kw):
            if a or b:
                y = y.addcmul_(xp[:, :, a:a + h, b:b + w], taps[:, a, b].view(1, -1, 1, 1))
    return y if bias is None else y.add_(bias.to(y.dtype).view(1, -1, 1, 1))


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor, negative_slope: float = 0.2,
                     scale: float = SQRT2) -> torch.Tensor:
    """leaky_relu(x + bias, slope) * scale, with ``bias`` [C] added along dim 1 of x [N, C, ...]."""
    shape = (1, bias.shape[0]) + (1,) * (x.ndim - 2)
    return F.leaky_relu(x + bias.view(shape), negative_slope) * scale


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0), impl: str = "reference") -> torch.Tensor:
    """Upsample by zero insertion, pad, FIR-filter (true convolution), downsample.

    x: [N, C, H, W]; kernel: [kh, kw]; pad: (before, after), same on both axes
    (negative values crop). ``impl="fast"``: see :func:`upfirdn2d_fast`.
    """
    if check_impl(impl) == "fast":
        return upfirdn2d_fast(x, kernel, up, down, pad)
    n, c, h, w = x.shape
    y = x
    if up > 1:
        # zeros after every sample, as in the reference kernel
        y = x.new_zeros(n, c, h * up, w * up)
        y[:, :, ::up, ::up] = x
    p0, p1 = pad
    y = F.pad(y, [p0, p1, p0, p1])  # negative pads crop
    # one depthwise convolution (groups=C): the same sums as filtering each channel alone,
    # and far faster on CPUs than a single-channel convolution over N*C images
    weight = torch.flip(kernel, [0, 1]).to(y.dtype).expand(c, 1, *kernel.shape)
    y = depthwise_conv2d(y, weight)
    return y[:, :, ::down, ::down]


def upfirdn2d_fast(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1,
                   pad: tuple[int, int] = (0, 0), bias: torch.Tensor | None = None) -> torch.Tensor:
    """upfirdn2d without the zero-filled and padded copies, where the arguments allow it.

    Zero insertion followed by a true convolution is a transposed convolution, so
    ``up=2`` runs as one depthwise ``conv_transpose2d`` (stride 2, a quarter of the
    multiplications); symmetric padding goes to the convolution itself. Other
    arguments take the reference route. ``bias`` [C] is added to the result (inside
    the convolution when it can be). x: [N, C, H, W] -> [N, C, H', W'].
    """
    c = x.shape[1]
    kh, kw = kernel.shape
    p0, p1 = pad
    weight = kernel.to(x.dtype)
    if up == 2 and down == 1 and kh == kw and p1 == p0 - 1 and 0 <= kh - 1 - p0:
        # out[i] = sum_j x[j] k[i + kh-1-p0 - 2j]: the transposed conv's output cropped by kh-1-p0 per side
        b = None if bias is None else bias.to(x.dtype)
        return F.conv_transpose2d(x, weight.expand(c, 1, kh, kw), b, stride=2, padding=kh - 1 - p0, groups=c)
    if up == 1 and down == 1 and p0 == p1 and p0 >= 0:
        b = None if bias is None else bias.to(x.dtype)
        return depthwise_conv2d(x, torch.flip(weight, [0, 1]).expand(c, 1, kh, kw), b, (p0, p0))
    y = upfirdn2d(x, kernel, up, down, pad)
    return y if bias is None else y + bias.to(y.dtype).view(1, -1, 1, 1)


def make_kernel(taps) -> torch.Tensor:
    k = torch.tensor(taps, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


class PixelNorm(nn.Module):
    def forward(self, x):
        return x * torch.rsqrt(torch.mean(x ** 2, dim=1, keepdim=True) + 1e-8)


class FusedLeakyReLU(nn.Module):
    """Bias + leaky ReLU(0.2) * sqrt(2); the bias is a parameter named ``bias``."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        return fused_leaky_relu(x, self.bias)


class EqualLinear(nn.Module):
    """Linear layer with equalized learning rate: w * lr_mul / sqrt(in), b * lr_mul.

    With ``activation=True`` the bias goes through the fused leaky ReLU instead of
    ``F.linear``, as in StyleGAN2.
    """

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = 1.0 / math.sqrt(in_dim) * lr_mul
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x):
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation:
            out = F.linear(x, self.weight * self.scale)
            return fused_leaky_relu(out, bias) if bias is not None else F.leaky_relu(out, 0.2) * SQRT2
        return F.linear(x, self.weight * self.scale, bias=bias)

    def extra_repr(self):
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, lr_mul={self.lr_mul}, activation={self.activation}"


class EqualConv2d(nn.Module):
    """Conv2d with equalized learning rate (used by the discriminator)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, padding: int = 0,
                 bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.scale = 1.0 / math.sqrt(in_ch * kernel * kernel)
        self.stride, self.padding = stride, padding
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None

    def forward(self, x):
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)
