"""The training losses of the official ReStyle / pSp / e4e coaches, one function or module each.

Images are [N, 3, H, W] in [-1, 1]; latents are w+ [N, n_styles, D]. Every value is a scalar
tensor that gradients flow through (to ``y_hat`` / ``latent``; the networks inside are frozen).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# the official id_loss reads this region of a 256 px face before pooling it to ArcFace's 112 px
ID_CROP = ((35, 223), (32, 220))
MOCO_SIZE = 224


def l2_loss(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """torch's MSELoss: mean over every pixel of every image."""
    return F.mse_loss(y_hat, y)


def lpips_loss(model: nn.Module, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of the per-image LPIPS (the pSp criterion's sum / N)."""
    return model(y_hat, y, normalize=False).mean()


def w_norm_loss(latent: torch.Tensor, latent_avg: torch.Tensor | None) -> torch.Tensor:
    """pSp's WNormLoss: the mean over the batch of ||w+ - latent_avg||_F (latent_avg None: of ||w+||_F)."""
    offset = latent if latent_avg is None else latent - latent_avg
    return offset.norm(2, dim=(1, 2)).sum() / latent.shape[0]


def delta_loss(latent: torch.Tensor, stage: int, p: float = 2) -> torch.Tensor:
    """e4e's delta regulariser: the sum over i = 1..stage of mean_batch ||w_i - w_0||_p."""
    total = latent.new_zeros(())
    for i in range(1, stage + 1):
        total = total + torch.norm(latent[:, i] - latent[:, 0], p, dim=1).mean()
    return total


class SimilarityLoss(nn.Module):
    """The official ID / MoCo loss form: mean over the batch of 1 - <f(y_hat), f(y)>, f unit features of
    a frozen network, the target's features detached. ``improvement`` (logged) is
    mean(<f(y_hat), f(y)> - <f(y), f(x)>), as the official ``id_improve``."""

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, y_hat, y, x=None):
        f_hat = self.features(y_hat)
        f_y = self.features(y).detach()
        sim = (f_hat * f_y).sum(1)
        loss = (1 - sim).mean()
        improvement = None
        if x is not None:
            with torch.no_grad():
                improvement = float((sim.detach() - (f_y * self.features(x)).sum(1)).mean())
        return loss, improvement


class IdLoss(SimilarityLoss):
    """ArcFace IR-SE50 identity loss (faces): crop [35:223, 32:220] of the 256 px image, average-pool to
    112, embed."""

    def __init__(self, arcface: nn.Module):
        super().__init__()
        self.net = arcface.eval()
        self.pool = nn.AdaptiveAvgPool2d((arcface.input_size, arcface.input_size))

    def features(self, x):
        (r0, r1), (c0, c1) = ID_CROP
        return self.net(self.pool(x[:, :, r0:r1, c0:c1]))


class MocoLoss(SimilarityLoss):
    """MoCo v2 similarity loss (other domains): nearest resize to 224 (``F.interpolate``'s default, as the
    official one), ResNet-50 trunk, L2-normalised 2048-d features."""

    def __init__(self, trunk: nn.Module):
        super().__init__()
        self.net = trunk.eval()

    def features(self, x):
        feats = self.net(F.interpolate(x, size=MOCO_SIZE)).flatten(1)
        return F.normalize(feats, dim=1)


# ---------------------------------------------------------------- e4e's latent discriminator

def discriminator_loss(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
    """Non-saturating logistic loss of the discriminator: mean softplus(-D(real)) + mean softplus(D(fake))."""
    return F.softplus(-real_pred).mean() + F.softplus(fake_pred).mean()


def r1_penalty(real_pred: torch.Tensor, real_w: torch.Tensor) -> torch.Tensor:
    """mean over the batch of ||d D(w) / d w||^2 at the real codes (graph kept for the backward)."""
    (grad,) = torch.autograd.grad(real_pred.sum(), real_w, create_graph=True)
    return grad.pow(2).reshape(grad.shape[0], -1).sum(1).mean()


def adversarial_loss(discriminator: nn.Module, latent: torch.Tensor, rows) -> torch.Tensor:
    """The encoder's loss against the latent discriminator: mean over ``rows`` of mean softplus(-D(w_row))."""
    total = latent.new_zeros(())
    for i in rows:
        total = total + F.softplus(-discriminator(latent[:, i])).mean()
    return total / len(rows)
