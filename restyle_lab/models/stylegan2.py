"""StyleGAN2 generator whose state dict matches rosinality's ``Generator`` key for key.

Same parameters, buffers (``noises.noise_<j>``, FIR ``kernel``s) and forward
semantics (``input_is_latent``, truncation, style mixing, ``randomize_noise``), for any
size / style_dim / n_mlp / channel widths given by a ``GeneratorConfig``.
"""

from __future__ import annotations

import math
import random

import torch
import torch.nn.functional as F
from torch import nn

from ..facts.configs import GeneratorConfig
from . import stylegan2_fast as fast
from .impl import HasImpl, set_impl
from .ops import EqualLinear, FusedLeakyReLU, PixelNorm, make_kernel, upfirdn2d


class Blur(HasImpl, nn.Module):
    def __init__(self, taps, pad, upsample_factor=1):
        super().__init__()
        kernel = make_kernel(taps)
        if upsample_factor > 1:
            kernel = kernel * upsample_factor ** 2
        self.register_buffer("kernel", kernel)
        self.pad = pad

    def forward(self, x):
        return upfirdn2d(x, self.kernel, pad=self.pad, impl=self.impl)


class Upsample(HasImpl, nn.Module):
    def __init__(self, taps, factor=2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(taps) * factor ** 2)
        p = len(taps) - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x):
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad, impl=self.impl)


class ModulatedConv2d(HasImpl, nn.Module):
    """Style-modulated convolution.

    Computed as conv(x * s, W) * demod rather than with per-sample grouped weights:
    the same numbers (up to summation order) with one shared weight, which is faster
    for training batches and identical in cost at batch 1.
    """

    def __init__(self, in_ch, out_ch, kernel, style_dim, demodulate=True, upsample=False,
                 blur_taps=(1, 3, 3, 1)):
        super().__init__()
        self.in_ch, self.out_ch, self.kernel_size = in_ch, out_ch, kernel
        self.upsample, self.demodulate = upsample, demodulate
        self.weight = nn.Parameter(torch.randn(1, out_ch, in_ch, kernel, kernel))
        if upsample:
            factor = 2
            p = len(blur_taps) - factor - (kernel - 1)
            self.blur = Blur(blur_taps, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
        self.modulation = EqualLinear(style_dim, in_ch, bias_init=1)
        self.scale = 1.0 / math.sqrt(in_ch * kernel * kernel)
        self.padding = kernel // 2

    def forward(self, x, style):
        # x: [N, in_ch, H, W]; style: [N, style_dim]
        if self.impl == "fast":
            return fast.modulated_conv(self, x, style)
        s = self.modulation(style)  # [N, in_ch]
        w = self.weight[0] * self.scale  # [out_ch, in_ch, k, k]
        x = x * s[:, :, None, None]
        if self.upsample:
            out = F.conv_transpose2d(x, w.transpose(0, 1), stride=2, padding=0)
        else:
            out = F.conv2d(x, w, padding=self.padding)
        if self.demodulate:
            # sum over (in, kh, kw) of (w * s)^2, per sample and output channel
            demod = torch.rsqrt(s.pow(2) @ w.pow(2).sum([2, 3]).t() + 1e-8)  # [N, out_ch]
            out = out * demod[:, :, None, None]
        if self.upsample:
            out = self.blur(out)
        return out


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, image, noise=None):
        if noise is None:
            n, _, h, w = image.shape
            noise = image.new_empty(n, 1, h, w).normal_()
        return image + self.weight * noise


class ConstantInput(nn.Module):
    def __init__(self, channels, size=4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, like):
        return self.input.repeat(like.shape[0], 1, 1, 1)


class StyledConv(HasImpl, nn.Module):
    """Modulated conv, noise, bias + leaky ReLU * sqrt 2, then (``clamp``: NVlabs' conv_clamp) clamped to +-clamp."""

    def __init__(self, in_ch, out_ch, kernel, style_dim, upsample=False, blur_taps=(1, 3, 3, 1), clamp=None):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, kernel, style_dim, upsample=upsample, blur_taps=blur_taps)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_ch)
        self.clamp = clamp

    def forward(self, x, style, noise=None):
        if self.impl == "fast":
            out = fast.styled_conv(self, x, style, noise)
        else:
            out = self.activate(self.noise(self.conv(x, style), noise=noise))
        return out if self.clamp is None else out.clamp(-self.clamp, self.clamp)


