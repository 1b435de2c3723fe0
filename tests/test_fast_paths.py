"""impl='fast' against the reference path (the oracle): ops, layers at real sizes, whole networks.

Tolerances by dtype: float64 differences come only from summation order (~1e-12 relative
and below); float32 ~1e-5 relative; bf16 under autocast is compared with the float32
reference loosely (8-bit mantissa). Biases and noise strengths are drawn non-zero so that
no folded term can hide.
"""

from __future__ import annotations

import copy

import pytest
import torch
from tiny import tiny_net

from restyle_lab.facts.configs import TINY, GeneratorConfig
from restyle_lab.facts.errors import UsageError
from restyle_lab.inversion import EncoderInverter, ReStyleInverter, loops
from restyle_lab.models import Generator, StyleEncoder, get_impl, set_impl, stylegan2_fast
from restyle_lab.models.backbones import BasicBlock, BottleneckIRSE
from restyle_lab.models.encoders import GradualStyleBlock
from restyle_lab.models.encoders_fast import style_heads
from restyle_lab.models.ops import depthwise_conv2d, upfirdn2d
from restyle_lab.models.precision import autocast, dtype_name, resolve_dtype
from restyle_lab.models.stylegan2 import StyledConv, ToRGB, Upsample
from restyle_lab.models.stylegan2_fast import style_scales, upsample_skip

TOL = {torch.float64: dict(rtol=1e-9, atol=1e-10), torch.float32: dict(rtol=1e-4, atol=1e-4)}


def _float64_as_nhwc(monkeypatch):
    """float64 takes the NHWC route float32 takes on a CPU (it keeps NCHW otherwise), to be compared exactly."""
    monkeypatch.setattr(stylegan2_fast, "NCHW_DTYPES", ())


@pytest.fixture(params=["own layout", "float64 as NHWC"])
def both_layouts(request, monkeypatch):
    """A generator comparison twice: float64 in its own NCHW route, and in float32's NHWC route."""
    if request.param == "float64 as NHWC":
        _float64_as_nhwc(monkeypatch)
    return request.param


def test_float64_depthwise_convolution_is_the_grouped_one():
    gen = torch.Generator().manual_seed(21)
    x = torch.randn(2, 5, 11, 9, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, 1, 4, 3, generator=gen, dtype=torch.float64)
    b = torch.randn(5, generator=gen, dtype=torch.float64)
    for bias, padding in ((None, (0, 0)), (b, (2, 1)), (b, (3, 0))):
        want = torch.nn.functional.conv2d(x, w, bias, padding=padding, groups=5)
        got = depthwise_conv2d(x, w, bias, padding)
        _close(want, got, torch.float64, f"padding {padding}")
        g = torch.randn(want.shape, generator=gen, dtype=torch.float64)
        _close(torch.autograd.grad(want, x, g)[0], torch.autograd.grad(got, x, g)[0], torch.float64, "gradient")
    assert depthwise_conv2d(x.float(), w.float()).dtype == torch.float32


def _randomize(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-zero biases, noise strengths and BatchNorm statistics (their defaults are 0 / 1)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias") or name.endswith("noise.weight"):
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
                m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=gen))
    return module


def _pair(module, dtype):
    ref = _randomize(module).to(dtype).eval()
    return ref, set_impl(copy.deepcopy(ref), "fast")


def _close(a, b, dtype, what=""):
    assert a.shape == b.shape, (a.shape, b.shape)
    tol = TOL[dtype]
    err = (a - b).abs().max().item()
    assert torch.allclose(a, b, **tol), f"{what}: max abs diff {err:.3g} (max |ref| {a.abs().max().item():.3g})"


# ------------------------------------------------------------------ the impl switch

def test_impl_is_validated_and_switches_a_whole_tree():
    with pytest.raises(UsageError, match=r"impl must be one of \('reference', 'fast'\). Got: 'cuda'"):
        Generator(TINY["tiny-generator"], impl="cuda")
    with pytest.raises(UsageError, match="impl must be one of"):
        upfirdn2d(torch.zeros(1, 1, 4, 4), torch.ones(2, 2), impl="native")
    net = tiny_net("restyle_psp")
    keys = list(net.state_dict())
    assert get_impl(net) == "reference"
    assert set_impl(net, "fast") is net and get_impl(net) == "fast"
    assert list(net.state_dict()) == keys, "impl is not part of the state dict"
    set_impl(net.encoder, "reference")
    assert get_impl(net) == "mixed" and get_impl(net.decoder) == "fast"
    assert get_impl(Generator(TINY["tiny-generator"], impl="fast")) == "fast"
    assert get_impl(StyleEncoder(TINY["tiny-psp"], impl="fast")) == "fast"


