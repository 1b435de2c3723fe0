"""Reading and writing checkpoints: official ReStyle / pSp / e4e, rosinality generators, ours.

Every file is read with ``torch.load(weights_only=True)``: no code in a checkpoint is
ever executed. Loading is strict; a mismatch raises ``CheckpointError`` with the
missing / unexpected / wrong-shape keys grouped by module.

Our own files use the official layout (``state_dict`` with ``encoder.`` / ``decoder.``
prefixes, ``opts``, ``latent_avg``) plus a ``restyle_lab`` entry holding the
architecture configs, so the same loader reads both.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..facts.configs import (
    FAMILIES,
    OFFICIAL_ENCODER_TYPES,
    GeneratorConfig,
    encoder_config_from_dict,
    encoder_config_from_official,
    generator_config_from_dict,
    to_dict,
)
from ..facts.domains import dataset_type_of_geometry, geometry_of_dataset_type
from ..facts.errors import CheckpointError
from ..facts.geometry import Geometry
from ..records.files import atomic_torch_save, first_line, sha256_file
from ..records.nvlabs_pickle import read_snapshot
from ..records.packing import PACKED_KEY, read_checkpoint
from ..records.state_dict import check_finite, load_strict, split_prefix
from . import Generator
from .net import InversionNet
from .nvlabs_convert import generator_from_snapshot

FORMAT_VERSION = 1

# Official option defaults that decide the architecture, per family (from the official
# option parsers; see checkpoint_layouts.json in the reference bundle).
OFFICIAL_DEFAULTS = {
    "restyle_psp": {"encoder_type": "BackboneEncoder", "input_nc": 6, "output_size": 1024,
                    "dataset_type": "ffhq_encode", "n_iters_per_batch": 5},
    "restyle_e4e": {"encoder_type": "ProgressiveBackboneEncoder", "input_nc": 6, "output_size": 1024,
                    "dataset_type": "ffhq_encode", "n_iters_per_batch": 5},
    "psp": {"encoder_type": "GradualStyleEncoder", "input_nc": 3, "output_size": 1024, "label_nc": 0,
            "dataset_type": "ffhq_encode", "start_from_latent_avg": False, "learn_in_w": False},
    "e4e": {"encoder_type": "Encoder4Editing", "stylegan_size": 1024, "dataset_type": "ffhq_encode",
            "start_from_latent_avg": False},
}
# pSp / e4e encoder types that exist officially but that no ReStyle analysis uses.
UNSUPPORTED_ENCODER_TYPES = {
    "BackboneEncoderUsingLastLayerIntoW": "pSp's single-w encoder (learn_in_w)",
    "BackboneEncoderUsingLastLayerIntoWPlus": "pSp's w+ encoder without a style pyramid",
    "SingleStyleCodeEncoder": "e4e's single-style encoder",
}


# --------------------------------------------------------------------------- inferring architecture

def infer_generator_config(sd, source, style_dim=None) -> GeneratorConfig:
    """A GeneratorConfig from a rosinality state dict's key names and shapes."""
    try:
        n_rgbs = len({k.split(".")[1] for k in sd if k.startswith("to_rgbs.")})
        size = 2 ** (n_rgbs + 2)
        style_dim = style_dim or sd["style.1.weight"].shape[1]
        n_mlp = len({k.split(".")[1] for k in sd if re.match(r"style\.\d+\.weight$", k)})
        widths = {4: sd["input.input"].shape[1]}
        for i in range(n_rgbs):
            widths[2 ** (i + 3)] = sd[f"to_rgbs.{i}.conv.weight"].shape[2]
    except KeyError as err:
        raise CheckpointError(f"{source}: not a StyleGAN2 generator state dict (no {err.args[0]!r})") from None
    candidates = [(2, 16384, widths[4]), (1, 16384, widths[4])]
    ch_max = widths[4]
    for res, ch in sorted(widths.items()):
        if ch < ch_max:
            candidates.append((1, ch * res, ch_max))
            break
    for cm, base, cmax in candidates:
        cfg = GeneratorConfig(size=size, style_dim=style_dim, n_mlp=n_mlp, channel_multiplier=cm,
                              channel_base=base, channel_max=cmax)
        if all(cfg.channels(r) == c for r, c in widths.items()):
            return cfg
    raise CheckpointError(f"{source}: generator channel widths {widths} follow no supported table")


