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

from collections import OrderedDict

import torch

from .configs import GeneratorConfig
from .errors import CheckpointError
from .models.ops import make_kernel
from .nvlabs_pickle import PersistentRecord

BLUR_TAPS = (1, 3, 3, 1)
# stylegan2-ada-pytorch's SynthesisNetwork / MappingNetwork defaults, used where a record lacks the argument
NVLABS_DEFAULTS = {"channel_base": 32768, "channel_max": 512, "num_fp16_res": 0, "conv_clamp": None,
                   "architecture": "skip", "lr_multiplier": 0.01}
EXPECTED_CLASSES = {"generator": "Generator", "mapping": "MappingNetwork", "synthesis": "SynthesisNetwork",
                    "block": "SynthesisBlock", "layer": "SynthesisLayer", "torgb": "ToRGBLayer",
                    "fc": "FullyConnectedLayer"}


def _expect(record, role: str, where: str, source) -> PersistentRecord:
    want = EXPECTED_CLASSES[role]
    if not isinstance(record, PersistentRecord):
        raise CheckpointError(f"{source}: {where} is missing (expected an NVlabs {want})")
    if record.class_name != want:
        raise CheckpointError(f"{source}: {where} is a {record.class_name}, not stylegan2-ada-pytorch's {want} "
                              "(StyleGAN3 and other architectures are not supported)")
    return record


def _arg(record: PersistentRecord, name: str):
    for place in (record.init_kwargs, record.attributes):
        if name in place:
            return place[name]
    return NVLABS_DEFAULTS[name]


def _fc(sd, prefix: str, fc: PersistentRecord):
    sd[f"{prefix}.weight"] = fc.parameters["weight"]
    sd[f"{prefix}.bias"] = fc.parameters["bias"]


def _check_filter(record: PersistentRecord, where: str, source) -> None:
    filt = record.buffers.get("resample_filter")
    if filt is not None and not torch.allclose(filt.float(), make_kernel(BLUR_TAPS), atol=1e-7):
        raise CheckpointError(f"{source}: {where}.resample_filter is not the [1, 3, 3, 1] filter; "
                              "rosinality's layout has no other")


def _layer(sd, prefix: str, layer: PersistentRecord, noise_key: str, notes: list, where: str, source) -> None:
    _check_filter(layer, where, source)
    sd[f"{prefix}.conv.weight"] = layer.parameters["weight"][None]
    _fc(sd, f"{prefix}.conv.modulation", _expect(layer.modules.get("affine"), "fc", f"{where}.affine", source))
    sd[f"{prefix}.activate.bias"] = layer.parameters["bias"]
    res = int(layer.attributes.get("resolution", 0))
    if "noise_strength" in layer.parameters:
        sd[f"{prefix}.noise.weight"] = layer.parameters["noise_strength"].reshape(1)
        sd[noise_key] = layer.buffers["noise_const"].reshape(1, 1, *layer.buffers["noise_const"].shape[-2:])
    else:  # use_noise=False: no noise at all, which a zero strength reproduces
        sd[f"{prefix}.noise.weight"] = torch.zeros(1)
        sd[noise_key] = torch.zeros(1, 1, res, res)
        notes.append(f"{where} has no noise input: noise strength set to 0")


def _torgb(sd, prefix: str, torgb: PersistentRecord, where: str, source) -> None:
    sd[f"{prefix}.conv.weight"] = torgb.parameters["weight"][None]
    _fc(sd, f"{prefix}.conv.modulation", _expect(torgb.modules.get("affine"), "fc", f"{where}.affine", source))
    sd[f"{prefix}.bias"] = torgb.parameters["bias"].reshape(1, -1, 1, 1)


