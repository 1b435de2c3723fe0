"""Compact storage for the shipped mini encoders.

Six encoders in the official layout would each carry a copy of the generator and
float32 heads sized by style_dim: about 130 MB, far over the repository's 50 MB
budget for weights. A packed file keeps the official top-level entries (opts,
latent_avg, our config) but stores the encoder's large weight matrices as int8 with
one float32 scale per output row, and names the generator file (with its sha256)
instead of copying it. ``load_network`` unpacks transparently, so every number the
package reports for a mini model is computed with exactly the packed (dequantised)
weights; ``unpack`` writes a plain official-layout file for other tools.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import torch

from ..facts.errors import CheckpointError
from ..facts.mini_models import ASSETS
from .files import atomic_torch_save, is_regular, read_torch, sha256_file
from .state_dict import split_prefix

PACKED_KEY = "restyle_lab_packed"
PACKED_FORMAT = "int8-rowwise-v1"
# small tensors (biases, norms, PReLU slopes) stay float32: they are a rounding error in size
MIN_QUANTIZED_NUMEL = 1024


def quantize_rows(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 per output row (dim 0): w ~= q * scale[:, None, ...]."""
    rows = w.detach().to(torch.float32).reshape(w.shape[0], -1)
    scale = rows.abs().amax(1) / 127.0
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round(rows / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return q.reshape(w.shape), scale


def dequantize_rows(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return (q.to(torch.float32).reshape(q.shape[0], -1) * scale[:, None]).reshape(q.shape)


def pack(src, dst, generator_file) -> str:
    """Pack the official-layout encoder file ``src`` into ``dst`` (may equal src); returns sha256.

    ``generator_file`` must hold exactly the decoder weights of ``src`` (checked): the
    packed file refers to it by name and sha256.
    """
    ckpt = read_torch(src)
    gen = read_torch(generator_file)
    sd = ckpt["state_dict"]
    dec = split_prefix(sd, "decoder")
    g_ema = gen["g_ema"]
    if set(dec) != set(g_ema) or any(not torch.equal(dec[k], g_ema[k]) for k in dec):
        raise CheckpointError(f"{src}: its decoder is not the generator in {generator_file}; cannot pack")
    keys, ints, scales, floats = [], {}, {}, {}
    for key, value in sd.items():
        if not key.startswith("encoder."):
            continue
        keys.append(key)
        if value.is_floating_point() and value.dim() >= 2 and value.numel() >= MIN_QUANTIZED_NUMEL:
            ints[key], scales[key] = quantize_rows(value)
        else:
            floats[key] = value
    payload = {k: v for k, v in ckpt.items() if k != "state_dict"}
    payload[PACKED_KEY] = {"format": PACKED_FORMAT, "keys": keys, "int8": ints, "scale": scales, "float": floats,
                           "decoder_file": Path(generator_file).name, "decoder_sha256": sha256_file(generator_file)}
    return atomic_torch_save(payload, dst)


def is_packed(ckpt) -> bool:
    return isinstance(ckpt, dict) and PACKED_KEY in ckpt


def unpacked_state_dict(ckpt: dict, path) -> OrderedDict:
    """The full official ``state_dict`` of a packed checkpoint read from ``path``."""
    packed = ckpt[PACKED_KEY]
    if not isinstance(packed, dict) or packed.get("format") != PACKED_FORMAT:
        found = packed.get("format") if isinstance(packed, dict) else type(packed).__name__
        raise CheckpointError(f"{path}: packed format {found!r} is not {PACKED_FORMAT!r}; update restyle-lab")
    try:
        name, sha = packed["decoder_file"], packed["decoder_sha256"]
        gen_path = _find_decoder(Path(path), name)
        if gen_path is None:
            raise CheckpointError(f"{path}: this packed encoder takes its decoder from {name}, which is neither "
                                  "beside it nor among the shipped mini weights; put that file next to it")
        if sha256_file(gen_path) != sha:
            raise CheckpointError(f"{path}: {gen_path} is not the generator it was packed with (sha256 differs); "
                                  "restore the shipped file or regenerate both with `restyle-lab train --preset ...`")
        sd = OrderedDict()
        for key in packed["keys"]:
            sd[key] = (dequantize_rows(packed["int8"][key], packed["scale"][key]) if key in packed["int8"]
                       else packed["float"][key])
        generator = read_torch(gen_path)
        for key, value in generator["g_ema"].items():
            sd[f"decoder.{key}"] = value
    except (KeyError, TypeError, AttributeError, RuntimeError) as err:
        raise CheckpointError(f"{path}: its packed entry is malformed ({type(err).__name__}: {err}); unpack the "
                              "original again or regenerate it with `restyle-lab train --preset ...`") from None
    return sd


def _find_decoder(path: Path, name) -> Path | None:
    """The generator a packed file names: a plain file name, looked for only beside the packed file and
    among the shipped mini weights (never a path elsewhere: ``../../etc/passwd`` is refused), and only
    a regular file (a link to /dev/zero would be hashed for ever)."""
    if not isinstance(name, str) or not name or name in (".", "..") or Path(name).name != name or "\\" in name:
        raise CheckpointError(f"{path}: its packed entry names the decoder {name!r}, which is not a plain file name; "
                              "a packed checkpoint reads its generator only from its own folder")
    for folder in (path.parent, ASSETS):
        candidate = folder / name
        if os.path.lexists(candidate):
            if not is_regular(candidate):
                raise CheckpointError(f"{path}: its decoder {candidate} is not a regular file (a pipe, a device or a "
                                      "broken link); put the generator file itself there")
            return candidate
    return None


def read_checkpoint(path) -> object:
    """``read_torch``, with a packed restyle-lab file given its full official ``state_dict``."""
    ckpt = read_torch(path)
    if is_packed(ckpt):
        ckpt = {**ckpt, "state_dict": unpacked_state_dict(ckpt, path)}
    return ckpt


def unpack(src, dst) -> str:
    """Write a packed file as a plain official-layout checkpoint (state_dict / opts / latent_avg); returns sha256."""
    ckpt = read_checkpoint(src)
    if not is_packed(ckpt):
        raise CheckpointError(f"{src} is not a packed restyle-lab checkpoint")
    return atomic_torch_save({k: v for k, v in ckpt.items() if k != PACKED_KEY}, dst)
