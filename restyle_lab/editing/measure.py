"""Edits rendered and measured: tidy per-image tables, then per-method summaries.

Measured with an attribute judge (a model mapping images to attributes; on mini the shipped
regressor, ``restyle_lab.mini.attributes``), for each inversion method, edit, image and strength:

- the value of every attribute of the edited image (``measure_edits``' first table);
- how much the image changes outside the region the edited attribute owns (its second table), where
  a mask of that region is known (mini: from the renderer, ``editing.mini.attribute_regions``).

``edit_success`` turns those into one row per (method, edit, image): the slope of the target
attribute against the strength (attribute standard deviations per strength unit), the mean
absolute slope of every other attribute (entanglement), and the drift at the largest strength.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .directions import Direction, edit

ATTRIBUTE_COLUMNS = ["method", "edit", "target", "image", "strength", "attribute", "value", "value_std"]
DRIFT_COLUMNS = ["method", "edit", "target", "image", "strength", "mse_outside", "outside_fraction", "mse_all"]
SUCCESS_MEASURES = {
    "target_slope": "target attribute change per strength unit (attribute std / direction sigma)",
    "off_target_slope": "mean |change| of every other attribute per strength unit (entanglement)",
    "drift_mse": "MSE ([-1, 1]) outside the edited attribute's region at the largest |strength| (identity drift)",
}


@torch.no_grad()
def render(generator, codes: torch.Tensor, pool_size: int | None = None, crop=None, batch: int = 32) -> torch.Tensor:
    """Images [M, 3, h, w] (float32, CPU, [-1, 1]) of w+ codes [M, n_styles, D], noise fixed, pooled to
    ``pool_size`` and rows ``crop`` kept, as the inversions were measured."""
    p = next(generator.parameters())
    out = []
    for start in range(0, len(codes), batch):
        img, _ = generator([codes[start: start + batch].to(p.device, p.dtype)], input_is_latent=True,
                           randomize_noise=False)
        if pool_size and img.shape[-1] != pool_size:
            img = F.adaptive_avg_pool2d(img, pool_size)
        if crop:
            img = img[:, :, crop[0]: crop[1]]
        out.append(img.float().cpu())
    return torch.cat(out)


def edit_images(generator, codes: torch.Tensor, direction: Direction, strengths, **view) -> torch.Tensor:
    """[A, N, 3, h, w]: ``codes`` [N, n_styles, D] edited at each strength and rendered."""
    edited = edit(codes, direction, strengths)
    a, n = edited.shape[:2]
    return render(generator, edited.flatten(0, 1), **view).unflatten(0, (a, n))


def measure_edits(generator, judge, codes: dict, directions: list[Direction], strengths, image_names: dict,
                  regions: dict | None = None, **view) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(attribute rows, drift rows) for every method in ``codes`` and every direction.

    codes: method -> w+ [N, n_styles, D]; image_names: method -> N names; judge: images [M, 3, h, w]
    -> attributes [M, K] with ``config.attributes`` names and ``std`` [K] buffers (the scale of
    ``value_std``). regions: (image name, attribute) -> bool [h, w] mask of the pixels the
    attribute owns; drift is NaN where no mask is given.
    """
    strengths = [float(s) for s in strengths]
    if 0.0 not in strengths:
        raise ValueError(f"strengths must include 0 (the unedited inversion). Got: {strengths}")
    names_k = list(judge.config.attributes)
    std = judge.std.double().cpu().numpy()
    zero = strengths.index(0.0)
    attr_frames, drift_rows = [], []
    for method, w in codes.items():
        names = [str(n) for n in image_names[method]]
        for d in directions:
            images = edit_images(generator, w, d, strengths, **view)  # [A, N, 3, h, w]
            values = judge.predict(images.flatten(0, 1)).double().cpu().numpy().reshape(len(strengths), len(names), -1)
            a_idx, n_idx, k_idx = np.meshgrid(np.arange(len(strengths)), np.arange(len(names)), np.arange(len(names_k)),
                                              indexing="ij")
            attr_frames.append(pd.DataFrame({
                "method": method, "edit": d.name, "target": d.target, "image": np.array(names)[n_idx.ravel()],
                "strength": np.array(strengths)[a_idx.ravel()], "attribute": np.array(names_k)[k_idx.ravel()],
                "value": values.ravel(), "value_std": (values / std).ravel()}))
            sq = (images - images[zero: zero + 1]).pow(2).mean(2)  # [A, N, h, w]
            for i, name in enumerate(names):
                mask = None if regions is None else regions.get((name, d.target))
                keep = None if mask is None else ~torch.as_tensor(mask, dtype=torch.bool)
                for a, s in enumerate(strengths):
                    drift_rows.append({
                        "method": method, "edit": d.name, "target": d.target, "image": name, "strength": s,
                        "mse_outside": float(sq[a, i][keep].mean()) if keep is not None and keep.any() else np.nan,
                        "outside_fraction": float(keep.float().mean()) if keep is not None else np.nan,
                        "mse_all": float(sq[a, i].mean())})
    return pd.concat(attr_frames, ignore_index=True)[ATTRIBUTE_COLUMNS], pd.DataFrame(drift_rows, columns=DRIFT_COLUMNS)


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    x = x - x.mean()
    return float((x * (y - y.mean())).sum() / (x * x).sum())