# ------------------------------------------------------------------ ops

@pytest.mark.parametrize("up,down,pad", [(2, 1, (2, 1)), (1, 1, (1, 1)), (1, 1, (2, 1)), (1, 2, (1, 1)),
                                         (2, 1, (1, 1))])
def test_upfirdn2d_fast(up, down, pad):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 9, 9, generator=gen, dtype=torch.float64)
    kernel = torch.rand(4, 4, generator=gen, dtype=torch.float64)  # not symmetric: flips must be right
    _close(upfirdn2d(x, kernel, up, down, pad), upfirdn2d(x, kernel, up, down, pad, impl="fast"), torch.float64)


# ------------------------------------------------------------------ generator layers at real sizes

@pytest.mark.usefixtures("both_layouts")
@pytest.mark.parametrize("dtype,size", [(torch.float32, 64), (torch.float64, 16)])
@pytest.mark.parametrize("n", [1, 2])
def test_styled_conv_512_channels(dtype, size, n):
    """One image: per-sample folded weights; two: grouped at 64 px, a shared weight at 16 px."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    for upsample, in_size in [(False, size), (True, size // 2)]:
        ref, fast = _pair(StyledConv(512, 512, 3, 512, upsample=upsample), dtype)
        x = torch.randn(n, 512, in_size, in_size, generator=gen).to(dtype)
        style = torch.randn(n, 512, generator=gen).to(dtype)
        noise = torch.randn(n, 1, size, size, generator=gen).to(dtype)
        with torch.no_grad():
            _close(ref(x, style, noise), fast(x, style, noise), dtype, f"upsample={upsample}")


@pytest.mark.usefixtures("both_layouts")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_to_rgb_and_modulated_conv_alone(dtype):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(2)
    ref, fast = _pair(ToRGB(128, 512), dtype)
    x = torch.randn(2, 128, 128, 128, generator=gen).to(dtype)
    skip = torch.randn(2, 3, 64, 64, generator=gen).to(dtype)
    style = torch.randn(2, 512, generator=gen).to(dtype)
    with torch.no_grad():
        _close(ref(x, style, skip), fast(x, style, skip), dtype, "to_rgb")
        _close(ref.conv(x, style), fast.conv(x, style), dtype, "ModulatedConv2d")


@pytest.mark.usefixtures("both_layouts")
def test_full_256px_generator_config_f_widths():
    torch.manual_seed(0)
    ref, fast = _pair(Generator(GeneratorConfig(256)), torch.float32)
    w = torch.randn(1, ref.n_latent, 512, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a, _ = ref([w], input_is_latent=True, randomize_noise=False)
        b, _ = fast([w], input_is_latent=True, randomize_noise=False)
    _close(a, b, torch.float32, "256px generator")


# ------------------------------------------------------------------ tiny generators, batches, noise, gradients

@pytest.mark.usefixtures("both_layouts")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_tiny_generator_batches_and_random_noise(dtype):
    torch.manual_seed(0)
    ref, fast = _pair(Generator(TINY["tiny-generator"]), dtype)
    z = torch.randn(5, 32, generator=torch.Generator().manual_seed(4)).to(dtype)
    with torch.no_grad():
        for n in (1, 5):  # one image: per-sample weights throughout; five: shared weights at low resolution
            a, la = ref([z[:n]], randomize_noise=False, return_latents=True)
            b, lb = fast([z[:n]], randomize_noise=False, return_latents=True)
            _close(a, b, dtype, f"batch {n}")
            assert torch.equal(la, lb)
        torch.manual_seed(7)  # fresh noise: same draws in the same order on both paths
        a, _ = ref([z])
        torch.manual_seed(7)
        b, _ = fast([z])
        _close(a, b, dtype, "randomize_noise")


@pytest.mark.usefixtures("both_layouts")
def test_generator_gradients_match():
    """The projector differentiates through the generator: latent and noise gradients agree."""
    torch.manual_seed(0)
    ref, fast = _pair(Generator(TINY["tiny-generator"]), torch.float64)
    ref.requires_grad_(False)
    fast.requires_grad_(False)
    gen = torch.Generator().manual_seed(5)
    w = torch.randn(3, ref.n_latent, 32, generator=gen, dtype=torch.float64)
    noise = [torch.randn(3, *b.shape[1:], generator=gen, dtype=torch.float64) for b in ref.fixed_noise()]
    grads = []
    for g in (ref, fast):
        wi = w.clone().requires_grad_(True)
        ni = [b.clone().requires_grad_(True) for b in noise]
        img, _ = g([wi], input_is_latent=True, noise=ni)
        img.pow(2).mean().backward()
        grads.append([wi.grad] + [b.grad for b in ni])
    for a, b in zip(*grads):
        _close(a, b, torch.float64, "gradient")


@pytest.mark.parametrize("rows", [1, 3, 7, 64])
def test_banded_blocks_match_reference(monkeypatch, rows):
    """CPU inference in bands of rows (forced from the first block, odd band heights): the reference's sums."""
    torch.manual_seed(0)
    ref, fast = _pair(Generator(TINY["tiny-generator"]), torch.float64)
    monkeypatch.setattr(stylegan2_fast, "TILE_MIN_BYTES", 0)
    _float64_as_nhwc(monkeypatch)  # bands are an NHWC route
    monkeypatch.setattr(stylegan2_fast, "BAND_BYTES", 1)
    monkeypatch.setattr(stylegan2_fast, "MIN_BAND_ROWS", rows)
    calls = []
    banded = stylegan2_fast._tiled_block
    monkeypatch.setattr(stylegan2_fast, "_tiled_block", lambda *a, **k: calls.append(a[3].shape) or banded(*a, **k))
    gen = torch.Generator().manual_seed(13)
    z = torch.randn(3, 32, generator=gen, dtype=torch.float64)
    own = [torch.randn(3, *b.shape[1:], generator=gen, dtype=torch.float64) for b in ref.fixed_noise()]
    with torch.no_grad():
        for kwargs in (dict(randomize_noise=False), dict(noise=own)):
            a, _ = ref([z], **kwargs)
            b, _ = fast([z], **kwargs)
            _close(a, b, torch.float64, f"{kwargs}")
        torch.manual_seed(7)  # fresh noise: the same draws in the same order
        a, _ = ref([z])
        torch.manual_seed(7)
        b, _ = fast([z])
        _close(a, b, torch.float64, "randomize_noise")
    assert len(calls) == 3 * 4 * 3 and all(shape[0] == 1 for shape in calls), "every block, image by image"


