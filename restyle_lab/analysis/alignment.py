"""Generator alignment (supplementary Fig. 5) and a number for it.

The paper shows, by eye, that one w gives semantically similar images in the FFHQ and the
toonify generator. Here the same claim is measured: the similarity of same-w pairs
against pairs whose w were shuffled, summarised as an AUC (the probability that a same-w
pair is more similar than a shuffled pair; 0.5 = no alignment, 1 = perfect).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..facts.metric_names import LPIPS, LUMA_LOWPASS16, SAME_W, SHUFFLED, label
from ..facts.palette import GREY, RED
from ..metrics.lpips_metric import lpips_distance
from ..records.images import to_uint8
from .visual import panels_figsize, themed_plot

SIMILARITIES = {
    LUMA_LOWPASS16: ("Pearson correlation of the two images' luminance, average-pooled to 16x16 "
                               "(layout: pose, head shape and placement, hair mass); higher = more similar", True),
    LPIPS: ("LPIPS (alex, v0.1) distance; lower = more similar", False),
}


@torch.no_grad()
def alignment_samples(g1, g2, n: int = 16, seed: int = 0, truncation: float = 0.7, w_avg=None):
    """The same n codes w = g1.mapping(z) (truncated towards w_avg) through both generators.

    Returns (images of g1, images of g2, w [n, D]); images [n, 3, H, W] in [-1, 1].
    """
    p = next(g1.parameters())
    z = torch.randn(n, g1.style_dim, generator=torch.Generator().manual_seed(seed)).to(p.device, p.dtype)
    w = g1.style(z)
    if truncation < 1:
        centre = g1.mean_latent(10_000, seed=seed)[0] if w_avg is None else w_avg.to(p.device, p.dtype)
        w = centre + truncation * (w - centre)
    a, _ = g1([w], input_is_latent=True, randomize_noise=False)
    b, _ = g2([w.to(next(g2.parameters()).dtype)], input_is_latent=True, randomize_noise=False)
    return a.cpu(), b.cpu(), w.cpu()


def luma_lowpass_pearson(a: torch.Tensor, b: torch.Tensor, size: int = 16) -> torch.Tensor:
    """Per pair: Pearson correlation of 0.299R+0.587G+0.114B average-pooled to size x size."""
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64).view(1, 3, 1, 1)

    def flat(x):
        y = (x.double() * weights).sum(1, keepdim=True)
        y = F.adaptive_avg_pool2d(y, (size, size)).flatten(1)
        y = y - y.mean(1, keepdim=True)
        return y / y.norm(dim=1, keepdim=True).clamp_min(1e-12)

    return (flat(a) * flat(b)).sum(1)


def alignment_scores(img1, img2, similarity: str = LUMA_LOWPASS16, n_shuffles: int = 5, seed: int = 0,
                     lpips_model=None) -> pd.DataFrame:
    """Rows (pair: same_w | shuffled, i, j, value) for every same-w pair and n_shuffles derangements."""
    if similarity not in SIMILARITIES:
        raise KeyError(f"similarity must be one of {list(SIMILARITIES)}. Got: {similarity!r}")
    n = img1.shape[0]

    def score(idx_a, idx_b):
        a, b = img1[idx_a], img2[idx_b]
        if similarity == LUMA_LOWPASS16:
            return luma_lowpass_pearson(a, b)
        return lpips_distance(lpips_model, a, b)

    rows = [(SAME_W, i, i, v) for i, v in enumerate(score(list(range(n)), list(range(n))).tolist())]
    rng = np.random.default_rng(seed)
    for _ in range(n_shuffles):
        perm = rng.permutation(n)
        while n > 1 and (perm == np.arange(n)).any():  # derangement: no pair keeps its own w
            perm = rng.permutation(n)
        rows += [(SHUFFLED, i, int(j), v) for i, j, v in zip(range(n), perm, score(list(range(n)), perm.tolist()).tolist())]
    df = pd.DataFrame(rows, columns=["pair", "i", "j", "value"])
    df["similarity"] = similarity
    return df


def alignment_summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Means, spreads and the AUC (P(a same-w pair is more similar than a shuffled one), ties count half)."""
    similarity = scores.similarity.iloc[0]
    higher_is_similar = SIMILARITIES[similarity][1]
    same = scores[scores.pair == SAME_W].value.to_numpy()
    shuf = scores[scores.pair == SHUFFLED].value.to_numpy()
    diff = same[:, None] - shuf[None, :]
    if not higher_is_similar:
        diff = -diff
    auc = float((diff > 0).mean() + 0.5 * (diff == 0).mean())
    return pd.DataFrame([{"similarity": similarity, "definition": SIMILARITIES[similarity][0],
                          "same_w_mean": float(same.mean()), "same_w_std": float(same.std(ddof=1)),
                          "shuffled_mean": float(shuf.mean()), "shuffled_std": float(shuf.std(ddof=1)),
                          "auc_same_vs_shuffled": auc, "n_same": len(same), "n_shuffled": len(shuf)}])


def plot_alignment_pairs(img1, img2, labels=("generator 1", "generator 2"), n_show: int = 8):
    import matplotlib.pyplot as plt

    n = min(n_show, img1.shape[0])
    fig, axes = plt.subplots(2, n, figsize=(1.25 * n, 2.7), squeeze=False)
    for k, (imgs, row_label) in enumerate(zip((img1, img2), labels)):
        pics = to_uint8(imgs[:n])
        for i in range(n):
            axes[k][i].imshow(pics[i])
            axes[k][i].set_xticks([])
            axes[k][i].set_yticks([])
        axes[k][0].set_ylabel(row_label, fontsize=8)
    fig.tight_layout(pad=0.2)
    return fig


@themed_plot
def plot_alignment_scores(scores: pd.DataFrame, summary: pd.DataFrame):
    """Densities of the same-w and shuffled-pair similarities (one shared set of bins)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=panels_figsize())
    bins = np.linspace(scores.value.min(), scores.value.max(), 25)
    shown = scores.assign(pair=scores.pair.map(label))  # the pairs by their display names (the table keeps keys)
    sns.histplot(data=shown, x="value", hue="pair", hue_order=[label(SHUFFLED), label(SAME_W)], bins=bins,
                 stat="density", common_norm=False, palette={label(SHUFFLED): GREY, label(SAME_W): RED}, alpha=0.6,
                 ax=ax)
    s = summary.iloc[0]
    ax.set_xlabel(label(s.similarity))
    ax.set_ylabel("density")
    ax.set_title(f"AUC same-w vs shuffled = {s.auc_same_vs_shuffled:.2f}", fontsize=9)
    fig.tight_layout()
    return fig
