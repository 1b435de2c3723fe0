"""Editing on the mini domain, where attributes have ground truth.

- ``fit_mini_directions``: InterFaceGAN directions for mini attributes, fitted on mapped w
  samples labelled by the attribute regressor's reading of their images (samples have no
  ground truth; the regressor was trained on renders, whose attributes are known).
- ``attribute_regions``: the pixels an attribute owns in a test face, from the renderer: the
  face re-rendered with that attribute swept over its sampling range, every pixel that changes.
  Identity drift is the change of an edited inversion outside that region.
"""

from __future__ import annotations

import csv
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..mini.attributes import accuracy_table
from ..mini.render import FaceAttributes, render
from .directions import Direction, calibrate, mapped_samples
from .inputs import sample_codes
from .interfacegan import fit_interfacegan
from .measure import edit_images, render as render_codes

MINI_EDITS = ("smile", "yaw", "hair_length", "eye_size")


def judged_samples(generator, judge, n: int, seed: int, batch: int = 64) -> tuple[torch.Tensor, np.ndarray]:
    """(w [n, D] mapped samples, the judge's attributes of their images [n, K])."""
    w = mapped_samples(generator, n, seed)
    codes = w.float().unsqueeze(1).repeat(1, generator.n_latent, 1)
    values = []
    for start in range(0, n, batch):
        values.append(judge.predict(render_codes(generator, codes[start: start + batch])).double().numpy())
    return w, np.concatenate(values)


def fit_mini_directions(generator, judge, attributes=MINI_EDITS, n_samples: int = 2000, seed: int = 0,
                        rows="all", classifier: str = "svm", ratio: float = 0.25) -> list[Direction]:
    """One calibrated InterFaceGAN direction per attribute (``target`` = the attribute)."""
    known = list(judge.config.attributes)
    unknown = [a for a in attributes if a not in known]
    if unknown:
        raise ValueError(f"the judge reads {known}. Got: {unknown}")
    w, values = judged_samples(generator, judge, n_samples, seed)
    out = []
    for a in attributes:
        d = fit_interfacegan(w, values[:, known.index(a)], name=a, n_styles=generator.n_latent, rows=rows,
                             ratio=ratio, classifier=classifier, seed=seed, target=a)
        d = calibrate(d, w)
        out.append(replace(d, meta={**d.meta, "labels": "attribute regressor on the samples' images",
                                    "sample_seed": seed}))
    return out


def test_attributes(data_root) -> dict[str, FaceAttributes]:
    """image name -> FaceAttributes, from the mini test set's ``attributes.csv``."""
    path = Path(data_root) / "attributes.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing; the mini test set (restyle-lab mini-data) writes it")
    fields = FaceAttributes.__dataclass_fields__
    with open(path, newline="") as fh:
        return {row["image"]: FaceAttributes(**{k: float(row[k]) for k in fields}) for row in csv.DictReader(fh)}


def attribute_regions(attrs: FaceAttributes, attribute: str, lo: float, hi: float, size: int = 64, n_values: int = 5,
                      threshold: float = 12 / 255, dilate: int = 2) -> np.ndarray:
    """bool [size, size]: pixels that change when ``attribute`` sweeps [lo, hi] in this face's render.

    A pixel changes when its channel-mean difference from the face's own render exceeds
    ``threshold`` (in [0, 1]) at any of ``n_values`` evenly spaced values; the mask is grown by
    ``dilate`` pixels to cover the anti-aliased edge.
    """
    base = render(attrs, size=size, noise_seed=0).astype(np.float64) / 255
    owned = np.zeros((size, size), bool)
    for v in np.linspace(lo, hi, n_values):
        other = render(replace(attrs, **{attribute: float(v)}), size=size, noise_seed=0).astype(np.float64) / 255
        owned |= np.abs(other - base).mean(-1) > threshold
    if dilate:
        t = torch.from_numpy(owned.astype(np.float32))[None, None]
        owned = F.max_pool2d(t, 2 * dilate + 1, stride=1, padding=dilate)[0, 0].numpy() > 0
    return owned


def regions_for(test_attrs: dict, names, attributes, judge, size: int = 64) -> dict:
    """(image name, attribute) -> region mask for each named test face, each attribute swept over its
    sampling range: uniform sampling, so mean +- sqrt(3) std of the judge's training targets."""
    known = list(judge.config.attributes)
    out = {}
    for a in attributes:
        k = known.index(a)
        mean, std = float(judge.mean[k]), float(judge.std[k])
        lo, hi = mean - math.sqrt(3) * std, mean + math.sqrt(3) * std
        for name in names:
            out[(str(name), a)] = attribute_regions(test_attrs[str(name)], a, lo, hi, size=size)
    return out


def inversion_attribute_accuracy(attribute_rows, test_attrs: dict) -> "pd.DataFrame":
    """How well each method's unedited inversions keep the true attributes of the test faces, as the judge
    reads them: R^2 and MAE per (method, attribute) at strength 0 (methods without truth are skipped).
    It folds the judge's own error in; the judge alone is ``mini.attributes.held_out_accuracy``."""
    base = attribute_rows[attribute_rows.strength == 0]
    base = base[base.edit == base.edit.iloc[0]]
    out = []
    for method, rows in base.groupby("method", sort=False):
        table = rows.pivot(index="image", columns="attribute", values="value")
        if not set(table.index) <= set(test_attrs):
            continue
        attrs = list(table.columns)
        true = np.array([[getattr(test_attrs[name], a) for a in attrs] for name in table.index])
        out.append(accuracy_table(table.to_numpy(), true, attrs).assign(method=method))
    return pd.concat(out, ignore_index=True)[["method", "attribute", "r2", "mae", "mae_over_std", "n"]]


def label_targets(directions: list[Direction], generator, judge, n_samples: int = 64, seed: int = 2) -> list[Direction]:
    """Directions without a ``target`` (GANSpace, SeFa) get the attribute they change most on fresh samples,
    and are turned to increase it; directions with a target are returned as they are."""
    codes, _ = sample_codes(generator, n_samples, seed)
    out = []
    for d in directions:
        if d.target is not None:
            out.append(d)
            continue
        lo, hi = (judge.predict(im).double() for im in edit_images(generator, codes, d, [-1, 1]))
        change = ((hi - lo) / 2 / judge.std.double().cpu()).mean(0)  # [K], attribute std per unit strength
        k = int(change.abs().argmax())
        sign = 1.0 if change[k] >= 0 else -1.0
        out.append(replace(d, vector=d.vector * sign, target=judge.config.attributes[k],
                           meta={**d.meta, "target_from": f"largest judged change on {n_samples} samples (seed {seed})",
                                 "flipped": sign < 0}))
    return out
