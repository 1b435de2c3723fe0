"""Devices and number formats, named the way the command line and the notebooks name them."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from .errors import UsageError
from .formats import DTYPE_NAMES, IMPLS, LOW_PRECISION

DTYPES = dict(zip(DTYPE_NAMES, (torch.float32, torch.float64, torch.bfloat16, torch.float16)))


def parse_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise UsageError(f"dtype {name!r} is not supported; use one of {', '.join(DTYPES)}")
    return DTYPES[name]


def weights_and_compute(name: str) -> tuple[torch.dtype, str | None]:
    """(the dtype networks are loaded in, the autocast dtype or None) for a ``--dtype`` name."""
    parse_dtype(name)
    return (torch.float32, name) if name in LOW_PRECISION else (DTYPES[name], None)


def check_impl(name: str) -> str:
    if name not in IMPLS:
        raise UsageError(f"impl must be one of {IMPLS}. Got: {name!r}")
    return name


def parse_device(text: str, local_rank: int = 0) -> torch.device:
    """cpu, cuda, cuda:N (or mps); a plain ``cuda`` under torchrun picks the process's local rank."""
    try:
        device = torch.device(str(text))
    except (RuntimeError, ValueError):
        raise UsageError(f"device {text!r} is not a device name; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"device {text!r} asked for, but torch sees no CUDA device on this machine; "
                             "use --device cpu (or install a CUDA build of torch)")
        count = torch.cuda.device_count()
        if device.index is None:
            device = torch.device("cuda", local_rank % count)
        elif device.index >= count:
            raise UsageError(f"device {text!r}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"device {text!r}: torch sees no MPS device here; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"device {text!r} is not supported; use cpu, cuda or cuda:N")
    return device


def device_name(device: torch.device) -> str:
    """A readable name of the machine that computes: the GPU's, or the CPU model and core count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} logical cores)"
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"