class ToRGB(HasImpl, nn.Module):
    """1x1 modulated conv + bias (``clamp``: clamped to +-clamp before the skip is added, as NVlabs does)."""

    def __init__(self, in_ch, style_dim, upsample=True, blur_taps=(1, 3, 3, 1), clamp=None):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        if upsample:
            self.upsample = Upsample(blur_taps)
        self.conv = ModulatedConv2d(in_ch, 3, 1, style_dim, demodulate=False)
        self.clamp = clamp

    def forward(self, x, style, skip=None):
        if self.clamp is not None:
            out = fast.to_rgb(self, x, style, None) if self.impl == "fast" else self.conv(x, style) + self.bias
            out = out.clamp(-self.clamp, self.clamp)
            return out if skip is None else out + self.upsample(skip).to(out.dtype)
        if self.impl == "fast":
            return fast.to_rgb(self, x, style, skip)
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class Generator(HasImpl, nn.Module):
    """StyleGAN2 generator (rosinality layout).

    ``forward(styles, ...)`` takes a list of one or two tensors: z [N, style_dim], or
    with ``input_is_latent=True`` w [N, style_dim] or w+ [N, n_styles, style_dim].
    Returns (image [N, 3, size, size], latent w+ or None).
    ``impl``: ``"reference"`` (exact) or ``"fast"`` (see ``stylegan2_fast``); switch a
    built generator with ``restyle_lab.models.set_impl``.
    """

    def __init__(self, config: GeneratorConfig, impl: str = "reference"):
        super().__init__()
        self.config = config
        c = config
        taps = c.blur_kernel
        self.size, self.style_dim = c.size, c.style_dim
        layers = [PixelNorm()]
        layers += [EqualLinear(c.style_dim, c.style_dim, lr_mul=c.lr_mlp, activation=True) for _ in range(c.n_mlp)]
        self.style = nn.Sequential(*layers)

        clamp = c.conv_clamp
        self.input = ConstantInput(c.channels(4))
        self.conv1 = StyledConv(c.channels(4), c.channels(4), 3, c.style_dim, blur_taps=taps, clamp=clamp)
        self.to_rgb1 = ToRGB(c.channels(4), c.style_dim, upsample=False, clamp=clamp)
        self.log_size = c.log_size
        self.num_layers = c.n_noises
        self.n_latent = c.n_styles
        self.convs = nn.ModuleList()
        self.upsamples = nn.ModuleList()  # empty; kept so the module tree matches rosinality's
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for j in range(self.num_layers):
            res = (j + 5) // 2
            self.noises.register_buffer(f"noise_{j}", torch.randn(1, 1, 2 ** res, 2 ** res))
        in_ch = c.channels(4)
        for i in range(3, self.log_size + 1):
            out_ch = c.channels(2 ** i)
            self.convs.append(StyledConv(in_ch, out_ch, 3, c.style_dim, upsample=True, blur_taps=taps, clamp=clamp))
            self.convs.append(StyledConv(out_ch, out_ch, 3, c.style_dim, blur_taps=taps, clamp=clamp))
            self.to_rgbs.append(ToRGB(out_ch, c.style_dim, blur_taps=taps, clamp=clamp))
            in_ch = out_ch
        set_impl(self, impl)

    @property
    def n_styles(self) -> int:
        return self.n_latent

    def fixed_noise(self):
        return [getattr(self.noises, f"noise_{j}") for j in range(self.num_layers)]

    @torch.no_grad()
    def mean_latent(self, n: int = 100_000, seed: int = 0, chunk: int = 10_000) -> torch.Tensor:
        """w_avg [1, style_dim]: the mapping's mean over n seeded z draws."""
        p = next(self.parameters())
        gen = torch.Generator(device="cpu").manual_seed(seed)
        total = torch.zeros(1, self.style_dim, dtype=torch.float64)
        for start in range(0, n, chunk):
            z = torch.randn(min(chunk, n - start), self.style_dim, generator=gen)
            total += self.style(z.to(p.device, p.dtype)).double().sum(0, keepdim=True).cpu()
        return (total / n).to(p.device, p.dtype)

    def forward(self, styles, return_latents=False, inject_index=None, truncation=1.0,
                truncation_latent=None, input_is_latent=False, noise=None, randomize_noise=True):
        if not isinstance(styles, (list, tuple)):
            raise TypeError(f"styles must be a list of tensors (rosinality's convention). Got: {type(styles)}")
        if not input_is_latent:
            styles = [self.style(s) for s in styles]
        if noise is None:
            noise = [None] * self.num_layers if randomize_noise else self.fixed_noise()
        if truncation < 1:
            styles = [truncation_latent + truncation * (s - truncation_latent) for s in styles]

        def rows(s):  # w [N, D] -> w+ [N, n_latent, D]
            return s if s.ndim == 3 else s.unsqueeze(1).repeat(1, self.n_latent, 1)

        if len(styles) < 2:
            latent = rows(styles[0])
        else:
            if inject_index is None:
                inject_index = random.randint(1, self.n_latent - 1)
            latent = torch.cat([rows(styles[0])[:, :inject_index], rows(styles[1])[:, inject_index:]], 1)
        if latent.shape[1] != self.n_latent:
            raise ValueError(f"w+ must have {self.n_latent} rows for a {self.size}px generator. "
                             f"Got: {tuple(latent.shape)}")

        if self.impl == "fast" and self.config.conv_clamp is None:  # clamped layers go layer by layer (below)
            skip = fast.synthesize(self, latent, noise)
            return (skip, latent) if return_latents else (skip, None)
        out = self.input(latent)
        out = self.conv1(out, latent[:, 0], noise=noise[0])
        skip = self.to_rgb1(out, latent[:, 1])
        i = 1
        for conv_up, conv, n1, n2, to_rgb in zip(self.convs[::2], self.convs[1::2], noise[1::2], noise[2::2],
                                                 self.to_rgbs):
            out = conv_up(out, latent[:, i], noise=n1)
            out = conv(out, latent[:, i + 1], noise=n2)
            skip = to_rgb(out, latent[:, i + 2], skip)
            i += 2
        return (skip, latent) if return_latents else (skip, None)
