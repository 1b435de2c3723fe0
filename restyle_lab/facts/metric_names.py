"""The names of the stored measurements, each stating its protocol, and how figures name them.

torch-free and importing nothing of the package, so that the domains, the store and the command
line name metrics without loading them. What each one computes: ``restyle_lab.metrics``.
"""

from __future__ import annotations

MSE = "mse_pm1"
LPIPS = "lpips_alex_v0.1"
PSNR = "psnr_pm1"
SSIM = "ssim_pm1"
IDENTITY = "id_facenet_vggface2"
LATENT_MSE = "latent_mse"  # only for inputs whose latents are known (``restyle-lab sample``)

# how alike two generators' images of one w are (generator_alignment), and the two kinds of pair it compares
LUMA_LOWPASS16 = "luma_lowpass16_pearson"
SIMILARITIES = (LUMA_LOWPASS16, LPIPS)
SAME_W, SHUFFLED = "same_w", "shuffled"

# what every domain measures; faces add IDENTITY
RECONSTRUCTION = (MSE, LPIPS, PSNR, SSIM)

# the timing rows every step carries (parts.COLUMNS' metric column)
SECONDS = "seconds_per_image"
CUMULATIVE_SECONDS = "cumulative_seconds_per_image"
TIME_METRICS = (SECONDS, CUMULATIVE_SECONDS)

# how figures name every metric and score (tables keep the names above); ``label`` reads it
LABELS = {
    MSE: "MSE (images in [-1, 1])",
    LPIPS: "LPIPS (AlexNet, v0.1)",
    PSNR: "PSNR (dB)",
    SSIM: "SSIM",
    IDENTITY: "ID similarity (facenet, not CurricularFace)",
    LATENT_MSE: "latent MSE (w+)",
    SECONDS: "seconds per image per step",
    CUMULATIVE_SECONDS: "seconds per image",
    LUMA_LOWPASS16: "luminance similarity (16 x 16 low-pass, Pearson r)",
    SAME_W: "same w",  # SHUFFLED reads as it is
}


def label(name: str) -> str:
    """How a figure names a metric or score (its name when unknown)."""
    return LABELS.get(name, name)