def _first_conv_in_channels(enc_sd, source) -> int:
    for key in ("input_layer.0.weight", "conv1.weight"):
        if key in enc_sd:
            return int(enc_sd[key].shape[1])
    raise CheckpointError(f"{source}: encoder weights have neither input_layer.0.weight (IR-SE) nor "
                          "conv1.weight (ResNet); is this an encoder checkpoint?")


def _family_of(opts: dict, input_nc: int, source) -> str:
    encoder_type = opts.get("encoder_type")
    if encoder_type in UNSUPPORTED_ENCODER_TYPES:
        raise CheckpointError(f"{source}: encoder_type {encoder_type!r} ({UNSUPPORTED_ENCODER_TYPES[encoder_type]}) "
                              f"is not supported; supported types: {', '.join(OFFICIAL_ENCODER_TYPES)}")
    if encoder_type is not None and encoder_type not in OFFICIAL_ENCODER_TYPES:
        raise CheckpointError(f"{source}: unknown encoder_type {encoder_type!r} in opts; "
                              f"supported types: {', '.join(OFFICIAL_ENCODER_TYPES)}")
    if encoder_type == "Encoder4Editing" or (encoder_type is None and "stylegan_size" in opts):
        return "e4e"
    if encoder_type in ("ProgressiveBackboneEncoder", "ResNetProgressiveBackboneEncoder"):
        return "restyle_e4e"
    return "restyle_psp" if input_nc == 6 else "psp"


@dataclass
class NetworkInfo:
    """Where a network came from and what the loader had to decide."""

    path: str
    sha256: str
    family: str
    encoder_type: str | None
    opts: dict
    filled: dict = field(default_factory=dict)  # option -> (value, where it came from)
    notes: list = field(default_factory=list)


@dataclass
class Architecture:
    """What a checkpoint says about the network to build, and the options the loader had to fill."""

    family: str
    encoder: object  # EncoderConfig
    generator: GeneratorConfig
    geometry: Geometry
    start_from_latent_avg: bool
    filled: dict = field(default_factory=dict)  # option -> (value, where it came from)


def _encoder_decoder_weights(ckpt, source) -> tuple[OrderedDict, OrderedDict]:
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{source}: expected a dict checkpoint, found {type(ckpt).__name__}")
    if "g_ema" in ckpt and "state_dict" not in ckpt:
        raise CheckpointError(f"{source}: this is a StyleGAN2 generator file (it holds 'g_ema'), not an encoder "
                              "checkpoint. Pass it as the generator (load_generator / --generator) and give "
                              "an encoder checkpoint (with 'state_dict' and 'opts') here.")
    if "state_dict" not in ckpt:
        keys = ", ".join(map(str, list(ckpt)[:8]))
        raise CheckpointError(f"{source}: no 'state_dict' entry (top-level keys: {keys}); expected an official "
                              "ReStyle / pSp / e4e checkpoint or one written by restyle-lab")
    sd = ckpt["state_dict"]
    if not isinstance(sd, dict):
        raise CheckpointError(f"{source}: its state_dict is a {type(sd).__name__}; expected a mapping of weight names "
                              "to tensors")
    enc_sd, dec_sd = split_prefix(sd, "encoder"), split_prefix(sd, "decoder")
    if not enc_sd or not dec_sd:
        raise CheckpointError(f"{source}: state_dict must hold 'encoder.*' and 'decoder.*' keys; found "
                              f"{len(enc_sd)} encoder and {len(dec_sd)} decoder keys")
    return enc_sd, dec_sd


def _our_architecture(ours: dict, source) -> Architecture:
    """A restyle-lab file carries its configs: nothing to infer (a malformed entry is refused)."""
    with _our_entry(source):
        return Architecture(ours["family"], encoder_config_from_dict(ours["encoder"]),
                            generator_config_from_dict(ours["generator"]), Geometry(**ours["geometry"]),
                            bool(ours.get("start_from_latent_avg", True)))


