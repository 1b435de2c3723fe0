"""What an editing run starts from: the final inversions in a Lab's store, reference samples, the view."""

from __future__ import annotations

import torch

from ..facts.catalog import SAMPLES
from ..facts.errors import UsageError
from ..mini.attributes import load_regressor
from .directions import mapped_samples

# SAMPLES (``catalog``) names the reference rows: edits of GAN samples, where the directions are fitted
__all__ = ["SAMPLES", "attribute_judge", "editing_generator", "final_codes", "sample_codes", "view"]


def final_codes(lab, methods: list[str]) -> tuple[dict, list[str]]:
    """(method -> final-step w+ codes [N, n_styles, D] float32, the N image names), from the store.

    Every method must hold the same images in the same order (one test set).
    """
    codes, names = {}, None
    for m in methods:
        stored = lab.latents(m)
        got = [str(n) for n in stored["names"]]
        if names is not None and got != names:
            raise ValueError(f"{m} holds other images than {methods[0]} in its store {lab.store(lab.spec(m))}")
        names = got
        codes[m] = torch.from_numpy(stored["latents"][-1]).float()
    return codes, names or []


def sample_codes(generator, n: int, seed: int) -> tuple[torch.Tensor, list[str]]:
    """``n`` mapped samples as w+ codes [n, n_styles, D] (float32) and their names ``sample_<i>``."""
    w = mapped_samples(generator, n, seed).float()
    return w.unsqueeze(1).repeat(1, generator.n_latent, 1), [f"sample_{i:04d}" for i in range(n)]


def view(domain) -> dict:
    """How edited images are rendered to match the inversions: pooled size and kept rows (cars)."""
    g = domain.geometry
    return {"pool_size": g.pool_size, "crop": g.crop_pooled}


def attribute_judge(lab):
    """The domain's attribute regressor (``Domain.judge``) when it has one and its file was found, else None."""
    key = lab.domain.judge
    return load_regressor(lab.checkpoints[key]) if key and lab.has(key) else None


def editing_generator(lab):
    """The domain's generator: its own file, else the decoder of a ReStyle-e4e / ReStyle-pSp checkpoint."""
    for key in ("generator", "restyle_e4e", "restyle_psp"):
        if lab.has(key):
            return lab.generator(key)[0], key
    raise UsageError(f"editing needs the domain's generator; {lab.describe_missing()}")
