"""The image domains of the paper and the embedded mini domain: one ``Domain`` record each.

Everything that differs between domains lives in its record: the generator size and input
geometry, the official dataset type, the checkpoint files looked for (the released ones
under their official names, and the names to give encoders one trains oneself), how the
test set is made, the metrics, the editing pairing of the paper, and how long one notebook
may run. Nothing elsewhere in the package branches on a domain's name; a new domain is one
record here plus its checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import UsageError
from .geometry import CARS_GEOMETRY, Geometry
from .metric_names import IDENTITY, RECONSTRUCTION
from .mini_models import ASSETS, MINI_MODELS

STYLE_GROUP_SCHEMES = ("stylegan", "psp")
# the editing default of a domain the paper pairs with nothing, and of any component source (GANSpace, SeFa)
FIRST_COMPONENTS = "pc0:0,pc1:1"
HOUR = 3600.0


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
class EditPairing:
    """The direction source a domain's edits use and the edits (``restyle_lab.editing.sources`` syntax)."""

    source: str
    edits: str


@dataclass(frozen=True, eq=False)
class Domain:
    """One domain.

    files: checkpoint key -> file name, for the files that were released (official names);
    trained: key -> the name to give a checkpoint that was never released and that one trains
    (the FPN-head ReStyle encoders of supplementary Table 1, say); both are looked for in the
    ``--checkpoints`` folder, or in ``checkpoint_folder`` when the domain ships its own.
    test_subset: the paper evaluates a seeded random subset of this many test images (cars).
    renders_test_set: the test set is rendered on demand (no ``--data`` needed).
    judge: the checkpoint key of an attribute regressor that measures edit success, if any.
    timeout: seconds one notebook of ``reproduce`` may run by default.
    optim_batch_size: images per batch of the optimisation methods when a notebook leaves its
    ``optim_batch_size`` empty (None: its ``batch_size``). Their steps cost less per image in larger
    batches; memory grows with the batch, so only a domain whose generator is small sets one.
    """

    name: str
    generator_size: int
    dataset_type: str
    files: dict
    trained: dict = field(default_factory=dict)
    geometry: Geometry = field(default_factory=Geometry)
    test_set: str = ""
    test_subset: int | None = None
    subset_seed: int = 0
    faces: bool = False
    editing: EditPairing = EditPairing("ganspace", FIRST_COMPONENTS)
    timeout: float = 6 * HOUR
    checkpoint_folder: Path | None = None
    optim_batch_size: int | None = None
    renders_test_set: bool = False
    judge: str | None = None
    # steps the released ReStyle encoders were trained for (the author, restyle-encoder issue #20);
    # None: not reported (training presets then use the official max_steps default)
    train_steps: int | None = None

    @property
    def n_styles(self) -> int:
        return 2 * int(np.log2(self.generator_size)) - 2

    @property
    def input_hw(self) -> tuple:
        return self.geometry.input_hw

    @property
    def metrics(self) -> tuple:
        """The metric names every evaluation on this domain records (``restyle_lab.facts.metric_names``)."""
        return RECONSTRUCTION + ((IDENTITY,) if self.faces else ())

    def style_groups(self, scheme: str = "stylegan") -> dict[str, list[int]]:
        return style_groups(self.n_styles, scheme)

    def checkpoint_files(self) -> dict:
        """key -> file name of every checkpoint this domain's notebooks can use."""
        return {**self.files, **self.trained}

    def select_test_files(self, files: list) -> list:
        """The paper's test subset of a sorted file list (cars: a seeded random 1,000)."""
        if self.test_subset is None or len(files) <= self.test_subset:
            return list(files)
        rng = np.random.default_rng(self.subset_seed)
        keep = np.sort(rng.choice(len(files), size=self.test_subset, replace=False))
        return [files[i] for i in keep]


def encode_files(tag: str, *keys: str) -> dict:
    """The official naming of encoder checkpoints: key -> ``<key>_<tag>_encode.pt``."""
    return {k: f"{k}_{tag}_encode.pt" for k in keys}


