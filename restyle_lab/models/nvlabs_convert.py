"""An NVlabs stylegan2-ada-pytorch generator (``G_ema`` of a snapshot) in rosinality's layout.

Facts the mapping rests on (stylegan2-ada-pytorch's ``training/networks.py``):

* mapping: ``normalize_2nd_moment(z)`` then ``fc0..fc{n-1}`` (weight [out, in] times
  lr_multiplier / sqrt(in), bias times lr_multiplier, leaky ReLU with gain sqrt 2): rosinality's
  ``style.1..n`` with ``lr_mlp`` = lr_multiplier; ``w_avg`` becomes ``latent_avg``;
* synthesis (architecture ``skip``): block ``b4`` holds ``const``, ``conv1`` and ``torgb``; each
  later block ``b<res>`` holds ``conv0`` (upsampling), ``conv1`` and ``torgb``. Layer by layer:
  ``affine`` -> ``conv.modulation``, ``weight`` [out, in, k, k] -> ``conv.weight`` [1, ...],
  ``noise_strength`` -> ``noise.weight``, ``bias`` -> ``activate.bias`` (``bias`` [1, 3, 1, 1] for
  torgb), ``noise_const`` [r, r] -> ``noises.noise_<j>`` [1, 1, r, r];
* channels: ``min(channel_base // res, channel_max)``, rosinality's table with multiplier 1;
* ``conv_clamp`` clamps each layer's activation (and torgb's output) to +-conv_clamp: carried
  into the config; fp16 blocks only change the precision on GPUs and are recorded, not used.

NVlabs scales the demodulated convolutions' weight by 1 / sqrt(in * k * k) only inside the
demodulation, rosinality before it: the results differ by the 1e-8 under the square root.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import torch

from ..facts.configs import GeneratorConfig
from ..facts.errors import CheckpointError
from ..records.nvlabs_pickle import PersistentRecord
from .ops import make_kernel

BLUR_TAPS = (1, 3, 3, 1)
# stylegan2-ada-pytorch's SynthesisNetwork / MappingNetwork defaults, used where a record lacks the argument
NVLABS_DEFAULTS = {"channel_base": 32768, "channel_max": 512, "num_fp16_res": 0, "conv_clamp": None,
                   "architecture": "skip", "lr_multiplier": 0.01}
EXPECTED_CLASSES = {"generator": "Generator", "mapping": "MappingNetwork", "synthesis": "SynthesisNetwork",
                    "block": "SynthesisBlock", "layer": "SynthesisLayer", "torgb": "ToRGBLayer",
                    "fc": "FullyConnectedLayer"}
# the sizes a snapshot may claim: every shape is checked against them before anything is allocated, and a
# claim past these (StyleGAN2 uses z/w 512, 512 channels, 8 mapping layers, 1024 px) is refused outright
MAX_WIDTH = 4096  # z / w dims and channels
MAX_RESOLUTION = 4096
MAX_MAPPING_LAYERS = 32
_MISSING = object()


def _expect(record, role: str, where: str, source) -> PersistentRecord:
    want = EXPECTED_CLASSES[role]
    if not isinstance(record, PersistentRecord):
        raise CheckpointError(f"{source}: {where} is missing (expected an NVlabs {want})")
    if record.class_name != want:
        raise CheckpointError(f"{source}: {where} is a {record.class_name}, not stylegan2-ada-pytorch's {want} "
                              "(StyleGAN3 and other architectures are not supported)")
    return record


def _arg(record: PersistentRecord, name: str, default=_MISSING):
    for place in (record.init_kwargs, record.attributes):
        if name in place:
            return place[name]
    return NVLABS_DEFAULTS.get(name, _MISSING) if default is _MISSING else default


def _int(record: PersistentRecord, name: str, where: str, source, low: int, high: int, default=_MISSING) -> int:
    """A whole-number size of ``record`` within [low, high] (else CheckpointError naming it)."""
    value = _arg(record, name, default)
    if value is _MISSING:
        raise CheckpointError(f"{source}: {where}.{name} is missing, so the snapshot's sizes are unknown (a damaged "
                              "or edited file?); nothing was converted")
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise CheckpointError(f"{source}: {where}.{name} is {value!r} ({type(value).__name__}), not a whole number")
    if not low <= int(value) <= high:
        raise CheckpointError(f"{source}: {where}.{name} is {int(value)}; restyle-lab converts {low} to {high} "
                              "(StyleGAN2's are far below that bound)")
    return int(value)


def _tensor(place: dict, name: str, where: str, source, shape: tuple, sizes: str) -> torch.Tensor:
    """``place[name]``: a floating-point tensor of ``shape`` (``()`` also takes one value of shape (1,))."""
    value = place.get(name)
    if value is None:
        raise CheckpointError(f"{source}: {where}.{name} is missing (a damaged or incomplete snapshot); nothing was "
                              "converted")
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        what = f"a {value.dtype} tensor" if isinstance(value, torch.Tensor) else f"a {type(value).__name__}"
        raise CheckpointError(f"{source}: {where}.{name} is {what}, not a floating-point tensor")
    if tuple(value.shape) != tuple(shape) and not (shape == () and tuple(value.shape) == (1,)):
        raise CheckpointError(f"{source}: {where}.{name} has shape {list(value.shape)}; the sizes the snapshot "
                              f"claims ({sizes}) give {list(shape)}: the snapshot is inconsistent or damaged")
    return value


def _fc(sd, prefix: str, fc: PersistentRecord, out_features: int, in_features: int, where: str, source,
        sizes: str):
    sd[f"{prefix}.weight"] = _tensor(fc.parameters, "weight", where, source, (out_features, in_features), sizes)
    sd[f"{prefix}.bias"] = _tensor(fc.parameters, "bias", where, source, (out_features,), sizes)


def _check_filter(record: PersistentRecord, where: str, source) -> None:
    filt = record.buffers.get("resample_filter")
    if filt is None:
        return
    if not isinstance(filt, torch.Tensor) or tuple(filt.shape) != (len(BLUR_TAPS),) * 2 \
            or not torch.allclose(filt.float(), make_kernel(BLUR_TAPS), atol=1e-7):
        raise CheckpointError(f"{source}: {where}.resample_filter is not the [1, 3, 3, 1] filter; "
                              "rosinality's layout has no other")


def _layer(sd, prefix: str, layer: PersistentRecord, noise_key: str, notes: list, where: str, source,
           c_in: int, c_out: int, res: int, w_dim: int, sizes: str) -> None:
    _check_filter(layer, where, source)
    sd[f"{prefix}.conv.weight"] = _tensor(layer.parameters, "weight", where, source, (c_out, c_in, 3, 3), sizes)[None]
    _fc(sd, f"{prefix}.conv.modulation", _expect(layer.modules.get("affine"), "fc", f"{where}.affine", source),
        c_in, w_dim, f"{where}.affine", source, sizes)
    sd[f"{prefix}.activate.bias"] = _tensor(layer.parameters, "bias", where, source, (c_out,), sizes)
    if "noise_strength" in layer.parameters:
        sd[f"{prefix}.noise.weight"] = _tensor(layer.parameters, "noise_strength", where, source, (), sizes).reshape(1)
        sd[noise_key] = _tensor(layer.buffers, "noise_const", where, source, (res, res), sizes).reshape(1, 1, res, res)
    else:  # use_noise=False: no noise at all, which a zero strength reproduces
        sd[f"{prefix}.noise.weight"] = torch.zeros(1)
        sd[noise_key] = torch.zeros(1, 1, res, res)
        notes.append(f"{where} has no noise input: noise strength set to 0")


def _torgb(sd, prefix: str, torgb: PersistentRecord, where: str, source, c_in: int, w_dim: int, sizes: str) -> None:
    sd[f"{prefix}.conv.weight"] = _tensor(torgb.parameters, "weight", where, source, (3, c_in, 1, 1), sizes)[None]
    _fc(sd, f"{prefix}.conv.modulation", _expect(torgb.modules.get("affine"), "fc", f"{where}.affine", source),
        c_in, w_dim, f"{where}.affine", source, sizes)
    sd[f"{prefix}.bias"] = _tensor(torgb.parameters, "bias", where, source, (3,), sizes).reshape(1, -1, 1, 1)


def _config(key: str, g: PersistentRecord, mapping: PersistentRecord, synthesis: PersistentRecord, source
            ) -> tuple[GeneratorConfig, dict]:
    """The generator the snapshot claims, every size checked (type, bound, agreement) before any tensor is read."""
    dims = {k: _int(g, k, key, source, 0 if k == "c_dim" else 1, MAX_RESOLUTION if k == "img_resolution" else
                    MAX_WIDTH) for k in ("z_dim", "w_dim", "c_dim", "img_resolution", "img_channels")}
    z_dim, w_dim, c_dim, resolution, channels = dims.values()
    if c_dim:
        raise CheckpointError(f"{source}: a conditional generator (c_dim={c_dim}); rosinality's layout has no class "
                              "embedding")
    if z_dim != w_dim:
        raise CheckpointError(f"{source}: z_dim {z_dim} != w_dim {w_dim}; rosinality's mapping keeps one width")
    if channels != 3:
        raise CheckpointError(f"{source}: {channels} image channels; rosinality's layout draws RGB (3)")
    if resolution < 4 or resolution & (resolution - 1):
        raise CheckpointError(f"{source}: {key}.img_resolution is {resolution}, not a power of two from 4")
    n_mlp = _int(mapping, "num_layers", f"{key}.mapping", source, 1, MAX_MAPPING_LAYERS)
    base = _int(synthesis, "channel_base", f"{key}.synthesis", source, 1, 1 << 30)
    top = _int(synthesis, "channel_max", f"{key}.synthesis", source, 1, MAX_WIDTH)
    conv_clamp = _arg(synthesis, "conv_clamp")
    if conv_clamp is not None and (isinstance(conv_clamp, bool) or not isinstance(conv_clamp, (int, float, np.number))
                                   or not math.isfinite(conv_clamp) or conv_clamp <= 0):
        raise CheckpointError(f"{source}: {key}.synthesis.conv_clamp is {conv_clamp!r}; expected a positive number "
                              "or None")
    lr_mlp = None
    for i in range(n_mlp):
        lr = _arg(_expect(mapping.modules.get(f"fc{i}"), "fc", f"{key}.mapping.fc{i}", source), "lr_multiplier")
        if isinstance(lr, bool) or not isinstance(lr, (int, float, np.number)) or not math.isfinite(lr) or lr <= 0:
            raise CheckpointError(f"{source}: {key}.mapping.fc{i}.lr_multiplier is {lr!r}; expected a positive number")
        if lr_mlp not in (None, lr):
            raise CheckpointError(f"{source}: mapping layers with different lr_multiplier ({lr_mlp}, {lr})")
        lr_mlp = lr
    config = GeneratorConfig(size=resolution, style_dim=w_dim, n_mlp=n_mlp, channel_multiplier=1,
                             channel_base=base, channel_max=top, lr_mlp=float(lr_mlp),
                             conv_clamp=None if conv_clamp is None else float(conv_clamp))
    if config.channels(resolution) < 1:
        raise CheckpointError(f"{source}: channel_base {base} leaves no channels at {resolution} px")
    return config, dims


def generator_from_snapshot(snapshot: dict, source, key: str = "G_ema"):
    """(rosinality state dict, GeneratorConfig, w_avg [w_dim], info dict) of ``snapshot[key]``.

    The state dict lacks only the FIR kernel buffers, which follow from the config.
    ``info``: z_dim, w_dim, c_dim, mapping layers, channel_base / channel_max, conv_clamp,
    num_fp16_res, the block resolutions, notes. Raises ``CheckpointError`` for what the
    layout cannot hold (conditional or z_dim != w_dim generators, non-``skip`` synthesis, StyleGAN3),
    and for a missing or mistyped size or tensor, a claimed size past the bounds above or a tensor whose
    shape disagrees with the claimed sizes: every one is checked before anything is allocated.
    """
    if key not in snapshot:
        raise CheckpointError(f"{source}: the snapshot has no {key!r} (keys: {', '.join(map(str, snapshot))})")
    g = _expect(snapshot[key], "generator", key, source)
    mapping = _expect(g.modules.get("mapping"), "mapping", f"{key}.mapping", source)
    synthesis = _expect(g.modules.get("synthesis"), "synthesis", f"{key}.synthesis", source)
    config, dims = _config(key, g, mapping, synthesis, source)
    w_dim, resolution = config.style_dim, config.size
    sizes = f"w_dim {w_dim}, {resolution} px, channel_base {config.channel_base}, channel_max {config.channel_max}"
    notes = []
    sd = OrderedDict()
    for i in range(config.n_mlp):
        _fc(sd, f"style.{i + 1}", mapping.modules[f"fc{i}"], w_dim, w_dim, f"{key}.mapping.fc{i}", source, sizes)
    w_avg = _tensor(mapping.buffers, "w_avg", f"{key}.mapping", source, (w_dim,), sizes)
    if not torch.isfinite(w_avg).all():
        raise CheckpointError(f"{source}: {key}.mapping.w_avg holds non-finite values (NaN or inf): a damaged file "
                              "or a diverged training run")

    blocks = synthesis.attributes.get("block_resolutions", [])
    if not isinstance(blocks, (list, tuple)) or list(blocks) != [2 ** k for k in range(2, resolution.bit_length())]:
        raise CheckpointError(f"{source}: synthesis blocks {blocks} do not run from 4 to {resolution} px")
    blocks = [int(r) for r in blocks]
    ch = config.channels
    b4 = _expect(synthesis.modules.get("b4"), "block", f"{key}.synthesis.b4", source)
    sd["input.input"] = _tensor(b4.parameters, "const", "b4", source, (ch(4), 4, 4), sizes)[None]
    _layer(sd, "conv1", _expect(b4.modules.get("conv1"), "layer", "b4.conv1", source), "noises.noise_0", notes,
           "b4.conv1", source, ch(4), ch(4), 4, w_dim, sizes)
    _torgb(sd, "to_rgb1", _expect(b4.modules.get("torgb"), "torgb", "b4.torgb", source), "b4.torgb", source, ch(4),
           w_dim, sizes)
    for i, res in enumerate(blocks[1:]):
        where = f"b{res}"
        block = _expect(synthesis.modules.get(where), "block", f"{key}.synthesis.{where}", source)
        arch = block.attributes.get("architecture", _arg(synthesis, "architecture"))
        if arch != "skip":
            raise CheckpointError(f"{source}: synthesis architecture {arch!r} in {where}; only 'skip' (the "
                                  "stylegan2-ada-pytorch default, rosinality's layout) is supported")
        _check_filter(block, where, source)
        for j, name in enumerate(("conv0", "conv1")):
            _layer(sd, f"convs.{2 * i + j}", _expect(block.modules.get(name), "layer", f"{where}.{name}", source),
                   f"noises.noise_{2 * i + j + 1}", notes, f"{where}.{name}", source,
                   ch(res // 2) if name == "conv0" else ch(res), ch(res), res, w_dim, sizes)
        _torgb(sd, f"to_rgbs.{i}", _expect(block.modules.get("torgb"), "torgb", f"{where}.torgb", source),
               f"{where}.torgb", source, ch(res), w_dim, sizes)

    conv_clamp = _arg(synthesis, "conv_clamp")
    info = {"z_dim": dims["z_dim"], "w_dim": w_dim, "c_dim": dims["c_dim"], "mapping_layers": config.n_mlp,
            "channel_base": config.channel_base, "channel_max": config.channel_max, "conv_clamp": conv_clamp,
            "num_fp16_res": _int(synthesis, "num_fp16_res", f"{key}.synthesis", source, 0, 64),
            "block_resolutions": blocks,
            "fp16_note": "fp16 blocks run in float16 only on GPUs in NVlabs' code; converted weights run in the "
                         "dtype you choose", "notes": notes}
    return sd, config, w_avg.float().clone(), info
