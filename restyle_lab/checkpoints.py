"""Reading and writing checkpoints: official ReStyle / pSp / e4e, rosinality generators, ours.

Every file is read with ``torch.load(weights_only=True)``: no code in a checkpoint is
ever executed. Loading is strict; a mismatch raises ``CheckpointError`` with the
missing / unexpected / wrong-shape keys grouped by module.

Our own files use the official layout (``state_dict`` with ``encoder.`` / ``decoder.``
prefixes, ``opts``, ``latent_avg``) plus a ``restyle_lab`` entry holding the
architecture configs, so the same loader reads both.
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import re
import warnings
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .configs import (OFFICIAL_ENCODER_TYPES, EncoderConfig, GeneratorConfig, encoder_config_from_dict,
                      encoder_config_from_official, generator_config_from_dict, to_dict)
from .models import Generator
from .net import CARS_GEOMETRY, Geometry, InversionNet

FORMAT_VERSION = 1
PACKED_KEY = "restyle_lab_packed"  # see packing.py

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


class CheckpointError(Exception):
    """A checkpoint that cannot be used, with what is wrong and what to do about it."""


# --------------------------------------------------------------------------- reading files

def sha256_file(path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def read_file(path) -> object:
    """``torch.load(path, map_location='cpu', weights_only=True)`` with errors that name the file."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, expected a checkpoint file (.pt)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        found = re.search(r"(?:GLOBAL|global)\s+([\w.]+(?:\s[\w.]+)?)", text)
        if "Weights only load failed" in text or found:
            what = f" ({found.group(0)})" if found else ""
            raise CheckpointError(
                f"{path}: refused: the file holds pickled Python objects{what} that only run as code. "
                "restyle-lab loads checkpoints with weights_only=True and never executes a file's code. "
                "If you trust the file, load it yourself and re-save plain dicts of tensors, numbers and "
                "strings with torch.save.") from None
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (unpickling failed: {text})") from None
    except Exception as err:  # the unpickler raises many types (IndexError on text, EOFError, ...)
        size = path.stat().st_size
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint ({size} bytes; truncated or corrupt download?): "
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}. "
            "Download the file again and compare its sha256.") from None


def read_checkpoint(path) -> object:
    """``read_file``, with a packed restyle-lab file given its full official ``state_dict``."""
    from .packing import is_packed, unpacked_state_dict

    ckpt = read_file(path)
    if is_packed(ckpt):
        ckpt = {**ckpt, "state_dict": unpacked_state_dict(ckpt, path)}
    return ckpt


# --------------------------------------------------------------------------- strict loading

@dataclass
class LoadReport:
    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    wrong_shape: list = field(default_factory=list)  # (key, expected, found)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.wrong_shape)

    def format(self, limit: int = 4) -> str:
        lines = []
        for title, keys in (("missing", self.missing), ("unexpected", self.unexpected)):
            if keys:
                lines.append(f"  {title} keys ({len(keys)}):")
                for group, members in _group_keys(keys).items():
                    shown = ", ".join(members[:limit]) + (", ..." if len(members) > limit else "")
                    lines.append(f"    {group} [{len(members)}]: {shown}")
        if self.wrong_shape:
            lines.append(f"  wrong-shape keys ({len(self.wrong_shape)}):")
            for key, expected, found in self.wrong_shape[: limit * 3]:
                lines.append(f"    {key}: model {tuple(expected)}, file {tuple(found)}")
            if len(self.wrong_shape) > limit * 3:
                lines.append(f"    ... and {len(self.wrong_shape) - limit * 3} more")
        return "\n".join(lines)


def _group_keys(keys) -> dict:
    """Keys grouped by their top-level module (``styles.*``, ``body.*``, ...)."""
    groups = defaultdict(list)
    for key in keys:
        head = key.split(".")[0]
        groups[head + ".*" if "." in key else key].append(key)
    return dict(groups)


def compare_state_dict(module: torch.nn.Module, state_dict) -> LoadReport:
    own = module.state_dict()
    report = LoadReport()
    report.missing = [k for k in own if k not in state_dict]
    report.unexpected = [k for k in state_dict if k not in own]
    report.wrong_shape = [(k, own[k].shape, state_dict[k].shape) for k in own
                          if k in state_dict and tuple(own[k].shape) != tuple(state_dict[k].shape)]
    return report


def load_strict(module: torch.nn.Module, state_dict, what: str, source) -> None:
    """load_state_dict(strict=True) that reports every mismatch, grouped, before touching weights."""
    bad = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{source}: {what} entries that are not tensors: {bad[:5]}")
    report = compare_state_dict(module, state_dict)
    if not report.ok:
        raise CheckpointError(f"{source}: the {what} weights do not match the architecture "
                              f"{_describe(module)}:\n{report.format()}")
    module.load_state_dict(state_dict, strict=True)


def _describe(module) -> str:
    config = getattr(module, "config", None)
    return f"({type(module).__name__}, {config})" if config is not None else f"({type(module).__name__})"


def split_prefix(state_dict, prefix: str) -> OrderedDict:
    """Entries under ``prefix.`` with the prefix removed."""
    cut = len(prefix) + 1
    return OrderedDict((k[cut:], v) for k, v in state_dict.items() if k.startswith(prefix + "."))


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


# --------------------------------------------------------------------------- public loaders