@contextlib.contextmanager
def _our_entry(source):
    """Errors reading a file's ``restyle_lab`` entry as one CheckpointError naming the file."""
    try:
        yield
    except CheckpointError:
        raise
    except KeyError as err:
        raise CheckpointError(f"{source}: its restyle_lab entry lacks {err.args[0]!r}; the file was edited or "
                              "written by another tool. Write it again with restyle_lab.models.checkpoints.save_network "
                              "(or remove the entry to load it as an official checkpoint)") from None
    except (TypeError, ValueError, AttributeError) as err:
        raise CheckpointError(f"{source}: its restyle_lab entry is malformed ({first_line(err)}); write the file "
                              "again with restyle_lab.models.checkpoints.save_network") from None


def _mapping(ckpt: dict, key: str, source) -> dict:
    """``ckpt[key]`` as a dict ({} when absent); another type is refused by name."""
    value = ckpt.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CheckpointError(f"{source}: its {key!r} entry is a {type(value).__name__}; expected a mapping "
                              "(an official checkpoint stores vars(opts))")
    return dict(value)


def _official_architecture(opts: dict, enc_sd, dec_sd, source) -> Architecture:
    """Options missing from an official file come from the weights where they decide the architecture,
    otherwise from the official defaults; a contradiction between the two is refused."""
    input_nc = _first_conv_in_channels(enc_sd, source)
    family = _family_of(opts, input_nc, source)
    defaults = OFFICIAL_DEFAULTS[family]
    filled = {key: (value, "official default") for key, value in defaults.items() if key not in opts}
    size_key = "stylegan_size" if family == "e4e" else "output_size"
    gen_cfg = infer_generator_config(dec_sd, source)
    if size_key in opts and int(opts[size_key]) != gen_cfg.size:
        raise CheckpointError(f"{source}: opts[{size_key!r}]={opts[size_key]} but the decoder weights are a "
                              f"{gen_cfg.size}px generator")
    if size_key not in opts:
        filled[size_key] = (gen_cfg.size, "decoder weights")
    if family != "e4e":
        if "input_nc" in opts and int(opts["input_nc"]) != input_nc:
            raise CheckpointError(f"{source}: opts['input_nc']={opts['input_nc']} but the encoder's first "
                                  f"convolution takes {input_nc} channels")
        if "input_nc" not in opts:
            filled["input_nc"] = (input_nc, "encoder weights")
    if opts.get("learn_in_w"):
        raise CheckpointError(f"{source}: learn_in_w checkpoints (a single w) are not supported")
    n_styles = len({k.split(".")[1] for k in enc_sd if k.startswith("styles.")})
    enc_cfg = encoder_config_from_official(opts.get("encoder_type", defaults["encoder_type"]), input_nc, n_styles)
    dataset_type = opts.get("dataset_type", defaults["dataset_type"])
    geometry = geometry_of_dataset_type(dataset_type)
    start_avg = FAMILIES[family].restyle or bool(opts.get("start_from_latent_avg", False))
    return Architecture(family, enc_cfg, gen_cfg, geometry, start_avg, filled)


def _latent_avg(ckpt, net: InversionNet, arch: Architecture, dtype, notes: list, source):
    latent_avg = ckpt.get("latent_avg")
    if latent_avg is not None and not isinstance(latent_avg, torch.Tensor):
        raise CheckpointError(f"{source}: latent_avg is a {type(latent_avg).__name__}; expected a tensor")
    if latent_avg is not None:
        check_finite({"latent_avg": latent_avg}, "the entry", source)
    if latent_avg is None and arch.start_from_latent_avg:
        latent_avg = net.decoder.mean_latent()[0].to(dtype)
        notes.append("the checkpoint has no latent_avg: computed as the mapping's mean over 100,000 seeded z")
        warnings.warn(f"{source}: no latent_avg in the checkpoint; computed from the mapping network", stacklevel=3)
    if latent_avg is not None and (latent_avg.shape[-1] != arch.generator.style_dim or latent_avg.ndim > 2):
        raise CheckpointError(f"{source}: latent_avg has shape {tuple(latent_avg.shape)}; expected "
                              f"({arch.generator.n_styles}, {arch.generator.style_dim}) or "
                              f"({arch.generator.style_dim},)")
    return None if latent_avg is None else latent_avg.to(dtype)


