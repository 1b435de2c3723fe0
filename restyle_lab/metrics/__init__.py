"""Reconstruction metrics, each a pure function with its protocol in its name.

``build_metric(name, device)`` returns an object with ``prepare(target)`` (work done
once per target image, e.g. a face embedding) and ``__call__(pred, prepared)``, which
gives one float64 value per image; NaN means skipped for that image (no face found).
A metric whose weights are missing raises ``MetricUnavailable`` when built.
"""

from __future__ import annotations

from dataclasses import dataclass

from .identity import FaceIdentity
from .lpips_metric import load_lpips, lpips_distance
from .pixel import latent_mse, mse_pm1, psnr_pm1, ssim_pm1
from .weights import MetricUnavailable


@dataclass(frozen=True)
class MetricSpec:
    name: str
    description: str
    higher_is_better: bool
    faces_only: bool = False


METRICS = {
    "mse_pm1": MetricSpec("mse_pm1", "mean squared error on images in [-1, 1] (official L2)", False),
    "lpips_alex_v0.1": MetricSpec("lpips_alex_v0.1", "LPIPS, AlexNet backbone, v0.1 linear layers, inputs in "
                                  "[-1, 1] (lpips package)", False),
    "psnr_pm1": MetricSpec("psnr_pm1", "PSNR in dB, data range 2 (scikit-image)", True),
    "ssim_pm1": MetricSpec("ssim_pm1", "SSIM, 11x11 Gaussian window sigma 1.5, data range 2 (scikit-image)", True),
    "id_facenet_vggface2": MetricSpec("id_facenet_vggface2", "cosine similarity of facenet-pytorch "
                                      "InceptionResnetV1 (VGGFace2) embeddings after MTCNN alignment to 160x160; "
                                      "the paper used CurricularFace", True, faces_only=True),
}


class _Pair:
    def __init__(self, fn):
        self.fn = fn

    def prepare(self, target):
        return target

    def __call__(self, pred, target):
        return self.fn(pred, target)


class _Lpips(_Pair):
    def __init__(self, device):
        model = load_lpips(device)
        super().__init__(lambda p, t: lpips_distance(model, p, t))


def build_metric(name: str, device="cpu"):
    if name == "mse_pm1":
        return _Pair(mse_pm1)
    if name == "psnr_pm1":
        return _Pair(psnr_pm1)
    if name == "ssim_pm1":
        return _Pair(ssim_pm1)
    if name == "lpips_alex_v0.1":
        return _Lpips(device)
    if name == "id_facenet_vggface2":
        return FaceIdentity(device)
    raise KeyError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")


__all__ = ["METRICS", "MetricSpec", "MetricUnavailable", "build_metric", "mse_pm1", "psnr_pm1", "ssim_pm1",
           "latent_mse"]
