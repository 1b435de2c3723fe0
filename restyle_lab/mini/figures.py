"""Pictures of the shipped mini models: generator samples, a style-mixing grid, inversion strips.

``python -m restyle_lab.mini.figures --out docs/figures`` writes the PNGs the README shows.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from ..facts.domains import style_groups
from ..facts.mini_models import MINI_MODELS, mini_path
from ..inversion.loops import run
from ..models.checkpoints import load_generator, load_network
from ..records.images import from_uint8, grid, save_png, to_uint8
from .render import render_batch


def _codes(gen, n, seed, truncation=0.7):
    z = torch.randn(n, gen.style_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        w = gen.style(z)
        centre = gen.mean_latent(10_000, seed=0)
        return centre + truncation * (w - centre)


@torch.no_grad()
def samples_figure(gen, n: int = 32, seed: int = 0, truncation: float = 0.7) -> np.ndarray:
    img, _ = gen([_codes(gen, n, seed, truncation)], input_is_latent=True, randomize_noise=False)
    return grid(img, 8)


@torch.no_grad()
def style_mixing_figure(gen, n_cols: int = 6, seed: int = 1) -> np.ndarray:
    """Top row: sources B; left column: sources A. Row k copies B's coarse / medium / fine styles into A."""
    groups = style_groups(gen.n_latent)
    w_b = _codes(gen, n_cols, seed)
    w_a = _codes(gen, len(groups), seed + 100)
    render = lambda w: to_uint8(gen([w], input_is_latent=True, randomize_noise=False)[0])  # noqa: E731
    size = gen.size
    blank = np.full((1, size, size, 3), 255, np.uint8)
    rows = [np.concatenate([blank, render(w_b.unsqueeze(1).repeat(1, gen.n_latent, 1))])]
    for k, (name, idx) in enumerate(groups.items()):
        mixed = w_a[k].view(1, 1, -1).repeat(n_cols, gen.n_latent, 1).clone()
        mixed[:, idx] = w_b.unsqueeze(1).repeat(1, len(idx), 1)
        a = render(w_a[k].view(1, 1, -1).repeat(1, gen.n_latent, 1))
        rows.append(np.concatenate([a, render(mixed)]))
    return grid(np.concatenate(rows), n_cols + 1)


@torch.no_grad()
def inversion_strip(net, x: torch.Tensor, steps: int = 5) -> np.ndarray:
    """Rows: input, then each step's output (ReStyle, or the naive iteration of a single pass)."""
    result = run(net, x, steps)
    cols = [to_uint8(x)] + [to_uint8(s.image) for s in result]
    tiles = np.stack(cols, 1).reshape(-1, *cols[0].shape[1:])
    return grid(tiles, len(cols))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="docs/figures")
    parser.add_argument("--n-test", type=int, default=4, help="test faces per inversion strip")
    args = parser.parse_args(argv)
    out = Path(args.out)
    gen, _, _ = load_generator(mini_path("generator"))
    save_png(samples_figure(gen), out / "mini_samples.png")
    save_png(style_mixing_figure(gen), out / "mini_style_mixing.png")
    toon, _, _ = load_generator(mini_path("toon_generator"))
    save_png(samples_figure(toon), out / "mini_toon_samples.png")
    x = from_uint8(render_batch("test", range(args.n_test)))
    for model in MINI_MODELS:
        if model.kind == "encoder":
            net = load_network(model.path)
            save_png(inversion_strip(net, x), out / f"strip_{Path(model.file).stem}.png")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