def test_bilinear_skip_upsampling_is_upfirdn2d():
    up = Upsample((1, 3, 3, 1)).double()
    skip = torch.randn(2, 3, 9, 7, generator=torch.Generator().manual_seed(14), dtype=torch.float64)
    _close(upfirdn2d(skip, up.kernel, up=2, pad=up.pad), upsample_skip(up, skip), torch.float64, "bilinear")
    other = Upsample((1, 2, 1)).double()  # another kernel takes the transposed convolution
    _close(upfirdn2d(skip, other.kernel, up=2, pad=other.pad), upsample_skip(other, skip), torch.float64, "(1, 2, 1)")


@pytest.mark.usefixtures("both_layouts")
def test_kept_weight_statistics_follow_in_place_changes():
    torch.manual_seed(0)
    ref, fast = _pair(Generator(TINY["tiny-generator"]), torch.float64)
    w = torch.randn(2, ref.n_latent, 32, generator=torch.Generator().manual_seed(15), dtype=torch.float64)
    with torch.no_grad():
        fast([w], input_is_latent=True, randomize_noise=False)  # fills the kept statistics
        for g in (ref, fast):
            for conv in g.convs:
                conv.conv.weight.mul_(1.5).add_(0.1)
        a, _ = ref([w], input_is_latent=True, randomize_noise=False)
        b, _ = fast([w], input_is_latent=True, randomize_noise=False)
    _close(a, b, torch.float64, "after an in-place weight change")


