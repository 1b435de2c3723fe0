"""SeFa directions: the closed form from the generator's modulation weights (Shen & Zhou 2021).

Each style row feeds the affine maps (``modulation``, w -> per-channel styles s = A w + b) of the
layers it drives. SeFa's directions are the n maximising sum ||A n||^2 over the chosen layers: the
eigenvectors of A^T A, A being those layers' weights stacked, each output channel's weight
vector normalised to unit length (as SeFa's own code does), largest eigenvalue first.

Which layer reads which row (rosinality's forward, ``models/stylegan2.py``): row 0 drives
``conv1``, row r >= 1 drives ``convs[r - 1]``; the RGB layers read row 1 (``to_rgb1``) and rows
2k + 3 (``to_rgbs[k]``). SeFa factorises the convolutions only; ``include_rgb`` adds the RGB maps.
"""

from __future__ import annotations

import torch

from ..facts.errors import UsageError
from .directions import Direction, parse_rows


def modulations(generator, include_rgb: bool = False) -> dict[int, list[tuple[str, torch.nn.Module]]]:
    """style row -> [(layer name, its modulation EqualLinear)] for every row of ``generator``."""
    out = {r: [] for r in range(generator.n_latent)}
    out[0].append(("conv1", generator.conv1.conv.modulation))
    for k, layer in enumerate(generator.convs):
        out[k + 1].append((f"convs.{k}", layer.conv.modulation))
    if include_rgb:
        out[1].append(("to_rgb1", generator.to_rgb1.conv.modulation))
        for k, layer in enumerate(generator.to_rgbs):
            out[2 * k + 3].append((f"to_rgbs.{k}", layer.conv.modulation))
    return out


@torch.no_grad()
def sefa_factorize(generator, rows="all", include_rgb: bool = False) -> tuple[torch.Tensor, torch.Tensor, list]:
    """(eigenvalues [D] decreasing, eigenvectors [D, D] as rows, the layer names used) for ``rows``."""
    rows = parse_rows(rows, generator.n_latent)
    table = modulations(generator, include_rgb)
    layers = [(name, m) for r in rows for name, m in table[r]]
    if not layers:
        raise ValueError(f"rows {rows} drive no {'layer' if include_rgb else 'convolution'} "
                         "(the last row of a rosinality generator feeds only an RGB layer: include_rgb=True)")
    a = torch.cat([m.weight.double() for _, m in layers])  # [sum of channels, D]
    a = a / a.norm(dim=1, keepdim=True)
    values, vectors = torch.linalg.eigh(a.T @ a)
    order = values.argsort(descending=True)
    vectors = vectors[:, order].T
    sign = torch.sign(vectors.gather(1, vectors.abs().argmax(1, keepdim=True)))
    return values[order], vectors * sign, [name for name, _ in layers]


def sefa_direction(generator, component: int, rows="all", name: str | None = None, include_rgb: bool = False,
                   target: str | None = None) -> Direction:
    """Eigenvector ``component`` of the rows' modulation weights, applied to those same rows."""
    rows = parse_rows(rows, generator.n_latent)
    values, vectors, layers = sefa_factorize(generator, rows, include_rgb)
    if not 0 <= component < len(values):
        raise UsageError(f"component must lie in 0..{len(values) - 1}. Got: {component}")
    return Direction(name=name or f"sefa{component}", vector=vectors[component].float(), rows=rows, source="sefa",
                     target=target,
                     meta={"component": component, "eigenvalue": round(float(values[component]), 4),
                           "layers": layers})
