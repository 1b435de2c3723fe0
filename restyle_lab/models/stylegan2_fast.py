"""The StyleGAN2 generator's fast path (``impl="fast"``): the same sums in fewer passes.

Where the reference path spends its time is not the convolutions but the passes over
large activations (scale by the style, demodulate, pad, blur, add noise, add bias,
leaky ReLU, scale by sqrt 2), each of which reads and writes a whole tensor. Here:

* the style s, the demodulation d and the activation gain sqrt(2) are folded into
  per-sample weights (leaky(z) * g == leaky(g * z) for g > 0), so nothing rescales the
  activations; at low resolution, where per-sample weights outweigh the activations,
  and whenever the styles need gradients (the projector), the input is scaled instead
  and the batch shares one weight (``_fold`` decides);
* the activation bias rides in the convolution's (or the blur's) own bias, the noise
  is added and the leaky ReLU applied in place;
* the blur after the transposed convolution pads inside the convolution, and the
  skip branch's upsampling is a bilinear resize where the FIR kernel is (1, 3, 3, 1)
  (the same weights, 1/4 and 3/4, with the zero border of ``upfirdn2d`` restored by
  padding), else a depthwise transposed convolution;
* the demodulation statistics of each weight (sum of squares over the kernel) are
  kept between calls while the weight is unchanged.

On a CPU (measured on 2-core AMD EPYC and Intel Xeon, torch 2.14, see
README.md, Speed) two more things decide the time:

* activations are channels_last: oneDNN's convolutions, transposed convolutions and
  depthwise blurs read and write NHWC without reordering to a blocked layout (1.5-3x
  per layer), and per-pixel noise is added to the [pixels, channels] view;
* a block whose activations are large (``TILE_MIN_BYTES`` per image and more: the
  top three resolutions of a 1024 generator) runs image by image in bands of rows,
  with the halo rows each band needs. Every band's tensors are a few MB, which the C
  library serves from memory it already holds; a tensor of tens of MB is fresh
  pages from the kernel on every call, and faulting them in cost as much as the
  arithmetic on them (glibc's mmap threshold is at most 32 MB). Only inference
  (no autograd) takes this route.

Modulation and demodulation statistics are computed in float32 (float64 for float64
weights) even under autocast; the convolutions run in the autocast dtype, or the
input's dtype without autocast.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .ops import SQRT2, depthwise_conv2d, make_kernel, upfirdn2d_fast

# Per-sample (folded) weights cost N*out*in*k*k multiplications to build, input scaling
# costs N*in*H*W and demodulation N*out*H*W: folding pays from about 32x32 pixels at
# 512 channels. Below this many output pixels a batch of more than one image shares one weight.
FOLD_MIN_PIXELS = 32 * 32
# On a CPU, inference runs image by image from the first block whose activation (the
# batch's) has this many bytes, in bands of rows of about BAND_BYTES (at least MIN_BAND_ROWS
# rows, so that the halo rows stay a small share)
TILE_MIN_BYTES = 16 << 20
BAND_BYTES = 8 << 20
MIN_BAND_ROWS = 16
CHANNELS_LAST = True  # on a CPU; other devices keep the contiguous layout
# dtypes that stay NCHW on a CPU too: oneDNN has no float64 kernels, and torch's own convolutions run 10-25%
# slower on NHWC than on NCHW
NCHW_DTYPES = (torch.float64,)
_BILINEAR_TAPS = (1, 3, 3, 1)


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    device = x.device.type
    if torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return x.dtype


def _stats_dtype(weight: torch.Tensor) -> torch.dtype:
    return torch.promote_types(weight.dtype, torch.float32)


def _nhwc(x: torch.Tensor) -> bool:
    return CHANNELS_LAST and x.device.type == "cpu" and x.ndim == 4 and x.dtype not in NCHW_DTYPES


def _layout(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if _nhwc(x) else x


def _cached(module, name: str, source: torch.Tensor, make):
    """``make()``, kept on ``module`` while ``source`` is the same unchanged tensor (storage, version, dtype).

    Not kept while ``source`` takes part in autograd (training changes it every step), nor
    inside ``torch.compile`` (which traces the computation instead).
    """
    if (torch.is_grad_enabled() and source.requires_grad) or torch.compiler.is_compiling():
        return make()
    key = (source.data_ptr(), source._version, source.dtype, source.device, tuple(source.shape))
    hit = module.__dict__.get(name)
    if hit is not None and hit[0] == key:
        return hit[1]
    value = make()
    module.__dict__[name] = (key, value)
    return value


def style_scales(conv, style: torch.Tensor, gain: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(s [N, in], output scale [N, out]) of a ModulatedConv2d: output scale = gain * demod (or gain).

    Computed without autocast, in float32 or wider.
    """
    dt = _stats_dtype(conv.weight)
    with torch.autocast(style.device.type, enabled=False):
        s = conv.modulation(style.to(dt))
        if not conv.demodulate:
            return s, s.new_full((s.shape[0], conv.out_ch), gain)
        w_sq = _cached(conv, "_fast_weight_sq", conv.weight,
                       lambda: conv.weight[0].to(dt).pow(2).sum([2, 3]) * conv.scale ** 2)  # [out, in]
        demod = torch.rsqrt(s.pow(2) @ w_sq.t() + 1e-8)
        return s, demod * gain


