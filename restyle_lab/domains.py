"""The image domains of the paper (and the embedded mini domain) and what differs between them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import UsageError
from .geometry import CARS_GEOMETRY, Geometry

STYLE_GROUP_SCHEMES = ("stylegan", "psp")


def style_groups(n_styles: int, scheme: str = "stylegan") -> dict[str, list[int]]:
    """Indices of the coarse / medium / fine style inputs.

    ``'stylegan'`` (default; StyleGAN's definition, which the paper's Fig. 3 cites):
    coarse = the 4^2-8^2 layers (0-3), medium = 16^2-32^2 (4-7), fine = 64^2 and up (8+).
    ``'psp'``: the split pSp's code uses for its encoder heads, 0-2 / 3-6 / 7+.
    """
    if scheme == "stylegan":
        cuts = (4, 8)
    elif scheme == "psp":
        cuts = (3, 7)
    else:
        raise ValueError(f"scheme must be one of {STYLE_GROUP_SCHEMES}. Got: {scheme!r}")
    idx = list(range(n_styles))
    return {"coarse": idx[: cuts[0]], "medium": idx[cuts[0]: cuts[1]], "fine": idx[cuts[1]:]}


@dataclass(frozen=True)
class Domain:
    """One domain: generator size, image geometry, official dataset type and test-set rule."""

    name: str
    generator_size: int
    dataset_type: str
    geometry: Geometry = field(default_factory=Geometry)
    test_set: str = ""
    test_subset: int | None = None  # a seeded random subset of this many test images (cars)
    subset_seed: int = 0
    faces: bool = False
    description: str = ""
    # steps the released ReStyle encoders were trained for (the author, restyle-encoder issue #20);
    # None: not reported (training presets then use the official max_steps default)
    train_steps: int | None = None

    @property
    def n_styles(self) -> int:
        return 2 * int(np.log2(self.generator_size)) - 2

    @property
    def input_hw(self) -> tuple:
        return self.geometry.input_hw

    def style_groups(self, scheme: str = "stylegan") -> dict[str, list[int]]:
        return style_groups(self.n_styles, scheme)

    def metrics(self) -> list[str]:
        names = ["mse_pm1", "lpips_alex_v0.1", "psnr_pm1", "ssim_pm1"]
        return names + (["id_facenet_vggface2"] if self.faces else [])

    def select_test_files(self, files: list) -> list:
        """The paper's test subset of a sorted file list (cars: a seeded random 1,000)."""
        if self.test_subset is None or len(files) <= self.test_subset:
            return list(files)
        rng = np.random.default_rng(self.subset_seed)
        keep = np.sort(rng.choice(len(files), size=self.test_subset, replace=False))
        return [files[i] for i in keep]


DOMAINS = {
    "faces": Domain("faces", 1024, "ffhq_encode", test_set="CelebA-HQ official test split (2,824 images)",
                    faces=True, description="FFHQ StyleGAN2 (config-f), IR-SE50 encoders", train_steps=110_000),
    "cars": Domain("cars", 512, "cars_encode", CARS_GEOMETRY,
                   test_set="Stanford Cars test folder (8,041 images), a seeded random 1,000",
                   test_subset=1000, description="Stanford Cars StyleGAN2, 384x512 content in a 512 frame",
                   train_steps=75_000),
    "wild": Domain("wild", 512, "afhq_wild_encode", test_set="AFHQ Wild test (500 images)",
                   description="AFHQ Wild StyleGAN2 (StyleGAN2-ADA)", train_steps=40_000),
    "church": Domain("church", 256, "church_encode", test_set="LSUN Church test (300 images)",
                     description="LSUN Church StyleGAN2 (config-f)", train_steps=150_000),
    "horse": Domain("horse", 256, "horse_encode", test_set="LSUN Horse test (2,215 images)",
                    description="LSUN Horse StyleGAN2 (config-f)"),
    "toonify": Domain("toonify", 1024, "toonify", test_set="CelebA-HQ test (real faces into the toon domain)",
                      faces=True, description="FFHQ generator fine-tuned on toons (Pinkney & Adler)"),
    "mini": Domain("mini", 64, "mini_encode", Geometry(64, (64, 64)),
                   test_set="procedural cartoon faces rendered from held-out seeds",
                   description="embedded 64 px domain trained with this package (see restyle_lab.mini)"),
}


def get_domain(name: str) -> Domain:
    if name not in DOMAINS:
        raise UsageError(f"unknown domain {name!r}; known: {', '.join(DOMAINS)}")
    return DOMAINS[name]
