"""Inference precision: names for the compute dtypes and the autocast context that applies them.

Low precision runs through ``torch.autocast``: the weights stay as loaded (float32), the
convolutions and matrix products run in bf16 / fp16. The fast paths keep what low
precision would spoil in float32 even under autocast: the modulation and demodulation
statistics, the per-sample folded weights (cast only for the convolution), the RGB skip
branch of the generator, the encoder's final linear layers (the codes), and therefore the
latents, which accumulate over ReStyle steps. The reference path under autocast is plain
autocast.
"""

from __future__ import annotations

import contextlib

import torch

from ..facts.devices import DTYPES

_ALIASES = {"fp32": "float32", "float": "float32", "fp64": "float64", "double": "float64", "bfloat16": "bf16",
            "float16": "fp16", "half": "fp16"}
LOW_PRECISION = (torch.bfloat16, torch.float16)


def resolve_dtype(dtype) -> torch.dtype:
    """A torch dtype from a name (``float32``, ``float64``, ``bf16``, ``fp16`` or an alias) or a dtype."""
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise ValueError(f"dtype must be one of {list(DTYPES)}. Got: {dtype}")
        return dtype
    name = _ALIASES.get(str(dtype), str(dtype))
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)}. Got: {dtype!r}")
    return DTYPES[name]


def dtype_name(dtype) -> str:
    """The canonical name (``float32``, ``float64``, ``bf16``, ``fp16``) of a dtype or name."""
    resolved = resolve_dtype(dtype)
    return next(name for name, value in DTYPES.items() if value == resolved)


def autocast(device, dtype):
    """``torch.autocast`` to bf16 / fp16 on ``device``; a no-op context for float32 / float64."""
    dtype = resolve_dtype(dtype)
    if dtype not in LOW_PRECISION:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)
