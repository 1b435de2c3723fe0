"""GANSpace directions: principal components of mapped w samples (Harkonen et al. 2020).

The components are computed here from the generator (seeded z draws through the mapping
network), not read from the published ``*_pca.pt`` files; the sample count and seed are part of
the result. A component's sign is arbitrary in PCA; it is fixed so that the component's largest
coordinate is positive, which makes a seed reproduce the same directions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..facts.errors import UsageError
from .directions import Direction, mapped_samples, parse_rows


@dataclass(frozen=True, eq=False)
class PCA:
    """mean [D], components [K, D] (unit rows, by decreasing variance), stds [K], and how they were made."""

    mean: torch.Tensor
    components: torch.Tensor
    stds: torch.Tensor
    n_samples: int
    seed: int

    def explained(self) -> torch.Tensor:
        """[K] fraction of the total variance of each component."""
        var = self.stds ** 2
        return var / var.sum()


def ganspace_pca(generator, n_samples: int = 10_000, seed: int = 0) -> PCA:
    """PCA of ``n_samples`` mapped w (all D components), float64."""
    w = mapped_samples(generator, n_samples, seed)
    mean = w.mean(0)
    _, s, vt = torch.linalg.svd(w - mean, full_matrices=False)
    sign = torch.sign(vt.gather(1, vt.abs().argmax(1, keepdim=True)))
    return PCA(mean=mean, components=vt * sign, stds=s / (n_samples - 1) ** 0.5, n_samples=n_samples, seed=seed)


def ganspace_direction(pca: PCA, component: int, n_styles: int, rows="all", name: str | None = None,
                       target: str | None = None) -> Direction:
    """Component ``component`` as a ``Direction`` on ``rows``, calibrated: strength 1 = one std."""
    if not 0 <= component < len(pca.components):
        raise UsageError(f"component must lie in 0..{len(pca.components) - 1}. Got: {component}")
    return Direction(name=name or f"pc{component}", vector=pca.components[component].float(),
                     rows=parse_rows(rows, n_styles), source="ganspace", sigma=float(pca.stds[component]),
                     target=target,
                     meta={"component": component, "explained_variance": round(float(pca.explained()[component]), 5),
                           "n_samples": pca.n_samples, "seed": pca.seed})