def load_network(path, device="cpu", dtype=torch.float32) -> InversionNet:
    """Any ReStyle-pSp / ReStyle-e4e / pSp / e4e checkpoint (official or restyle-lab) -> InversionNet.

    Missing options are taken from the weights where they decide the architecture
    (input channels, output size), otherwise from the official defaults; each one is
    listed in ``net.info.filled``. A missing ``latent_avg`` is computed from the
    mapping network (seeded) and noted.
    """
    ckpt = read_checkpoint(path)
    source = str(path)
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
    enc_sd, dec_sd = split_prefix(sd, "encoder"), split_prefix(sd, "decoder")
    if not enc_sd or not dec_sd:
        raise CheckpointError(f"{source}: state_dict must hold 'encoder.*' and 'decoder.*' keys; found "
                              f"{len(enc_sd)} encoder and {len(dec_sd)} decoder keys")
    opts = dict(ckpt.get("opts") or {})
    ours = ckpt.get("restyle_lab")
    filled = {}
    notes = []
    if PACKED_KEY in ckpt:
        notes.append(f"packed file: encoder weight matrices stored as int8 per row, decoder read from "
                     f"{ckpt[PACKED_KEY]['decoder_file']}")
    if ours is not None:
        family = ours["family"]
        enc_cfg = encoder_config_from_dict(ours["encoder"])
        gen_cfg = generator_config_from_dict(ours["generator"])
        geometry = Geometry(**ours["geometry"])
        start_avg = bool(ours.get("start_from_latent_avg", True))
    else:
        input_nc = _first_conv_in_channels(enc_sd, source)
        family = _family_of(opts, input_nc, source)
        defaults = OFFICIAL_DEFAULTS[family]
        for key, value in defaults.items():
            if key not in opts:
                filled[key] = (value, "official default")
        encoder_type = opts.get("encoder_type", defaults["encoder_type"])
        size_key = "stylegan_size" if family == "e4e" else "output_size"
        gen_cfg = infer_generator_config(dec_sd, source)
        if size_key in opts and int(opts[size_key]) != gen_cfg.size:
            raise CheckpointError(f"{source}: opts[{size_key!r}]={opts[size_key]} but the decoder weights are a "
                                  f"{gen_cfg.size}px generator")
        if size_key not in opts:
            filled[size_key] = (gen_cfg.size, "decoder weights")
        if "input_nc" in opts and family != "e4e" and int(opts["input_nc"]) != input_nc:
            raise CheckpointError(f"{source}: opts['input_nc']={opts['input_nc']} but the encoder's first "
                                  f"convolution takes {input_nc} channels")
        if "input_nc" not in opts and family != "e4e":
            filled["input_nc"] = (input_nc, "encoder weights")
        n_styles = len({k.split(".")[1] for k in enc_sd if k.startswith("styles.")})
        enc_cfg = encoder_config_from_official(encoder_type, input_nc, n_styles)
        dataset_type = opts.get("dataset_type", defaults["dataset_type"])
        geometry = CARS_GEOMETRY if dataset_type == "cars_encode" else Geometry()
        start_avg = family.startswith("restyle") or bool(opts.get("start_from_latent_avg", False))
        if opts.get("learn_in_w"):
            raise CheckpointError(f"{source}: learn_in_w checkpoints (a single w) are not supported")

    try:
        net = InversionNet(family, enc_cfg, gen_cfg, start_from_latent_avg=start_avg, geometry=geometry)
    except ValueError as err:
        raise CheckpointError(f"{source}: {err}") from None
    net.to(dtype)
    load_strict(net.encoder, enc_sd, "encoder", source)
    load_strict(net.decoder, dec_sd, "decoder", source)
    latent_avg = ckpt.get("latent_avg")
    if latent_avg is None and start_avg:
        latent_avg = net.decoder.mean_latent()[0].to(dtype)
        notes.append("the checkpoint has no latent_avg: computed as the mapping's mean over 100,000 seeded z")
        warnings.warn(f"{source}: no latent_avg in the checkpoint; computed from the mapping network", stacklevel=2)
    if latent_avg is not None:
        if latent_avg.shape[-1] != gen_cfg.style_dim or latent_avg.ndim > 2:
            raise CheckpointError(f"{source}: latent_avg has shape {tuple(latent_avg.shape)}; expected "
                                  f"({gen_cfg.n_styles}, {gen_cfg.style_dim}) or ({gen_cfg.style_dim},)")
        net.latent_avg = latent_avg.to(dtype)
    net.info = NetworkInfo(path=source, sha256=sha256_file(path), family=family,
                           encoder_type=enc_cfg.official_encoder_type, opts=opts, filled=filled, notes=notes)
    return net.to(device).eval()


def load_generator(path, device="cpu", dtype=torch.float32):
    """A StyleGAN2 generator file (rosinality: ``g_ema`` [+ ``latent_avg``]) -> (Generator, w_avg [D], info).

    Also accepts a ReStyle / pSp / e4e checkpoint, whose ``decoder.*`` weights are used.
    """
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
    ours = ckpt.get("restyle_lab")
    cfg = generator_config_from_dict(ours["generator"]) if ours else infer_generator_config(sd, source)
    gen = Generator(cfg).to(dtype)
    load_strict(gen, sd, "generator", source)
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
            "dataset_type": "cars_encode" if net.geometry == CARS_GEOMETRY else "custom",
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
    return atomic_save(payload, path)


def save_generator(gen: Generator, path, w_avg: torch.Tensor | None = None, extra: dict | None = None) -> str:
    """rosinality layout (``g_ema``, ``latent_avg``) plus the config; returns sha256."""
    payload = {"g_ema": {k: v.detach().cpu() for k, v in gen.state_dict().items()},
               "latent_avg": None if w_avg is None else w_avg.detach().cpu().reshape(-1),
               "restyle_lab": {"format_version": FORMAT_VERSION, "generator": to_dict(gen.config)}}
    if payload["latent_avg"] is None:
        del payload["latent_avg"]
    payload.update(extra or {})
    return atomic_save(payload, path)


def atomic_save(payload, path) -> str:
    """torch.save to a temporary name, then rename: a killed process never leaves half a file. Returns sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return sha256_file(path)
