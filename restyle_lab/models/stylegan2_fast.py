"""The StyleGAN2 generator's fast path (``impl="fast"``): the same sums in fewer passes.

Where the reference path spends its time is not the convolutions but the passes over
large activations (scale by the style, demodulate, pad, blur, add noise, add bias,
leaky ReLU, scale by sqrt 2), each of which reads and writes a whole tensor. Here:

* the style s, the demodulation d and the activation gain sqrt(2) are folded into
  per-sample weights (leaky(z) * g == leaky(g * z) for g > 0), and the batch runs as
  one grouped convolution, so nothing rescales the activations; at low resolution,
  where per-sample weights outweigh the activations, and whenever the styles need
  gradients (the projector), the input is scaled instead and the batch shares one
  weight (``_fold`` decides);
* the activation bias rides in the convolution's (or the blur's) own bias, the noise
  is added and the leaky ReLU applied in place;
* the blur after the transposed convolution pads inside the convolution, and the
  skip branch's zero-insertion upsampling is a depthwise transposed convolution.

Modulation and demodulation statistics are computed in float32 (float64 for float64
weights) even under autocast; the convolutions run in the autocast dtype, or the
input's dtype without autocast.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .ops import SQRT2, upfirdn2d_fast

# Per-sample (folded) weights cost N*out*in*k*k multiplications to build, input scaling
# costs N*in*H*W and demodulation N*out*H*W: folding pays from about 32x32 pixels at
# 512 channels. Below this many output pixels a batch of more than one image shares one weight.
FOLD_MIN_PIXELS = 32 * 32
CHANNELS_LAST = False  # measured slower on CPU: transposed convs and the noise broadcast lose more than the 3x3 convs gain


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    device = x.device.type
    if torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return x.dtype


def _stats_dtype(weight: torch.Tensor) -> torch.dtype:
    return torch.promote_types(weight.dtype, torch.float32)


def style_scales(conv, style: torch.Tensor, gain: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(s [N, in], output scale [N, out]) of a ModulatedConv2d: output scale = gain * demod (or gain).

    Computed without autocast, in float32 or wider.
    """
    dt = _stats_dtype(conv.weight)
    with torch.autocast(style.device.type, enabled=False):
        s = conv.modulation(style.to(dt))
        if not conv.demodulate:
            return s, s.new_full((s.shape[0], conv.out_ch), gain)
        w_sq = conv.weight[0].to(dt).pow(2).sum([2, 3]) * conv.scale ** 2  # [out, in]
        demod = torch.rsqrt(s.pow(2) @ w_sq.t() + 1e-8)
        return s, demod * gain


def _folded_weight(conv, s: torch.Tensor, out_scale: torch.Tensor, transposed: bool = False) -> torch.Tensor:
    """Per-sample weights w * scale * s[in] * out_scale[out]: [N, out, in, k, k], or [N, in, out, k, k]
    (the layout ``conv_transpose2d`` reads) when ``transposed``."""
    with torch.autocast(s.device.type, enabled=False):
        w = conv.weight[0].to(s.dtype)
        per_pair = (out_scale * conv.scale)[:, :, None] * s[:, None, :]  # [N, out, in]
        if transposed:
            return w.transpose(0, 1).unsqueeze(0) * per_pair.transpose(1, 2)[:, :, :, None, None]
        return w.unsqueeze(0) * per_pair[:, :, :, None, None]


def _fold(style: torch.Tensor, n: int, out_hw: int) -> bool:
    if torch.is_grad_enabled() and style.requires_grad:
        # per-sample weights would make the backward pass compute weight gradients (a third
        # convolution); with a shared weight the styles' gradients are cheap reductions
        return False
    return n == 1 or out_hw >= FOLD_MIN_PIXELS