# --------------------------------------------------------------------------- public loaders

def load_network(path, device="cpu", dtype=torch.float32) -> InversionNet:
    """Any ReStyle-pSp / ReStyle-e4e / pSp / e4e checkpoint (official or restyle-lab) -> InversionNet.

    Missing options are taken from the weights where they decide the architecture
    (input channels, output size), otherwise from the official defaults; each one is
    listed in ``net.info.filled``. A missing ``latent_avg`` is computed from the
    mapping network (seeded) and noted.
    """
    source = str(path)
    ckpt = read_checkpoint(path)
    enc_sd, dec_sd = _encoder_decoder_weights(ckpt, source)
    opts = _mapping(ckpt, "opts", source)
    ours = _mapping(ckpt, "restyle_lab", source) if ckpt.get("restyle_lab") is not None else None
    arch = _our_architecture(ours, source) if ours is not None else \
        _official_architecture(opts, enc_sd, dec_sd, source)
    notes = []
    if PACKED_KEY in ckpt:
        notes.append(f"packed file: encoder weight matrices stored as int8 per row, decoder read from "
                     f"{ckpt[PACKED_KEY]['decoder_file']}")
    try:
        net = InversionNet(arch.family, arch.encoder, arch.generator, start_from_latent_avg=arch.start_from_latent_avg,
                           geometry=arch.geometry)
    except ValueError as err:
        raise CheckpointError(f"{source}: {err}") from None
    net.to(dtype)
    load_strict(net.encoder, enc_sd, "encoder", source)
    load_strict(net.decoder, dec_sd, "decoder", source)
    net.latent_avg = _latent_avg(ckpt, net, arch, dtype, notes, source)
    net.info = NetworkInfo(path=source, sha256=sha256_file(path), family=arch.family,
                           encoder_type=arch.encoder.official_encoder_type, opts=opts, filled=arch.filled, notes=notes)
    return net.to(device).eval()


def is_nvlabs_pickle(path) -> bool:
    """An NVlabs network snapshot (``.pkl``), read by ``restyle_lab.records.nvlabs_pickle`` instead of torch.load."""
    return str(path).lower().endswith(".pkl")


def _load_nvlabs_generator(path, device, dtype):
    source = str(path)
    sd, cfg, w_avg, nvlabs = generator_from_snapshot(read_snapshot(path), source)
    gen = Generator(cfg).to(dtype)
    # the FIR kernels are fixed by the config: the snapshot's own filters were checked against them
    sd.update({k: v for k, v in gen.state_dict().items() if k.endswith("kernel") and k not in sd})
    load_strict(gen, sd, "generator", source)
    notes = ["converted from an NVlabs stylegan2-ada-pytorch pickle (G_ema; w_avg as latent_avg); nothing in the "
             "file was run"] + nvlabs["notes"]
    info = {"path": source, "sha256": sha256_file(path), "config": cfg, "notes": notes, "nvlabs": nvlabs}
    return gen.to(device).eval(), w_avg.to(device, dtype), info


