"""InterFaceGAN directions: the published FFHQ files, and a linear fit for any generator.

The published files (the ReStyle / e4e editing code's ``editing/interfacegan_directions``) are
``torch.save``d tensors, not dicts, and not all saved from the same device:

=========  ==============  ======================================  ================
file       shape           content                                 storage device
=========  ==============  ======================================  ================
age.pt     (1, 512)        unit vector in W                        cpu
smile.pt   (1, 512)        unit vector in W                        cpu
pose.pt    (1, 18, 512)    the same unit vector in each of 18 rows cuda:0
=========  ==============  ======================================  ================

``pose.pt`` cannot be read on a CPU-only machine without ``map_location``; ``load_interfacegan``
always reads with ``map_location="cpu", weights_only=True``. The official editor adds
``factor * direction`` to w+ codes (a (1, 512) vector broadcasts over the 18 rows).

``fit_interfacegan`` finds such a direction where none is published: the unit normal of a linear
classifier (linear SVM or logistic regression, scikit-learn) separating the codes with the
highest scores from those with the lowest, as InterFaceGAN does with its attribute predictors.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..facts.errors import CheckpointError
from ..records.files import read_torch
from .directions import Direction, parse_rows

PUBLISHED = ("age", "smile", "pose")


class DirectionFileError(CheckpointError):
    """A direction file that cannot be read, or whose shape does not fit the generator."""


def load_interfacegan(path, n_styles: int | None = None, style_dim: int | None = None, name: str | None = None,
                      rows="all") -> Direction:
    """A published InterFaceGAN file as a ``Direction`` (latent units: ``sigma`` is None).

    Accepts (D,), (1, D), (n_styles, D) and (1, n_styles, D) tensors; ``n_styles`` and
    ``style_dim``, when given, are checked against the file.
    """
    path = Path(path)
    try:
        t = read_torch(path)
    except CheckpointError as err:
        raise DirectionFileError(str(err)) from None
    expected = "a tensor of shape (1, D) (age.pt, smile.pt) or (1, n_styles, D) (pose.pt)"
    if not isinstance(t, torch.Tensor):
        raise DirectionFileError(f"{path}: expected {expected}. Got: a {type(t).__name__}")
    shape = tuple(t.shape)
    if t.ndim == 3 and shape[0] == 1:
        t = t[0]
    elif t.ndim == 2 and shape[0] == 1:
        t = t[0]
    if t.ndim not in (1, 2) or not t.is_floating_point():
        raise DirectionFileError(f"{path}: expected {expected}. Got: {t.dtype} of shape {shape}")
    if style_dim is not None and t.shape[-1] != style_dim:
        raise DirectionFileError(f"{path}: a {t.shape[-1]}-d direction; this generator's w is {style_dim}-d. "
                                 f"Got: shape {shape}")
    if n_styles is not None and t.ndim == 2 and t.shape[0] != n_styles:
        raise DirectionFileError(f"{path}: {t.shape[0]} style rows; this generator has {n_styles}. Got: shape {shape}")
    n = n_styles if n_styles is not None else (t.shape[0] if t.ndim == 2 else None)
    if n is None:
        raise DirectionFileError(f"{path}: a single w vector; pass n_styles to say which rows it moves")
    norms = t.float().norm(dim=-1)
    return Direction(name=name or path.stem, vector=t.float().contiguous(), rows=parse_rows(rows, n),
                     source="interfacegan_file",
                     meta={"file": str(path), "file_shape": list(shape), "norm": round(float(norms.mean()), 6)})


def load_interfacegan_dir(folder, names, n_styles: int, style_dim: int, rows="all") -> list[Direction]:
    """``<folder>/<name>.pt`` for each name (a missing file is an error that lists what is there)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DirectionFileError(f"{folder}: not a folder of InterFaceGAN direction files ({', '.join(PUBLISHED)})")
    out = []
    for name in names:
        path = folder / f"{name}.pt"
        if not path.exists():
            have = sorted(p.stem for p in folder.glob("*.pt"))
            raise DirectionFileError(f"{path}: missing; {folder} holds {have}")
        out.append(load_interfacegan(path, n_styles=n_styles, style_dim=style_dim, name=name, rows=rows))
    return out


