"""Conversions between uint8 pictures and network tensors, and image grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .files import atomic_write


def from_uint8(arr, dtype=torch.float32) -> torch.Tensor:
    """uint8 [H, W, 3] or [N, H, W, 3] -> [N, 3, H, W] in [-1, 1] (ToTensor + Normalize(0.5, 0.5))."""
    arr = np.asarray(arr)
    t = torch.from_numpy(arr if arr.flags.writeable else arr.copy())
    if t.ndim == 3:
        t = t[None]
    t = t.permute(0, 3, 1, 2).to(dtype) / 255.0
    return (t - 0.5) / 0.5


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N, 3, H, W] (or [3, H, W]) in [-1, 1] -> uint8 [N, H, W, 3], clamped."""
    if images.ndim == 3:
        images = images[None]
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def grid(images, ncol: int, pad: int = 2, fill: int = 255) -> np.ndarray:
    """uint8 [N, H, W, 3] (or a tensor in [-1, 1]) tiled into rows of ``ncol``."""
    arr = to_uint8(images) if isinstance(images, torch.Tensor) else np.asarray(images)
    n, h, w, c = arr.shape
    nrow = (n + ncol - 1) // ncol
    out = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), fill, np.uint8)
    for i in range(n):
        r, k = divmod(i, ncol)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + k * (w + pad): pad + k * (w + pad) + w] = arr[i]
    return out


def save_png(arr: np.ndarray, path, scale: int = 1) -> Path:
    """uint8 [H, W, 3] as a PNG (``scale``: nearest-neighbour enlargement)."""
    img = Image.fromarray(arr)
    if scale != 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    return atomic_write(path, lambda tmp: img.save(tmp, format="PNG"))