def edit_success(attribute_rows: pd.DataFrame, drift_rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, edit, image): target_slope, off_target_slope, drift_mse (see SUCCESS_MEASURES)."""
    out = []
    for (method, name, target, image), rows in attribute_rows.groupby(["method", "edit", "target", "image"],
                                                                       sort=False, dropna=False):
        slopes = {a: _slope(r.strength.to_numpy(), r.value_std.to_numpy()) for a, r in rows.groupby("attribute")}
        if target not in slopes:
            raise ValueError(f"edit {name!r}: target attribute {target!r} is not among the judged {sorted(slopes)}")
        others = [abs(v) for a, v in slopes.items() if a != target]
        out.append({"method": method, "edit": name, "target": target, "image": image,
                    "target_slope": slopes[target], "off_target_slope": float(np.mean(others))})
    table = pd.DataFrame(out)
    drift = drift_rows.assign(abs_strength=drift_rows.strength.abs())
    top = drift[drift.abs_strength == drift.abs_strength.max()]
    top = top.groupby(["method", "edit", "image"], sort=False)["mse_outside"].mean().rename("drift_mse")
    return table.merge(top.reset_index(), on=["method", "edit", "image"], how="left")


def _interval(v: np.ndarray) -> tuple[float, float, float]:
    """(mean, standard error, half-width of the 95% t-interval) of values v."""
    from scipy import stats

    n = len(v)
    mean = float(v.mean()) if n else np.nan
    sem = float(v.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan
    return mean, sem, float(stats.t.ppf(0.975, n - 1) * sem) if n > 1 else np.nan


def summarise(per_image: pd.DataFrame, by=("method", "edit"), measures=tuple(SUCCESS_MEASURES)) -> pd.DataFrame:
    """Mean, standard error, 95% t-interval and count of each measure per group (long format).

    The unit is the image: when a group spans several edits (``by=("method",)``), each image's values are
    averaged over the edits first, so the interval is over independent images, not (edit, image) pairs.
    """
    by = list(by)
    rows = []
    for key, g in per_image.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        for m in measures:
            v = g.groupby("image", sort=False)[m].mean().dropna().to_numpy()
            mean, sem, half = _interval(v)
            rows.append({**dict(zip(by, key)), "measure": m, "mean": mean, "sem": sem, "ci95_low": mean - half,
                         "ci95_high": mean + half, "n_images": len(v)})
    return pd.DataFrame(rows)


def compare(per_image: pd.DataFrame, reference: str, measures=tuple(SUCCESS_MEASURES)) -> pd.DataFrame:
    """Every method against ``reference`` on the same images, per measure: both means, their ratio, and the
    mean paired difference (method - reference) with its 95% t-interval; each image's values are averaged
    over the edits first. Methods without those images (GAN samples) are left out."""
    per = per_image.groupby(["method", "image"], sort=False)[list(measures)].mean()
    ref = per.loc[reference]
    rows = []
    for method in per.index.get_level_values(0).unique():
        if method == reference:
            continue
        mine = per.loc[method]
        both = mine.index.intersection(ref.index)
        if len(both) == 0:
            continue
        for m in measures:
            a, b = mine.loc[both, m].dropna(), ref.loc[both, m].dropna()
            common = a.index.intersection(b.index)
            if len(common) == 0:
                continue
            mean, sem, half = _interval((a[common] - b[common]).to_numpy())
            rows.append({"method": method, "reference": reference, "measure": m, "method_mean": float(a[common].mean()),
                         "reference_mean": float(b[common].mean()),
                         "ratio": float(a[common].mean() / b[common].mean()), "difference": mean,
                         "difference_ci95_low": mean - half, "difference_ci95_high": mean + half,
                         "n_images": len(common)})
    return pd.DataFrame(rows)
