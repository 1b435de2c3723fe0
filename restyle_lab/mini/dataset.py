"""The mini test set on disk: PNG renders of held-out seeds plus their attributes.

It stands in for CelebA-HQ's test split: rendered from the "test" seed stream, which the
training images (the "train" stream) never share.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np

from .render import attribute_names, render_face

FORMAT = 1


def default_data_dir() -> Path:
    """$RESTYLE_LAB_DATA, else ~/.cache/restyle-lab."""
    return Path(os.environ.get("RESTYLE_LAB_DATA", Path.home() / ".cache" / "restyle-lab"))


def write_test_set(out_dir=None, n: int = 100, style: str = "photo", size: int = 64) -> Path:
    """Render test faces 0..n-1 into ``out_dir`` (default: the cache); a complete folder is reused."""
    from PIL import Image

    out_dir = Path(out_dir) if out_dir else default_data_dir() / "mini" / f"test_{style}_{size}_{n}"
    stamp = out_dir / "mini_test_set.json"
    meta = {"format": FORMAT, "n": n, "style": style, "size": size, "split": "test"}
    if stamp.exists() and json.loads(stamp.read_text()) == meta:
        return out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        img, attrs = render_face("test", i, size, style)
        name = f"test_{i:04d}.png"
        Image.fromarray(img).save(out_dir / name)
        rows.append({"image": name, **attrs.as_dict()})
    with open(out_dir / "attributes.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["image"] + attribute_names())
        writer.writeheader()
        writer.writerows(rows)
    stamp.write_text(json.dumps(meta))
    return out_dir


def write_synthetic_set(generator, out_dir, n: int = 32, seed: int = 0, truncation: float = 0.7) -> Path:
    """Generator samples with their w+ codes (``latents.npz``), so latent errors can be measured."""
    import torch

    from ..images import to_uint8
    from PIL import Image

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    gen_rng = torch.Generator().manual_seed(seed)
    z = torch.randn(n, generator.style_dim, generator=gen_rng)
    with torch.no_grad():
        w_avg = generator.mean_latent(10_000, seed=seed)
        img, latent = generator([z], truncation=truncation, truncation_latent=w_avg, randomize_noise=False,
                                return_latents=True)
    names = [f"sample_{i:04d}.png" for i in range(n)]
    for name, arr in zip(names, to_uint8(img)):
        Image.fromarray(arr).save(out_dir / name)
    np.savez(out_dir / "latents.npz", names=np.array(names), latents=latent.numpy().astype(np.float32))
    return out_dir