@pytest.mark.usefixtures("both_layouts")
def test_generator_weight_gradients_match_with_shared_noise():
    """Training-like: the generator's own parameters need gradients and one noise map serves the batch."""
    torch.manual_seed(0)
    ref, fast = _pair(Generator(TINY["tiny-generator"]), torch.float64)
    w = torch.randn(2, ref.n_latent, 32, generator=torch.Generator().manual_seed(16), dtype=torch.float64)
    grads = []
    for g in (ref, fast):
        img, _ = g([w], input_is_latent=True, randomize_noise=False)
        img.pow(2).mean().backward()
        grads.append({name: p.grad for name, p in g.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and any("noise.weight" in k for k in grads[0])
    for name in grads[0]:
        _close(grads[0][name], grads[1][name], torch.float64, name)


@pytest.mark.usefixtures("both_layouts")
def test_activation_node_gradcheck():
    """StyledConv's activation as one autograd node: every input's gradient, noise per image or shared."""
    gen = torch.Generator().manual_seed(17)
    for noise_batch, layout in [(2, torch.contiguous_format), (1, torch.channels_last)]:
        y = torch.randn(2, 3, 4, 5, generator=gen, dtype=torch.float64).contiguous(memory_format=layout)
        args = (y.requires_grad_(True), torch.rand(2, 3, generator=gen, dtype=torch.float64).requires_grad_(True),
                torch.randn(3, generator=gen, dtype=torch.float64).requires_grad_(True),
                torch.randn(noise_batch, 1, 4, 5, generator=gen, dtype=torch.float64).requires_grad_(True),
                torch.rand(1, generator=gen, dtype=torch.float64).requires_grad_(True))
        assert torch.autograd.gradcheck(stylegan2_fast._Activation.apply, args)


def test_style_scales_are_float32_under_autocast():
    conv = StyledConv(16, 16, 3, 8).conv
    with autocast("cpu", "bf16"):
        s, out_scale = style_scales(conv, torch.randn(2, 8))
    assert s.dtype == out_scale.dtype == torch.float32


# ------------------------------------------------------------------ encoders

@pytest.mark.parametrize("preset", [k for k in TINY if k != "tiny-generator"])
def test_tiny_encoders(preset):
    torch.manual_seed(0)
    cfg = TINY[preset]
    ref, fast = _pair(StyleEncoder(cfg), torch.float64)
    x = torch.randn(2, cfg.input_nc, cfg.input_size, cfg.input_size, generator=torch.Generator().manual_seed(6),
                    dtype=torch.float64)
    stages = [None, 2] if cfg.progressive else [None]
    with torch.no_grad():
        for stage in stages:
            ref.progressive_stage = fast.progressive_stage = stage
            _close(ref(x), fast(x), torch.float64, f"stage {stage}")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_encoder_units_and_style_heads_at_real_sizes(dtype):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(8)
    cases = [(BottleneckIRSE(256, 256, 1, 16), (2, 256, 32, 32)), (BottleneckIRSE(128, 256, 2, 16), (2, 128, 64, 64)),
             (BottleneckIRSE(64, 64, 2, 16), (1, 64, 64, 64)), (BasicBlock(128, 256, 2), (2, 128, 32, 32))]
    with torch.no_grad():
        for unit, shape in cases:
            ref, fast = _pair(unit, dtype)
            x = torch.randn(*shape, generator=gen).to(dtype)
            _close(ref(x), fast(x), dtype, type(unit).__name__)
        ref, fast = _pair(torch.nn.ModuleList([GradualStyleBlock(512, 512, 16) for _ in range(3)]), dtype)
        x = torch.randn(2, 512, 16, 16, generator=gen).to(dtype)
        for head, code in zip(ref, style_heads(list(fast), x)):  # three heads sharing one im2col
            _close(head(x), code, dtype, "style head")


def test_fast_encoder_takes_the_reference_path_in_training_mode():
    torch.manual_seed(0)
    ref, fast = _pair(StyleEncoder(TINY["tiny-psp"]), torch.float32)
    ref.train()
    fast.train()
    x = torch.randn(2, 3, 64, 64)
    assert torch.equal(ref(x), fast(x))


# ------------------------------------------------------------------ whole networks, precision

@pytest.mark.usefixtures("both_layouts")
def test_restyle_loop_fast_matches_reference():
    net = _randomize(tiny_net("restyle_psp")).double()
    fast = set_impl(copy.deepcopy(net), "fast")
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(9), dtype=torch.float64) * 2 - 1
    for a, b in zip(loops.run(net, x, 2), loops.run(fast, x, 2)):
        _close(a.latent, b.latent, torch.float64, "latent")
        _close(a.image, b.image, torch.float64, "image")


def test_dtype_names():
    assert resolve_dtype("bf16") is torch.bfloat16 and resolve_dtype("half") is torch.float16
    assert resolve_dtype(torch.float32) is torch.float32 and dtype_name("bfloat16") == "bf16"
    with pytest.raises(ValueError, match="dtype must be one of"):
        resolve_dtype("int8")


def test_inverters_in_bf16_return_float32_traces_close_to_float32():
    net = _randomize(tiny_net("restyle_psp"))
    set_impl(net, "fast")
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(10)) * 2 - 1
    full = ReStyleInverter(net, 2).invert(x)
    inverter = ReStyleInverter(net, 2, dtype="bf16")
    assert inverter.compute_dtype is torch.bfloat16 and inverter.dtype is torch.float32
    low = inverter.invert(x)
    for a, b in zip(full.steps, low.steps):
        assert b.latent.dtype == b.image.dtype == torch.float32
        rel = (a.image - b.image).norm() / a.image.norm()
        assert rel < 0.05, f"bf16 image differs by {rel:.3g} (relative)"
    with pytest.raises(ValueError, match="load the network in float64"):
        ReStyleInverter(net, 2, dtype="float64")
    psp = tiny_net("psp")
    assert EncoderInverter(psp, 1, dtype="bf16").invert(x).steps[0].latent.dtype == torch.float32
