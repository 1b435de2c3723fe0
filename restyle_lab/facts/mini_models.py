"""The shipped mini models: one entry per file in ``restyle_lab/assets/mini``.

Everything else (the Lab's checkpoint table, the training presets, the benchmark, the
manifest, the packed files' decoder lookup) reads file names from here. This module
imports nothing of the package, so the lowest layers may use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "mini"


@dataclass(frozen=True)
class MiniModel:
    """One shipped file.

    key: the checkpoint key notebooks use (``Lab.checkpoints[key]``); file: its name in
    ASSETS; preset: ``restyle-lab train --preset <preset>`` regenerates it; kind: "gan"
    (a generator), "encoder" or "attributes" (the regressor that judges edits); family: the encoder family (None for generators);
    decoder: the key of the generator an encoder decodes with.
    """

    key: str
    file: str
    preset: str
    kind: str
    family: str | None
    description: str
    decoder: str | None = None

    @property
    def path(self) -> Path:
        return ASSETS / self.file


MINI_MODELS = (
    MiniModel("generator", "stylegan2_mini.pt", "mini-gan", "gan", None,
              "64 px StyleGAN2 trained adversarially on photo-style renders"),
    MiniModel("toon_generator", "stylegan2_mini_toon.pt", "mini-toon-gan", "gan", None,
              "mini-gan fine-tuned on toon-style renders (mapping frozen)"),
    MiniModel("restyle_psp", "restyle_psp_mini.pt", "mini-restyle-psp", "encoder", "restyle_psp",
              "ReStyle-pSp, simple (BackboneEncoder) head", "generator"),
    MiniModel("restyle_psp_fpn", "restyle_psp_fpn_mini.pt", "mini-restyle-psp-fpn", "encoder", "restyle_psp",
              "ReStyle-pSp with pSp's FPN head (ablation)", "generator"),
    MiniModel("restyle_e4e", "restyle_e4e_mini.pt", "mini-restyle-e4e", "encoder", "restyle_e4e",
              "ReStyle-e4e (progressive, delta-regularised)", "generator"),
    MiniModel("psp", "psp_mini.pt", "mini-psp", "encoder", "psp",
              "single-pass pSp (FPN, 3-channel input), for the naive-iteration study", "generator"),
    MiniModel("e4e", "e4e_mini.pt", "mini-e4e", "encoder", "e4e",
              "single-pass e4e (Encoder4Editing), for the naive-iteration study", "generator"),
    MiniModel("restyle_psp_toon", "restyle_psp_mini_toon.pt", "mini-restyle-psp-toon", "encoder", "restyle_psp",
              "ReStyle-pSp into the mini-toon generator (photo inputs, toon renders of the same faces as "
              "targets), fine-tuned from mini-restyle-psp, for encoder bootstrapping", "toon_generator"),
    MiniModel("attributes", "attributes_mini.pt", "mini-attributes", "attributes", None,
              "CNN reading the mini attributes off 64 px images (judges edits; see mini/attributes.py)"),
)
BY_KEY = {m.key: m for m in MINI_MODELS}
BY_PRESET = {m.preset: m for m in MINI_MODELS}


def mini_path(key: str) -> Path:
    """The shipped file of a model key (``generator``, ``restyle_psp``, ...)."""
    if key not in BY_KEY:
        raise KeyError(f"no shipped mini model {key!r}; known: {', '.join(BY_KEY)}")
    return BY_KEY[key].path