def load_generator(path, device="cpu", dtype=torch.float32):
    """A StyleGAN2 generator file (rosinality: ``g_ema`` [+ ``latent_avg``]) -> (Generator, w_avg [D], info).

    Also accepts a ReStyle / pSp / e4e checkpoint, whose ``decoder.*`` weights are used, and an
    NVlabs stylegan2-ada-pytorch snapshot (``.pkl``: its ``G_ema``, read without running the pickle).
    """
    if is_nvlabs_pickle(path):
        return _load_nvlabs_generator(path, device, dtype)
    ckpt = read_checkpoint(path)
    source = str(path)
    notes = []
    if isinstance(ckpt, dict) and "g_ema" in ckpt:
        sd = ckpt["g_ema"]
        w_avg = ckpt.get("latent_avg")
    elif isinstance(ckpt, dict) and "state_dict" in ckpt:
        sd = split_prefix(ckpt["state_dict"], "decoder")
        w_avg = ckpt.get("latent_avg")
        notes.append("decoder taken from an encoder checkpoint")
    else:
        what = type(ckpt).__name__ if not isinstance(ckpt, dict) else f"dict with keys {list(ckpt)[:8]}"
        raise CheckpointError(f"{source}: not a generator file (expected 'g_ema', found {what})")
    if not isinstance(sd, dict):
        raise CheckpointError(f"{source}: its generator weights are a {type(sd).__name__}; expected a mapping")
    ours = _mapping(ckpt, "restyle_lab", source)
    if ours:
        with _our_entry(source):
            cfg = generator_config_from_dict(ours["generator"])
    else:
        cfg = infer_generator_config(sd, source)
    gen = Generator(cfg).to(dtype)
    load_strict(gen, sd, "generator", source)
    if w_avg is not None and not isinstance(w_avg, torch.Tensor):
        raise CheckpointError(f"{source}: latent_avg is a {type(w_avg).__name__}; expected a tensor")
    if w_avg is not None:
        check_finite({"latent_avg": w_avg}, "the entry", source)
    if w_avg is None:
        w_avg = gen.mean_latent()[0]
        notes.append("no latent_avg in the file: w_avg computed as the mapping's mean over 100,000 seeded z")
        warnings.warn(f"{source}: no latent_avg; computed w_avg from the mapping network", stacklevel=2)
    elif w_avg.ndim == 2:
        w_avg = w_avg[0]
    info = {"path": source, "sha256": sha256_file(path), "config": cfg, "notes": notes}
    return gen.to(device).eval(), w_avg.to(device, dtype), info


# --------------------------------------------------------------------------- writing

def network_opts(net: InversionNet) -> dict:
    """Official-style opts describing ``net`` (what the official scripts read)."""
    opts = {"encoder_type": net.encoder.config.official_encoder_type or "custom",
            "input_nc": net.encoder.config.input_nc, "output_size": net.decoder.config.size,
            "dataset_type": dataset_type_of_geometry(net.geometry),
            "start_from_latent_avg": net.start_from_latent_avg}
    if net.family == "e4e":
        opts["stylegan_size"] = net.decoder.config.size
    return opts


def save_network(net: InversionNet, path, opts: dict | None = None, extra: dict | None = None) -> str:
    """Write ``net`` in the official layout plus its configs; returns the file's sha256."""
    sd = OrderedDict()
    for prefix, module in (("encoder", net.encoder), ("decoder", net.decoder)):
        for k, v in module.state_dict().items():
            sd[f"{prefix}.{k}"] = v.detach().cpu()
    payload = {
        "state_dict": sd,
        "opts": {**network_opts(net), **(opts or {})},
        "latent_avg": None if net.latent_avg is None else net.latent_avg.detach().cpu(),
        "restyle_lab": {"format_version": FORMAT_VERSION, "family": net.family,
                        "encoder": to_dict(net.encoder.config), "generator": to_dict(net.decoder.config),
                        "geometry": to_dict(net.geometry), "start_from_latent_avg": net.start_from_latent_avg},
    }
    payload.update(extra or {})
    return atomic_torch_save(payload, path)


def save_generator(gen: Generator, path, w_avg: torch.Tensor | None = None, extra: dict | None = None) -> str:
    """rosinality layout (``g_ema``, ``latent_avg``) plus the config; returns sha256."""
    payload = {"g_ema": {k: v.detach().cpu() for k, v in gen.state_dict().items()},
               "latent_avg": None if w_avg is None else w_avg.detach().cpu().reshape(-1),
               "restyle_lab": {"format_version": FORMAT_VERSION, "generator": to_dict(gen.config)}}
    if payload["latent_avg"] is None:
        del payload["latent_avg"]
    payload.update(extra or {})
    return atomic_torch_save(payload, path)


def convert_nvlabs(src, dst) -> str:
    """Write the ``G_ema`` of an NVlabs snapshot ``src`` as a rosinality-layout generator file ``dst``
    (``g_ema``, ``latent_avg``, the config; the snapshot's facts under ``converted_from``); returns sha256."""
    gen, w_avg, info = _load_nvlabs_generator(src, "cpu", torch.float32)
    return save_generator(gen, dst, w_avg, extra={"converted_from": {
        "file": Path(src).name, "sha256": info["sha256"], "format": "NVlabs stylegan2-ada-pytorch network pickle",
        "network": "G_ema", **{k: v for k, v in info["nvlabs"].items()}}})
