"""An edit direction and how it is applied: w+ -> w+ + alpha * sigma * direction on chosen rows.

Every source (InterFaceGAN files or fits, GANSpace, SeFa) produces a ``Direction``. Its
``vector`` is one w-space direction [D] (added to every row in ``rows``) or one per style row
[n_styles, D] (the rows outside ``rows`` are ignored). ``sigma`` is the standard deviation of
mapped w samples along the direction, so a strength of 1 moves a code by one standard deviation
of the generator's own distribution; with ``sigma=None`` strengths are plain latent units (the
official editors' ``factor``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pandas as pd
import torch

from ..facts.errors import UsageError


@dataclass(frozen=True, eq=False)
class Direction:
    """One edit: ``vector`` [D] or [n_styles, D], the style ``rows`` it moves, where it came from."""

    name: str
    vector: torch.Tensor
    rows: tuple
    source: str
    sigma: float | None = None
    target: str | None = None  # the attribute it is meant to change, where one is known
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.vector.ndim not in (1, 2):
            raise ValueError(f"direction {self.name!r}: vector must be [D] or [n_styles, D]. "
                             f"Got: {tuple(self.vector.shape)}")
        if not self.rows:
            raise ValueError(f"direction {self.name!r}: rows is empty")
        if self.vector.ndim == 2 and max(self.rows) >= self.vector.shape[0]:
            raise ValueError(f"direction {self.name!r}: rows {self.rows} outside its {self.vector.shape[0]} rows")

    @property
    def style_dim(self) -> int:
        return self.vector.shape[-1]

    def mean_vector(self) -> torch.Tensor:
        """[D]: the direction as one w vector (the mean over ``rows`` of a per-row vector)."""
        return self.vector if self.vector.ndim == 1 else self.vector[list(self.rows)].mean(0)

    def delta(self, n_styles: int) -> torch.Tensor:
        """[n_styles, D]: what strength 1 adds to a w+ code (zero outside ``rows``)."""
        if max(self.rows) >= n_styles:
            raise ValueError(f"direction {self.name!r} moves rows {self.rows}; the codes have {n_styles} rows")
        if self.vector.ndim == 2 and self.vector.shape[0] != n_styles:
            raise ValueError(f"direction {self.name!r} has {self.vector.shape[0]} rows; the codes have {n_styles}")
        out = torch.zeros(n_styles, self.style_dim, dtype=self.vector.dtype)
        rows = list(self.rows)
        out[rows] = self.vector[rows] if self.vector.ndim == 2 else self.vector
        return out * (self.sigma if self.sigma is not None else 1.0)

    def describe(self) -> dict:
        """JSON-ready provenance: name, source, rows, sigma, target and the source's own record."""
        return {"name": self.name, "source": self.source, "rows": list(self.rows), "sigma": self.sigma,
                "target": self.target, "shape": list(self.vector.shape), **self.meta}


def edit(latents: torch.Tensor, direction: Direction, strengths) -> torch.Tensor:
    """w+ codes [N, n_styles, D] edited at each strength: [A, N, n_styles, D] (A = len(strengths)).

    Strength s adds ``s * sigma * direction`` to the rows of ``direction.rows`` (``sigma`` = 1
    when the direction is uncalibrated). Strength 0 returns the codes unchanged.
    """
    if latents.ndim != 3:
        raise ValueError(f"latents must be w+ codes [N, n_styles, D]. Got: {tuple(latents.shape)}")
    if latents.shape[-1] != direction.style_dim:
        raise ValueError(f"direction {direction.name!r} is {direction.style_dim}-d; the codes are "
                         f"{latents.shape[-1]}-d (a direction of another generator?)")
    delta = direction.delta(latents.shape[1]).to(latents.device, latents.dtype)
    s = torch.as_tensor(list(strengths), dtype=latents.dtype, device=latents.device)
    return latents.unsqueeze(0) + s.view(-1, 1, 1, 1) * delta


@torch.no_grad()
def mapped_samples(generator, n: int, seed: int, truncation: float = 1.0, chunk: int = 4096) -> torch.Tensor:
    """w [n, D]: the mapping network applied to ``n`` seeded z draws (float64 on the CPU)."""
    p = next(generator.parameters())
    gen = torch.Generator(device="cpu").manual_seed(seed)
    out = []
    for start in range(0, n, chunk):
        z = torch.randn(min(chunk, n - start), generator.style_dim, generator=gen)
        out.append(generator.style(z.to(p.device, p.dtype)).double().cpu())
    w = torch.cat(out)
    if truncation < 1:
        w = w.mean(0, keepdim=True) + truncation * (w - w.mean(0, keepdim=True))
    return w


def calibrate(direction: Direction, w: torch.Tensor) -> Direction:
    """The direction with ``sigma`` = the standard deviation of w samples [N, D] along it.

    The direction is used as a unit vector for this (``mean_vector`` normalised), so sigma is
    in latent units per unit of the direction's own length when that length is 1.
    """
    v = direction.mean_vector().double()
    norm = float(v.norm())
    if norm == 0:
        raise ValueError(f"direction {direction.name!r} is zero on its rows")
    sigma = float((w.double() @ (v / norm)).std()) / norm
    return replace(direction, sigma=sigma, meta={**direction.meta, "sigma_from_samples": len(w)})


def parse_rows(text, n_styles: int) -> tuple:
    """``"all"``, ``"3-6"`` (inclusive), ``"0,2,4"`` or a list of ints -> a sorted tuple of rows."""
    if isinstance(text, (list, tuple, range)):
        rows = [int(r) for r in text]
    elif text in (None, "", "all"):
        rows = list(range(n_styles))
    else:
        rows = []
        for part in str(text).split(","):
            a, _, b = part.strip().partition("-")
            rows += list(range(int(a), int(b) + 1)) if b else [int(a)]
    bad = [r for r in rows if not 0 <= r < n_styles]
    if bad or not rows:
        raise UsageError(f"style rows must lie in 0..{n_styles - 1}. Got: {text!r}")
    return tuple(sorted(set(rows)))


def directions_table(directions: list[Direction]):
    """One row per direction (``describe()``), lists and dicts written as text so the table stays flat."""
    rows = [{k: (v if isinstance(v, (str, int, float, type(None))) else str(v)) for k, v in d.describe().items()}
            for d in directions]
    return pd.DataFrame(rows)
