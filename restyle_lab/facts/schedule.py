"""The optimisation baseline's settings in one place: the snapshot schedule (supplementary Figs. 6-7) and
the projector's configuration.

torch-free, so the command line's help and the method specs read them without importing torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

# step counts at which one projector run's snapshots are recorded
SNAPSHOTS = (1, 10, 50, 100, 250, 500, 1000)


def snapshot_schedule(n_steps: int) -> tuple:
    """The snapshot steps of an ``n_steps`` run: SNAPSHOTS below it, then n_steps itself (the run's end)."""
    if n_steps < 1:
        raise ValueError(f"an optimisation needs at least 1 step. Got: {n_steps}")
    return tuple(s for s in SNAPSHOTS if s < n_steps) + (n_steps,)


@dataclass(frozen=True)
class ProjectorConfig:
    """The Karras et al. projector (``restyle_lab.inversion.projector`` documents each setting)."""

    space: str = "w"  # "w" or "w+"
    perceptual: bool = True  # LPIPS-VGG; falls back to MSE-only when its weights are missing
    mse_weight: float = 0.0  # added to the perceptual loss (1.0 in the MSE-only variant)
    record_at: tuple = SNAPSHOTS
    lr: float = 0.1
    noise_scale: float = 0.05
    noise_ramp: float = 0.75
    lr_rampdown: float = 0.25
    lr_rampup: float = 0.05
    noise_regularize: float = 1e5
    w_std_samples: int = 10_000
    seed: int = 0

    def __post_init__(self):
        if self.space not in ("w", "w+"):
            raise ValueError(f"space must be 'w' or 'w+'. Got: {self.space!r}")
        object.__setattr__(self, "record_at", tuple(sorted(int(s) for s in self.record_at)))

    @property
    def n_steps(self) -> int:
        return self.record_at[-1]


# the ProjectorConfig fields a method may set (space and record_at come from the method itself), with the type
# each must have
PROJECTOR_OPTIONS = {f.name: {"float": float, "int": int, "bool": bool}[f.type]
                     for f in dataclasses.fields(ProjectorConfig) if f.name not in ("space", "record_at")}