def modulated_conv(conv, x: torch.Tensor, style: torch.Tensor, gain: float = 1.0,
                   bias: torch.Tensor | None = None) -> torch.Tensor:
    """gain * ModulatedConv2d(x, style) + bias, blur included for upsampling layers.

    x: [N, in, H, W]; style: [N, style_dim]; bias: [out] or None. Returns [N, out, H', W'].
    """
    n, c_in, h, w = x.shape
    cdt = _compute_dtype(x)
    s, out_scale = style_scales(conv, style, gain)
    k = conv.kernel_size
    out_hw = h * w * (4 if conv.upsample else 1)
    x = x.to(cdt)
    b = None if bias is None else bias.to(cdt)
    fold = _fold(style, n, out_hw)
    if fold and n == 1 and CHANNELS_LAST:
        wm = _folded_weight(conv, s, out_scale, transposed=conv.upsample)[0].to(cdt)
        x = x.contiguous(memory_format=torch.channels_last)
        wm = wm.contiguous(memory_format=torch.channels_last)
        if conv.upsample:
            y = F.conv_transpose2d(x, wm, stride=2)
            return upfirdn2d_fast(y, conv.blur.kernel, pad=conv.blur.pad, bias=b)
        return F.conv2d(x, wm, b, padding=conv.padding)
    if fold:
        wm = _folded_weight(conv, s, out_scale, transposed=conv.upsample).to(cdt)
        xg = x.reshape(1, n * c_in, h, w)
        bg = None if b is None else b.repeat(n)
        if conv.upsample:
            y = F.conv_transpose2d(xg, wm.reshape(n * c_in, conv.out_ch, k, k), stride=2, groups=n)
            y = upfirdn2d_fast(y, conv.blur.kernel, pad=conv.blur.pad, bias=bg)
        else:
            y = F.conv2d(xg, wm.reshape(n * conv.out_ch, c_in, k, k), bg, padding=conv.padding, groups=n)
        return y.view(n, conv.out_ch, *y.shape[-2:])
    with torch.autocast(x.device.type, enabled=False):
        w_shared = (conv.weight[0].to(s.dtype) * conv.scale).to(cdt)
    x = x * s.to(cdt)[:, :, None, None]
    if conv.upsample:
        y = F.conv_transpose2d(x, w_shared.transpose(0, 1), stride=2)
        y = upfirdn2d_fast(y, conv.blur.kernel, pad=conv.blur.pad)
    else:
        y = F.conv2d(x, w_shared, padding=conv.padding)
    scale = out_scale.to(cdt)[:, :, None, None]
    return torch.mul(y, scale) if b is None else torch.addcmul(b.view(1, -1, 1, 1), y, scale)


def styled_conv(layer, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
    """StyledConv: leaky_relu(modconv(x) + noise_weight * noise + bias) * sqrt(2), in two passes after the conv."""
    out = modulated_conv(layer.conv, x, style, gain=SQRT2, bias=layer.activate.bias * SQRT2)
    if noise is None:
        n, _, h, w = out.shape
        noise = out.new_empty(n, 1, h, w).normal_()
    out.addcmul_(noise.to(out.dtype), (layer.noise.weight * SQRT2).to(out.dtype))
    return F.leaky_relu_(out, 0.2)


def to_rgb(layer, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
    """ToRGB: modconv 1x1 (no demodulation) + bias (+ the upsampled skip).

    The 1x1 convolution with per-sample weights is a batched matrix product
    ([N, 3, in] @ [N, in, H*W]), which beats a grouped 1x1 convolution on CPUs.
    """
    conv = layer.conv
    n, c_in, h, w = x.shape
    cdt = _compute_dtype(x)
    s, out_scale = style_scales(conv, style)
    wm = _folded_weight(conv, s, out_scale).to(cdt).view(n, conv.out_ch, c_in)
    out = torch.bmm(wm, x.to(cdt).reshape(n, c_in, h * w)).view(n, conv.out_ch, h, w)
    # the three-channel skip branch accumulates over every resolution: keep it in the statistics dtype
    out = out.to(s.dtype).add_(layer.bias.to(s.dtype))
    if skip is not None:
        up = layer.upsample
        out.add_(upfirdn2d_fast(skip.to(s.dtype), up.kernel, up=up.factor, pad=up.pad))
    return out