def _base_weight(conv, dtype, transposed: bool) -> torch.Tensor:
    """The convolution weight [out, in, k, k], or [in, out, k, k] (the layout ``conv_transpose2d`` reads)
    when ``transposed``: contiguous in that layout, so that folding it gives contiguous weights.
    The transposed copy is kept between calls while the weight is unchanged."""
    w = conv.weight[0]
    if not transposed:
        return w.to(dtype)
    return _cached(conv, "_fast_weight_t", w, lambda: w.to(dtype).transpose(0, 1).contiguous())


def _folded_weight(conv, s: torch.Tensor, out_scale: torch.Tensor, transposed: bool = False) -> torch.Tensor:
    """Per-sample weights w * scale * s[in] * out_scale[out]: [N, out, in, k, k], or [N, in, out, k, k]
    (the layout ``conv_transpose2d`` reads) when ``transposed``."""
    with torch.autocast(s.device.type, enabled=False):
        w = _base_weight(conv, s.dtype, transposed)
        per_pair = (out_scale * conv.scale)[:, :, None] * s[:, None, :]  # [N, out, in]
        if transposed:
            return w.unsqueeze(0) * per_pair.transpose(1, 2)[:, :, :, None, None]
        return w.unsqueeze(0) * per_pair[:, :, :, None, None]


def _fold(style: torch.Tensor, n: int, out_hw: int) -> bool:
    if torch.is_grad_enabled() and style.requires_grad:
        # per-sample weights would make the backward pass compute weight gradients (a third
        # convolution); with a shared weight the styles' gradients are cheap reductions
        return False
    return n == 1 or out_hw >= FOLD_MIN_PIXELS


def _blur_weight(blur, channels: int, dtype) -> torch.Tensor:
    """The blur's depthwise kernel [C, 1, kh, kw], flipped for ``conv2d`` (a true convolution)."""
    k = torch.flip(blur.kernel, [0, 1]).to(dtype)
    return k.expand(channels, 1, *k.shape)


def _up_conv(conv, x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, groups: int = 1) -> torch.Tensor:
    """Transposed convolution (stride 2) with weights ``w`` [in, out, k, k], then the blur, which adds ``bias``."""
    y = F.conv_transpose2d(x, w, stride=2, groups=groups)
    return upfirdn2d_fast(y, conv.blur.kernel, pad=conv.blur.pad, bias=bias)


def modulated_conv(conv, x: torch.Tensor, style: torch.Tensor, gain: float = 1.0,
                   bias: torch.Tensor | None = None) -> torch.Tensor:
    """gain * ModulatedConv2d(x, style) + bias, blur included for upsampling layers.

    x: [N, in, H, W]; style: [N, style_dim]; bias: [out] or None. Returns [N, out, H', W']
    (channels_last on a CPU).
    """
    n, c_in, h, w = x.shape
    cdt = _compute_dtype(x)
    s, out_scale = style_scales(conv, style, gain)
    k = conv.kernel_size
    out_hw = h * w * (4 if conv.upsample else 1)
    x = _layout(x.to(cdt))
    b = None if bias is None else bias.to(cdt)
    fold = _fold(style, n, out_hw)
    if fold and n == 1:
        wm = _folded_weight(conv, s, out_scale, transposed=conv.upsample)[0].to(cdt)
        if conv.upsample:
            return _up_conv(conv, x, wm, b)
        return F.conv2d(x, wm, b, padding=conv.padding)
    if fold and not _nhwc(x):
        wm = _folded_weight(conv, s, out_scale, transposed=conv.upsample).to(cdt)
        xg = x.reshape(1, n * c_in, h, w)
        bg = None if b is None else b.repeat(n)
        if conv.upsample:
            y = _up_conv(conv, xg, wm.reshape(n * c_in, conv.out_ch, k, k), bg, groups=n)
        else:
            y = F.conv2d(xg, wm.reshape(n * conv.out_ch, c_in, k, k), bg, padding=conv.padding, groups=n)
        return y.view(n, conv.out_ch, *y.shape[-2:])
    # a batch sharing one weight (on a CPU also where folding would pay: grouped convolutions
    # want the images' channels side by side, which channels_last does not give)
    y = _shared_conv(conv, x, s, cdt)
    scale = out_scale.to(cdt)[:, :, None, None]
    if torch.is_grad_enabled():  # autograd needs y as it is for the scale's gradient
        return y * scale if b is None else torch.addcmul(b.view(1, -1, 1, 1), y, scale)
    return y.mul_(scale) if b is None else torch.addcmul(b.view(1, -1, 1, 1), y, scale, out=y)


