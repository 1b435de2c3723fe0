"""How well a mini generator covers its data, and how much of each face an inversion keeps, read by the judge.

The judge (``mini.attributes``) reads 12 attributes off an image. Three measures follow from it:

* per attribute, the 1-D Wasserstein distance between the judge's readings of N GAN samples (z ~ N(0, I),
  no truncation) and of N test-split renders, in units of the renders' standard deviation of that reading;
  its floor is the same distance between two disjoint sets of N renders (test faces 0..N-1 against
  N..2N-1);
* a Frechet distance between Gaussians fitted to the judge's penultimate features (the hidden layer before
  its output), FID's formula in this domain's own feature space, with the same split-half floor;
* for inversions stored by ``evaluate``: R^2 of judge(inversion) against judge(input), per attribute, method
  and step: 1 is every reading kept, 0 no better than the test set's mean, below 0 worse.

Every table is tidy (one row per measure, attribute, method, step) and numeric.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..facts.domains import DOMAINS
from ..facts.errors import UsageError
from ..records.data import image_folder_for_domain
from ..records.files import atomic_write_text
from ..records.images import from_uint8
from ..records.store import read_latents, read_provenance
from .attributes import AttributeRegressor
from .render import render_batch

DISTRIBUTION_COLUMNS = ["attribute", "wasserstein_std", "floor_wasserstein_std", "samples_std", "data_std"]
SUMMARY_COLUMNS = ["measure", "value", "floor"]
INVERSION_COLUMNS = ["method", "step", "attribute", "r2", "n"]


@torch.no_grad()
def judge_readings(judge: AttributeRegressor, images: torch.Tensor, batch: int = 250) -> tuple[np.ndarray, np.ndarray]:
    """(attributes [N, A], penultimate features [N, H]) of images [N, 3, 64, 64] in [-1, 1], float64."""
    p = judge.mean
    hidden = judge.body[:-1]
    attrs, feats = [], []
    for start in range(0, len(images), batch):
        x = images[start: start + batch].to(p.device, p.dtype)
        if x.shape[-1] != judge.config.image_size:
            x = F.adaptive_avg_pool2d(x, judge.config.image_size)
        f = hidden(x)
        feats.append(f)
        attrs.append(judge.body[-1](f) * judge.std + judge.mean)
    return torch.cat(attrs).double().cpu().numpy(), torch.cat(feats).double().cpu().numpy()


def wasserstein_1d(a, b) -> float:
    """W1 between the empirical distributions of 1-D samples a and b: the area between their CDFs."""
    a, b = np.sort(np.asarray(a, np.float64)), np.sort(np.asarray(b, np.float64))
    if a.ndim != 1 or b.ndim != 1 or not len(a) or not len(b):
        raise ValueError(f"expected two non-empty 1-D samples. Got: shapes {a.shape} and {b.shape}")
    grid = np.sort(np.concatenate([a, b]))
    cdf_a = np.searchsorted(a, grid[:-1], side="right") / len(a)
    cdf_b = np.searchsorted(b, grid[:-1], side="right") / len(b)
    return float(np.sum(np.abs(cdf_a - cdf_b) * np.diff(grid)))


def frechet_distance(f1, f2) -> float:
    """|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) between Gaussians fitted to features [N1, H] and [N2, H].

    Tr((S1 S2)^(1/2)) is the sum of the square roots of the eigenvalues of S1^(1/2) S2 S1^(1/2), which is
    symmetric, so only symmetric eigendecompositions are needed.
    """
    f1, f2 = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1] or min(len(f1), len(f2)) < 2:
        raise ValueError(f"expected features [N1, H] and [N2, H] with N >= 2. Got: {f1.shape} and {f2.shape}")
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    vals, vecs = np.linalg.eigh(s1)
    root1 = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    cross = np.linalg.eigvalsh(root1 @ s2 @ root1)
    trace = np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(cross, 0, None)).sum()
    return float(np.sum((mu1 - mu2) ** 2) + max(trace, 0.0))


def distribution_table(samples: np.ndarray, data: np.ndarray, floor_data: np.ndarray, attributes) -> pd.DataFrame:
    """Per attribute: W1(samples, data) and W1(floor_data, data) in units of data's std, and both stds.

    samples, data, floor_data: readings [N, A]; floor_data is a second, disjoint set drawn like data.
    """
    std = data.std(0)
    rows = [{"attribute": a, "wasserstein_std": wasserstein_1d(samples[:, k], data[:, k]) / std[k],
             "floor_wasserstein_std": wasserstein_1d(floor_data[:, k], data[:, k]) / std[k],
             "samples_std": samples[:, k].std(), "data_std": std[k]} for k, a in enumerate(attributes)]
    return pd.DataFrame(rows, columns=DISTRIBUTION_COLUMNS)


def summary_table(dist: pd.DataFrame, frechet: float, frechet_floor: float) -> pd.DataFrame:
    """The worst and mean Wasserstein distance over the attributes, and the Frechet distance, with floors."""
    return pd.DataFrame([
        {"measure": "worst_wasserstein_std", "value": dist.wasserstein_std.max(),
         "floor": dist.floor_wasserstein_std.max()},
        {"measure": "mean_wasserstein_std", "value": dist.wasserstein_std.mean(),
         "floor": dist.floor_wasserstein_std.mean()},
        {"measure": "frechet_judge_features", "value": frechet, "floor": frechet_floor},
    ], columns=SUMMARY_COLUMNS)


@torch.no_grad()
def generator_samples(generator, n: int, seed: int = 0, batch: int = 250) -> torch.Tensor:
    """n images [n, 3, H, W] in [-1, 1] from z ~ N(0, I) (seeded, no truncation, random noise inputs)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, n, batch):
        z = torch.randn(min(batch, n - start), generator.style_dim, generator=gen)
        torch.manual_seed(seed * 1_000_003 + start)  # the noise inputs
        img, _ = generator([z])
        out.append(img.clamp(-1, 1))
    return torch.cat(out)