def generator_from_snapshot(snapshot: dict, source, key: str = "G_ema"):
    """(rosinality state dict, GeneratorConfig, w_avg [w_dim], info dict) of ``snapshot[key]``.

    The state dict lacks only the FIR kernel buffers, which follow from the config.
    ``info``: z_dim, w_dim, c_dim, mapping layers, channel_base / channel_max, conv_clamp,
    num_fp16_res, the block resolutions, notes. Raises ``CheckpointError`` for what the
    layout cannot hold (conditional or z_dim != w_dim generators, non-``skip`` synthesis, StyleGAN3).
    """
    if key not in snapshot:
        raise CheckpointError(f"{source}: the snapshot has no {key!r} (keys: {', '.join(map(str, snapshot))})")
    g = _expect(snapshot[key], "generator", key, source)
    mapping = _expect(g.modules.get("mapping"), "mapping", f"{key}.mapping", source)
    synthesis = _expect(g.modules.get("synthesis"), "synthesis", f"{key}.synthesis", source)
    z_dim, w_dim, c_dim = (int(g.attributes[k]) for k in ("z_dim", "w_dim", "c_dim"))
    resolution, channels = int(g.attributes["img_resolution"]), int(g.attributes["img_channels"])
    if c_dim:
        raise CheckpointError(f"{source}: a conditional generator (c_dim={c_dim}); rosinality's layout has no class "
                              "embedding")
    if z_dim != w_dim:
        raise CheckpointError(f"{source}: z_dim {z_dim} != w_dim {w_dim}; rosinality's mapping keeps one width")
    if channels != 3:
        raise CheckpointError(f"{source}: {channels} image channels; rosinality's layout draws RGB (3)")
    notes = []
    sd = OrderedDict()
    n_mlp = int(mapping.attributes.get("num_layers", 0))
    lr_mlp = None
    for i in range(n_mlp):
        fc = _expect(mapping.modules.get(f"fc{i}"), "fc", f"{key}.mapping.fc{i}", source)
        _fc(sd, f"style.{i + 1}", fc)
        lr = _arg(fc, "lr_multiplier")
        if lr_mlp not in (None, lr):
            raise CheckpointError(f"{source}: mapping layers with different lr_multiplier ({lr_mlp}, {lr})")
        lr_mlp = lr
    if "w_avg" not in mapping.buffers:
        raise CheckpointError(f"{source}: {key}.mapping has no w_avg buffer")
    w_avg = mapping.buffers["w_avg"]

    blocks = [int(r) for r in synthesis.attributes.get("block_resolutions", [])]
    if blocks != [2 ** k for k in range(2, resolution.bit_length())]:
        raise CheckpointError(f"{source}: synthesis blocks {blocks} do not run from 4 to {resolution} px")
    b4 = _expect(synthesis.modules.get("b4"), "block", f"{key}.synthesis.b4", source)
    sd["input.input"] = b4.parameters["const"][None]
    _layer(sd, "conv1", _expect(b4.modules.get("conv1"), "layer", "b4.conv1", source), "noises.noise_0", notes,
           "b4.conv1", source)
    _torgb(sd, "to_rgb1", _expect(b4.modules.get("torgb"), "torgb", "b4.torgb", source), "b4.torgb", source)
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
                   f"noises.noise_{2 * i + j + 1}", notes, f"{where}.{name}", source)
        _torgb(sd, f"to_rgbs.{i}", _expect(block.modules.get("torgb"), "torgb", f"{where}.torgb", source),
               f"{where}.torgb", source)

    conv_clamp = _arg(synthesis, "conv_clamp")
    config = GeneratorConfig(size=resolution, style_dim=w_dim, n_mlp=n_mlp, channel_multiplier=1,
                             channel_base=int(_arg(synthesis, "channel_base")),
                             channel_max=int(_arg(synthesis, "channel_max")),
                             lr_mlp=float(lr_mlp if lr_mlp is not None else NVLABS_DEFAULTS["lr_multiplier"]),
                             conv_clamp=None if conv_clamp is None else float(conv_clamp))
    info = {"z_dim": z_dim, "w_dim": w_dim, "c_dim": c_dim, "mapping_layers": n_mlp,
            "channel_base": config.channel_base, "channel_max": config.channel_max, "conv_clamp": conv_clamp,
            "num_fp16_res": int(_arg(synthesis, "num_fp16_res")), "block_resolutions": blocks,
            "fp16_note": "fp16 blocks run in float16 only on GPUs in NVlabs' code; converted weights run in the "
                         "dtype you choose", "notes": notes}
    return sd, config, w_avg.float().clone(), info