def fit_interfacegan(w: torch.Tensor, scores, name: str, n_styles: int, rows="all", ratio: float = 0.25,
                     classifier: str = "svm", C: float = 0.1, val_fraction: float = 0.3, seed: int = 0,
                     target: str | None = None) -> Direction:
    """The unit normal of a linear boundary between high- and low-scoring codes.

    w: [N, D] codes (mapped samples); scores: [N] an attribute of each code's image. The top and
    bottom ``ratio`` of the codes by score are the two classes; a ``val_fraction`` of them is held
    out, and the held-out accuracy is recorded in ``meta``. The normal points towards higher scores.
    classifier: ``"svm"`` (``LinearSVC``) or ``"logistic"`` (``LogisticRegression``), both with inverse
    regularisation ``C`` (0.1: on mini's 128-d w with a few thousand codes, held-out accuracy is as
    good as with C = 1 or better).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    x = np.asarray(w.double().cpu() if isinstance(w, torch.Tensor) else w, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if x.ndim != 2 or len(x) != len(s):
        raise ValueError(f"expected codes [N, D] and scores [N]. Got: {x.shape} and {s.shape}")
    if not 0 < ratio <= 0.5:
        raise ValueError(f"ratio must be in (0, 0.5]. Got: {ratio}")
    k = int(len(s) * ratio)
    if k < 4:
        raise ValueError(f"{len(s)} codes with ratio {ratio} leave {k} per class; need at least 4")
    order = np.argsort(s, kind="stable")
    idx = np.concatenate([order[:k], order[-k:]])
    y = np.concatenate([np.zeros(k), np.ones(k)])
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(idx))
    n_val = int(round(len(idx) * val_fraction))
    val, train = perm[:n_val], perm[n_val:]
    centre = x.mean(0)
    xc = x[idx] - centre
    if classifier == "svm":
        model = LinearSVC(C=C, max_iter=20000, random_state=seed)
    elif classifier == "logistic":
        model = LogisticRegression(C=C, max_iter=5000)
    else:
        raise ValueError(f"classifier must be 'svm' or 'logistic'. Got: {classifier!r}")
    model.fit(xc[train], y[train])
    accuracy = float(model.score(xc[val], y[val])) if n_val else float("nan")
    normal = model.coef_.reshape(-1)
    normal = normal / np.linalg.norm(normal)
    return Direction(name=name, vector=torch.from_numpy(normal).float(), rows=parse_rows(rows, n_styles),
                     source="interfacegan_fit", target=target,
                     meta={"classifier": classifier, "C": C, "n_codes": int(len(s)), "ratio": ratio, "per_class": k,
                           "val_accuracy": round(accuracy, 4), "n_val": int(n_val), "seed": seed})


def project_out(direction: Direction, others: list[Direction]) -> Direction:
    """InterFaceGAN's conditional edit: the direction with its components along ``others`` removed
    (Gram-Schmidt on the others), renormalised; ``sigma`` must be calibrated again."""
    v = direction.mean_vector().double()
    basis = []
    for other in others:
        u = other.mean_vector().double()
        for b in basis:
            u = u - (u @ b) * b
        if u.norm() > 1e-8:
            basis.append(u / u.norm())
    for b in basis:
        v = v - (v @ b) * b
    if v.norm() < 1e-8:
        raise ValueError(f"{direction.name!r} lies in the span of {[o.name for o in others]}")
    name = f"{direction.name}|{'|'.join(o.name for o in others)}"
    return replace(direction, vector=(v / v.norm()).float(), sigma=None, name=name,
                   meta={**direction.meta, "conditioned_on": [o.name for o in others]})