def _shared_conv(conv, x: torch.Tensor, s: torch.Tensor, cdt) -> torch.Tensor:
    """conv(x * s, w * scale), blur included: the modulated convolution before demodulation, with
    one weight for the batch. x: [N, in, H, W] in ``cdt``; s: [N, in]."""
    with torch.autocast(x.device.type, enabled=False):
        w_shared = (_base_weight(conv, s.dtype, conv.upsample) * conv.scale).to(cdt)
    x = x * s.to(cdt)[:, :, None, None]
    if conv.upsample:
        return _up_conv(conv, x, w_shared, None)
    return F.conv2d(x, w_shared, padding=conv.padding)


def _pixels(t: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] -> a [N, H*W, C] view (either memory layout)."""
    n, c, h, w = t.shape
    if t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous():
        return t.permute(0, 2, 3, 1).reshape(n, h * w, c)
    return t.reshape(n, c, h * w).transpose(1, 2)


class _Activation(torch.autograd.Function):
    """leaky_relu(y * scale + bias + strength * noise, 0.2): StyledConv after its shared-weight
    convolution, under autograd, as one node.

    Forward: one new tensor in y's layout, then in place. Backward: each gradient from
    the [pixels, channels] views, so that nothing mixes layouts or copies a view's
    gradient (autograd's own graph for these ops did both on channels_last tensors).
    y: [N, C, H, W]; scale: [N, C]; bias: [C]; noise: [N or 1, 1, H, W]; strength: [1].
    """

    @staticmethod
    def forward(ctx, y, scale, bias, noise, strength):
        out = torch.empty_like(y)
        torch.addcmul(bias.view(1, -1, 1, 1), y, scale[:, :, None, None], out=out)
        out = F.leaky_relu_(_add_noise(out, noise, strength), 0.2)
        ctx.save_for_backward(y, out, scale, noise, strength)
        return out

    @staticmethod
    def backward(ctx, grad):
        y, out, scale, noise, strength = ctx.saved_tensors
        if out.is_contiguous(memory_format=torch.channels_last):
            grad = grad.contiguous(memory_format=torch.channels_last)
        g = torch.ops.aten.leaky_relu_backward(grad, out, 0.2, True)  # the slope where out <= 0
        need = ctx.needs_input_grad
        grad_y = g * scale[:, :, None, None] if need[0] else None
        gp = _pixels(g)
        grad_scale = (gp * _pixels(y)).sum(1) if need[1] else None
        grad_bias = gp.sum((0, 1)) if need[2] else None
        grad_noise = grad_strength = None
        if need[3] or need[4]:
            per_pixel = gp.sum(2).view(g.shape[0], 1, *g.shape[2:])  # summed over the channels
            if need[3]:
                grad_noise = per_pixel * strength
                if noise.shape[0] != g.shape[0]:  # one map broadcast over the batch
                    grad_noise = grad_noise.sum(0, keepdim=True)
            if need[4]:
                grad_strength = (per_pixel * noise).sum().reshape(strength.shape)
        return grad_y, grad_scale, grad_bias, grad_noise, grad_strength


def _add_noise(out: torch.Tensor, noise: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    """out + strength * noise, noise [N or 1, 1, H, W] broadcast over the channels; in place
    without autograd, a new tensor with it (an in-place add to a view costs copies in backward)."""
    noise = noise.to(out.dtype)
    inplace = not torch.is_grad_enabled()
    if _nhwc(out) and out.is_contiguous(memory_format=torch.channels_last):
        # as [pixels, channels] + [pixels, 1]: broadcasting over the innermost (channel) stride is
        # several times faster than the 4-d broadcast over a channels_last tensor
        n, c, h, w = out.shape
        flat = out.permute(0, 2, 3, 1).reshape(n, h * w, c)
        column = noise.reshape(noise.shape[0], h * w, 1) * strength.to(out.dtype)
        if inplace:
            flat.add_(column)
            return out
        return (flat + column).view(n, h, w, c).permute(0, 3, 1, 2)
    if inplace:
        return out.addcmul_(noise, strength.to(out.dtype))
    return torch.addcmul(out, noise, strength.to(out.dtype))


def _autograd(module, *tensors) -> bool:
    """Whether autograd records: grad mode on, and a tensor or a parameter of ``module`` needs a gradient."""
    if not torch.is_grad_enabled():
        return False
    return any(t is not None and t.requires_grad for t in tensors) or \
        any(p.requires_grad for p in module.parameters())


def _noise_for(out: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
    if noise is None:
        n, _, h, w = out.shape
        noise = out.new_empty(n, 1, h, w).normal_()
    return noise


def styled_conv(layer, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
    """StyledConv: leaky_relu(modconv(x) + noise_weight * noise + bias) * sqrt(2), in two passes after the conv.

    Under autograd (the projector, training): a shared weight, and the rest as one node (``_Activation``).
    """
    if _autograd(layer, x, style, noise):
        conv = layer.conv
        cdt = _compute_dtype(x)
        s, out_scale = style_scales(conv, style, SQRT2)
        y = _shared_conv(conv, _layout(x.to(cdt)), s, cdt)
        return _Activation.apply(y, out_scale.to(cdt), (layer.activate.bias * SQRT2).to(cdt),
                                 _noise_for(y, noise).to(cdt), (layer.noise.weight * SQRT2).to(cdt))
    out = modulated_conv(layer.conv, x, style, gain=SQRT2, bias=layer.activate.bias * SQRT2)
    out = _add_noise(out, _noise_for(out, noise), layer.noise.weight * SQRT2)
    return F.leaky_relu_(out, 0.2)


def _rgb_weight(conv, style: torch.Tensor, cdt) -> tuple[torch.Tensor, torch.dtype]:
    """ToRGB's per-sample 1x1 weights [N, 3, in] in ``cdt``, and the statistics dtype."""
    s, out_scale = style_scales(conv, style)
    wm = _folded_weight(conv, s, out_scale)
    return wm.to(cdt).view(wm.shape[0], conv.out_ch, conv.in_ch), s.dtype


def upsample_skip(up, skip: torch.Tensor) -> torch.Tensor:
    """ToRGB's ``Upsample`` of the skip image [N, 3, H, W] -> [N, 3, 2H, 2W].

    With the (1, 3, 3, 1) kernel, zero insertion and the FIR filter are the bilinear
    weights 1/4, 3/4 (align_corners=False); a zero border added first and cropped
    after gives ``upfirdn2d``'s zero padding instead of bilinear's edge clamping.
    """
    if not torch.compiler.is_compiling() and _cached(up, "_fast_is_bilinear", up.kernel, lambda: _is_bilinear(up)):
        big = F.interpolate(F.pad(skip, (1, 1, 1, 1)), scale_factor=2, mode="bilinear", align_corners=False)
        return big[:, :, 2:-2, 2:-2]
    return upfirdn2d_fast(skip, up.kernel, up=up.factor, pad=up.pad)


def _is_bilinear(up) -> bool:
    bilinear = make_kernel(_BILINEAR_TAPS) * 4
    return up.factor == 2 and up.pad == (2, 1) and torch.equal(up.kernel.detach().to("cpu", torch.float32), bilinear)


def to_rgb(layer, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
    """ToRGB: modconv 1x1 (no demodulation) + bias (+ the upsampled skip). Returns [N, 3, H, W] contiguous.

    The 1x1 convolution with per-sample weights is a batched matrix product
    ([N, 3, in] @ [N, in, H*W]), which beats a grouped 1x1 convolution on CPUs. A
    channels_last x is read in place as [N, H*W, in] @ [N, in, 3], so that its gradient
    (the projector's) comes back channels_last too instead of mixing layouts.
    """
    conv = layer.conv
    n, c_in, h, w = x.shape
    cdt = _compute_dtype(x)
    wm, sdt = _rgb_weight(conv, style, cdt)
    x = x.to(cdt)
    if _nhwc(x) and x.is_contiguous(memory_format=torch.channels_last):
        pixels = x.permute(0, 2, 3, 1).reshape(n, h * w, c_in)  # a view
        out = torch.bmm(pixels, wm.transpose(1, 2)).transpose(1, 2).reshape(n, conv.out_ch, h, w)
    else:
        out = torch.bmm(wm, x.reshape(n, c_in, h * w)).view(n, conv.out_ch, h, w)
    # the three-channel skip branch accumulates over every resolution: keep it in the statistics dtype
    out = out.to(sdt).add_(layer.bias.to(sdt))
    if skip is not None:
        out.add_(upsample_skip(layer.upsample, skip.to(sdt)))
    return out


# ------------------------------------------------------------------ whole synthesis network

def _band_rows(layer, n: int, width: int) -> int:
    per_row = n * layer.conv.out_ch * width * 4
    return max(MIN_BAND_ROWS, BAND_BYTES // per_row)


def _tiles(x: torch.Tensor, conv_up, autograd: bool) -> bool:
    """Run this block in bands: CPU inference with large activations (see the module doc)."""
    if not _nhwc(x) or autograd:
        return False
    pad = conv_up.conv.blur.pad
    side = 2 * x.shape[-2]
    return pad[0] == pad[1] and x.shape[0] * conv_up.conv.out_ch * side * x.shape[-1] * 2 * 4 >= TILE_MIN_BYTES


def _conv_rows(conv_fn, t: torch.Tensor, top: int, lo: int, hi: int, size: int, k: int, p: int) -> torch.Tensor:
    """Rows [lo, hi) of a convolution (``k`` rows tall, padding ``p``) over an image of ``size`` rows,
    of which ``t`` holds rows [top, top + t.shape[2]), every row the result reads among them.

    conv_fn(rows, pad) runs the convolution with vertical padding ``pad``: 0 inside the
    image, ``p`` where the rows reach the image's edge (the extra rows this computes
    on the other side are cropped).
    """
    ra, rb = max(lo - p, 0), min(hi - p + k - 1, size)  # the image rows read
    pad = p if (ra > lo - p or rb < hi - p + k - 1) else 0
    out = conv_fn(t[:, :, ra - top: rb - top], pad)
    first = ra - pad + p  # the row out[:, :, 0] is
    return out[:, :, lo - first: hi - first]


def _tiled_block(conv_up, conv, to_rgb_layer, x, styles, noises, skip, keep_output: bool):
    """One resolution block (upsampling StyledConv, StyledConv, ToRGB) image by image in bands of rows.

    x: [N, in, h, w] channels_last; styles: three [N, D]; noises: two [N or 1, 1, 2h, 2w].
    Returns (activation [N, out, 2h, 2w] channels_last, or None; rgb [N, 3, 2h, 2w]).
    Each band computes the rows it needs around it (the halo) from the block's input,
    with zero padding only at the image's edges, so it holds the same sums.
    """
    n, _, h, w = x.shape
    size, width = 2 * h, 2 * w
    cdt = _compute_dtype(x)
    x = x.to(cdt)
    mc_up, mc = conv_up.conv, conv.conv
    s_up, o_up = style_scales(mc_up, styles[0], SQRT2)
    s_c, o_c = style_scales(mc, styles[1], SQRT2)
    w_up = _folded_weight(mc_up, s_up, o_up, transposed=True).to(cdt)
    w_c = _folded_weight(mc, s_c, o_c).to(cdt)
    b_up = (conv_up.activate.bias * SQRT2).to(cdt)
    b_c = (conv.activate.bias * SQRT2).to(cdt)
    g_up, g_c = conv_up.noise.weight * SQRT2, conv.noise.weight * SQRT2
    w_rgb, sdt = _rgb_weight(to_rgb_layer.conv, styles[2], cdt)
    if skip is None:
        rgb = torch.zeros(n, 3, size, width, dtype=sdt, device=x.device)
    else:
        rgb = upsample_skip(to_rgb_layer.upsample, skip.to(sdt))
    rgb.add_(to_rgb_layer.bias.to(sdt))
    out = torch.empty(n, mc.out_ch, size, width, dtype=cdt, device=x.device,
                      memory_format=torch.channels_last) if keep_output else None
    k_t, p_c = mc_up.kernel_size, mc.padding  # the transposed convolution's kernel, the 3x3's padding
    k_b, p_b = mc_up.blur.kernel.shape[0], mc_up.blur.pad[0]  # the blur's kernel and padding
    blur_w = _blur_weight(mc_up.blur, mc_up.out_ch, cdt)
    band = _band_rows(conv, 1, width)
    for i in range(n):
        noise_up = noises[0][i if noises[0].shape[0] > 1 else 0][None]
        noise_c = noises[1][i if noises[1].shape[0] > 1 else 0][None]
        blur = lambda rows, pad: depthwise_conv2d(rows, blur_w, b_up, (pad, p_b))  # noqa: E731
        conv3 = lambda rows, pad, i=i: F.conv2d(rows, w_c[i], b_c, padding=(pad, p_c))  # noqa: E731
        for a in range(0, size, band):
            b = min(a + band, size)
            # the rows each stage reads, from the last stage back: the upsampled layer's...
            ua, ub = max(a - p_c, 0), min(b + p_c, size)
            # ... the transposed convolution's (the blur reads them) and the input rows reaching those
            c0, c1 = max(ua - p_b, 0), min(ub - p_b + k_b - 1, size + 1)
            i0, i1 = max((c0 - k_t + 2) // 2, 0), min((c1 - 1) // 2 + 1, h)
            y = F.conv_transpose2d(x[i: i + 1, :, i0:i1], w_up[i], stride=2)  # rows [2 i0, 2 i1 + k_t - 2)
            up = _conv_rows(blur, y, 2 * i0, ua, ub, size + 1, k_b, p_b)
            _add_noise(up, noise_up[:, :, ua:ub], g_up)
            F.leaky_relu_(up, 0.2)
            z = _conv_rows(conv3, up, ua, a, b, size, mc.kernel_size, p_c)
            _add_noise(z, noise_c[:, :, a:b], g_c)
            F.leaky_relu_(z, 0.2)
            if out is not None:
                out[i, :, a:b] = z[0]
            pixels = z[0].permute(1, 2, 0).reshape((b - a) * width, -1)  # [pixels, channels], a view
            rgb[i, :, a:b] += (pixels @ w_rgb[i].t()).t().view(3, b - a, width).to(sdt)
    return out, rgb


def synthesize(gen, latent: torch.Tensor, noise: list) -> torch.Tensor:
    """The synthesis network on the fast path: w+ [N, n_latent, D] -> image [N, 3, size, size].

    noise: one map per layer or None (fresh draws, in the reference's order). From the
    first block that runs in bands (``_tiles``) on, the batch goes image by image, so
    that the activations passed from block to block are one image's too.
    """
    autograd = _autograd(gen, latent, *noise)
    out = gen.input(latent)
    out = styled_conv(gen.conv1, out, latent[:, 0], noise[0])
    skip = to_rgb(gen.to_rgb1, out, latent[:, 1], None)
    blocks = list(zip(gen.convs[::2], gen.convs[1::2], gen.to_rgbs))
    for k, (conv_up, conv, rgb_layer) in enumerate(blocks):
        styles = latent[:, 2 * k + 1: 2 * k + 4].unbind(1)
        x = _layout(out.to(_compute_dtype(out)))
        if _tiles(x, conv_up, autograd):
            return _tiled_tail(blocks[k:], x, latent[:, 2 * k + 1:], noise[2 * k + 1:], skip)
        out = styled_conv(conv_up, x, styles[0], noise[2 * k + 1])
        out = styled_conv(conv, out, styles[1], noise[2 * k + 2])
        skip = to_rgb(rgb_layer, out, styles[2], skip)
    return skip


def _tiled_tail(blocks: list, x: torch.Tensor, latent: torch.Tensor, noise: list, skip: torch.Tensor) -> torch.Tensor:
    """The last ``blocks`` in bands, one image at a time (noise drawn first, in the reference's order)."""
    n, _, h, w = x.shape
    noise = list(noise)
    for j in range(len(noise)):
        if noise[j] is None:
            side = 2 ** (j // 2 + 1)
            noise[j] = x.new_empty(n, 1, h * side, w * side).normal_()
    images = []
    for i in range(n):
        out, rgb = x[i: i + 1], skip[i: i + 1]
        for k, (conv_up, conv, rgb_layer) in enumerate(blocks):
            styles = latent[i: i + 1, 2 * k: 2 * k + 3].unbind(1)
            maps = [m[i: i + 1] if m.shape[0] > 1 else m for m in noise[2 * k: 2 * k + 2]]
            out, rgb = _tiled_block(conv_up, conv, rgb_layer, out, styles, maps, rgb, keep_output=k + 1 < len(blocks))
        images.append(rgb)
    return torch.cat(images) if n > 1 else images[0]