def test_renders(start: int, n: int) -> torch.Tensor:
    """Photo renders of test faces start..start+n-1, [n, 3, 64, 64] in [-1, 1]."""
    return from_uint8(render_batch("test", range(start, start + n)))


def coverage(generator, judge: AttributeRegressor, n: int = 1000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-attribute table, summary table) of ``generator`` against the test renders, read by ``judge``."""
    sample_attrs, sample_feats = judge_readings(judge, generator_samples(generator, n, seed))
    data_attrs, data_feats = judge_readings(judge, test_renders(0, n))
    floor_attrs, floor_feats = judge_readings(judge, test_renders(n, n))
    dist = distribution_table(sample_attrs, data_attrs, floor_attrs, judge.config.attributes)
    return dist, summary_table(dist, frechet_distance(sample_feats, data_feats),
                               frechet_distance(floor_feats, data_feats))


def r2_per_attribute(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """1 - SSE / SST per column of readings [N, A]."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    return 1 - ((pred - true) ** 2).sum(0) / ((true - true.mean(0)) ** 2).sum(0)


def inversion_table(judge: AttributeRegressor, inversions: dict) -> pd.DataFrame:
    """R^2 of judge(inversion) against judge(input) per method, step and attribute.

    inversions: method -> (inputs [N, 3, H, W] in [-1, 1], {step: inversions [N, 3, H', W'] of the same faces}).
    """
    rows = []
    for method, (inputs, steps) in inversions.items():
        truth, _ = judge_readings(judge, inputs)
        for step, images in steps.items():
            if len(images) != len(inputs):
                raise ValueError(f"{method} step {step}: {len(images)} inversions for {len(inputs)} inputs")
            pred, _ = judge_readings(judge, images)
            rows += [{"method": method, "step": int(step), "attribute": a, "r2": r, "n": len(inputs)}
                     for a, r in zip(judge.config.attributes, r2_per_attribute(pred, truth))]
    return pd.DataFrame(rows, columns=INVERSION_COLUMNS)


def stored_inversions(run_dir, methods=None) -> dict:
    """What ``inversion_table`` reads, from a run ``evaluate`` wrote: each method's stored step images and its
    inputs, read again from the run's data folder by name."""
    prov = read_provenance(run_dir)
    known = list(prov.get("methods") or {})
    methods = list(methods or known)
    unknown = [m for m in methods if m not in known]
    if unknown:
        raise UsageError(f"{run_dir}: no method {', '.join(map(repr, unknown))} stored; it has {', '.join(known)}")
    folder = image_folder_for_domain(prov["data_root"], DOMAINS[prov["domain"]])
    index = {name: i for i, name in enumerate(folder.names)}
    out = {}
    for m in methods:
        lat = read_latents(run_dir, m)
        if "images" not in lat:
            raise UsageError(f"{run_dir}: method {m!r} was evaluated with --no-save-images; its inversions cannot "
                             "be read: evaluate it again into a new --out without that option")
        missing = [n for n in lat["names"] if n not in index]
        if missing:
            raise UsageError(f"{run_dir}: {len(missing)} input(s) of {m!r} (e.g. {missing[0]}) are no longer in "
                             f"{prov['data_root']}; point the run at its data again")
        _, inputs, _ = folder.load_batch([index[n] for n in lat["names"]])
        if inputs is None or len(inputs) != len(lat["names"]):
            raise UsageError(f"{prov['data_root']}: some inputs of {m!r} are unreadable now")
        out[m] = (inputs, {int(s): from_uint8(lat["images"][k]) for k, s in enumerate(lat["steps"])})
    return out


def write_tables(out_dir, tables: dict) -> list[Path]:
    """Each table as CSV under ``out_dir`` (name -> DataFrame); returns the paths."""
    paths = []
    for name, table in tables.items():
        path = Path(out_dir) / f"{name}.csv"
        atomic_write_text(path, table.to_csv(index=False))
        paths.append(path)
    return paths