# The released files, as the ReStyle, pSp and e4e READMEs list them: ReStyle-pSp for faces, cars,
# church and wild; ReStyle-e4e for those and horse; pSp for faces only; e4e for faces, cars, horse
# and church. Everything else a notebook can use is named under ``trained``.
DOMAINS = {d.name: d for d in (
    Domain("faces", 1024, "ffhq_encode",
           {**encode_files("ffhq", "restyle_psp", "restyle_e4e", "psp", "e4e"),
            "generator": "stylegan2-ffhq-config-f.pt", "restyle_psp_toon": "restyle_psp_toonify.pt"},
           trained=encode_files("ffhq", "restyle_psp_fpn"),
           test_set="CelebA-HQ official test split (2,824 images)", faces=True,
           editing=EditPairing("interfacegan", "age,smile"), train_steps=110_000),
    Domain("toonify", 1024, "toonify",
           {"restyle_psp": "restyle_psp_ffhq_encode.pt", "restyle_psp_toon": "restyle_psp_toonify.pt",
            "generator": "stylegan2-ffhq-config-f.pt"},
           test_set="CelebA-HQ test (real faces into the toon domain)", faces=True,
           editing=EditPairing("interfacegan", "age,smile")),
    # e4e's GANSpace edits for the Stanford Cars generator (component @ style rows, inclusive); e4e writes
    # them as (component, start, end) with end exclusive, (0, 0, 5) for the viewpoint, and its editor
    # *sets* the coordinate along the component where ours adds to it (strength 0 is the inversion)
    Domain("cars", 512, "cars_encode",
           {**encode_files("cars", "restyle_psp", "restyle_e4e", "e4e"), "generator": "stylegan2-car-config-f.pt"},
           trained=encode_files("cars", "restyle_psp_fpn", "psp"), geometry=CARS_GEOMETRY,
           test_set="Stanford Cars test folder (8,041 images), a seeded random 1,000", test_subset=1000,
           editing=EditPairing("ganspace", "viewpoint:0@0-4,cube:16@3-5,colour:22@9-10"), train_steps=75_000),
    Domain("church", 256, "church_encode",
           {**encode_files("church", "restyle_psp", "restyle_e4e", "e4e"),
            "generator": "stylegan2-church-config-f.pt"},
           trained=encode_files("church", "restyle_psp_fpn", "psp"), test_set="LSUN Church test (300 images)",
           train_steps=150_000),
    # supplementary Fig. 24 shows SeFa's pose and rider edits without naming the eigenvectors: the first
    # two are used, on SeFa's default rows 2-5
    Domain("horse", 256, "horse_encode",
           {**encode_files("horse", "restyle_e4e", "e4e"), "generator": "stylegan2-horse-config-f.pt"},
           trained=encode_files("horse", "restyle_psp", "restyle_psp_fpn", "psp"),
           test_set="LSUN Horse test (2,215 images)", editing=EditPairing("sefa", "sefa0:0@2-5,sefa1:1@2-5")),
    Domain("wild", 512, "afhq_wild_encode",
           {**encode_files("afhq_wild", "restyle_psp", "restyle_e4e"), "generator": "afhqwild.pt"},
           trained=encode_files("afhq_wild", "restyle_psp_fpn", "psp", "e4e"), test_set="AFHQ Wild test (500 images)",
           train_steps=40_000),
    Domain("mini", 64, "mini_encode", {m.key: m.file for m in MINI_MODELS}, geometry=Geometry(64, (64, 64)),
           test_set="procedural cartoon faces rendered from held-out seeds",
           editing=EditPairing("interfacegan_fit", "smile,yaw,hair_length,eye_size"), timeout=HOUR,
           checkpoint_folder=ASSETS, renders_test_set=True, judge="attributes",
           # a 64 px projector step on 2 CPU cores: 7.8 ms per image at batch 8, 5.3 at 32 (README.md, Speed)
           optim_batch_size=32),
)}


def get_domain(name: str) -> Domain:
    if name not in DOMAINS:
        raise UsageError(f"unknown domain {name!r}; known: {', '.join(DOMAINS)}")
    return DOMAINS[name]


def geometry_of_dataset_type(dataset_type: str) -> Geometry:
    """The input geometry an official ``dataset_type`` implies (the default 256 px square when unknown)."""
    found = [d.geometry for d in DOMAINS.values() if d.dataset_type == dataset_type]
    return found[0] if found else Geometry()


def dataset_type_of_geometry(geometry: Geometry) -> str:
    """The official ``dataset_type`` that implies ``geometry`` ('custom' unless one domain alone has it)."""
    types = {d.dataset_type for d in DOMAINS.values() if d.geometry == geometry}
    return types.pop() if len(types) == 1 else "custom"
