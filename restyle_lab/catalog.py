"""The checkpoints each domain's analyses use, and the named methods the notebooks run.

A *key* names a role (``restyle_psp``, ``generator``, ...). For the real domains a key
maps to the official file name inside the ``--checkpoints`` folder; for ``mini`` to a
shipped file (``restyle_lab.mini.registry``). A *named method* (``restyle_psp``,
``psp_naive``, ``optim_w``, ...) says which kind of inversion runs on which key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .methods import HybridSpec, MethodSpec, NaiveSpec, OptimSpec, ReStyleSpec, SingleSpec
from .schedule import snapshot_schedule
from .mini.registry import MINI_MODELS

# The official file names (ReStyle / pSp / e4e READMEs). "fpn" variants were never released:
# train them (`restyle-lab train --head fpn`, README "Training on real data") and use these names.
ENCODER_KEYS = ("restyle_psp", "restyle_e4e", "restyle_psp_fpn", "psp", "e4e")


def _official(tag: str, generator: str, **extra) -> dict:
    """Every encoder as ``<key>_<tag>_encode.pt`` (the official naming), plus the generator."""
    return {**{k: f"{k}_{tag}_encode.pt" for k in ENCODER_KEYS}, "generator": generator, **extra}


OFFICIAL_FILES = {
    "faces": _official("ffhq", "stylegan2-ffhq-config-f.pt", restyle_psp_toon="restyle_psp_toonify.pt"),
    "toonify": {"restyle_psp": "restyle_psp_ffhq_encode.pt", "restyle_psp_toon": "restyle_psp_toonify.pt",
                "generator": "stylegan2-ffhq-config-f.pt"},
    "cars": _official("cars", "stylegan2-car-config-f.pt"),
    "church": _official("church", "stylegan2-church-config-f.pt"),
    "horse": _official("horse", "stylegan2-horse-config-f.pt"),
    "wild": _official("afhq_wild", "afhqwild.pt"),
}


@dataclass(frozen=True)
class NamedMethod:
    """How a notebook's method name becomes a spec: kind, the checkpoint key it inverts with, and
    (bootstrapping) the key of the network that gives its start."""

    kind: str
    key: str
    start_key: str | None = None


NAMED_METHODS = {
    "restyle_psp": NamedMethod("restyle", "restyle_psp"),
    "restyle_e4e": NamedMethod("restyle", "restyle_e4e"),
    "restyle_psp_fpn": NamedMethod("restyle", "restyle_psp_fpn"),
    "psp": NamedMethod("single", "psp"),
    "e4e": NamedMethod("single", "e4e"),
    "psp_naive": NamedMethod("naive", "psp"),
    "e4e_naive": NamedMethod("naive", "e4e"),
    "optim_w": NamedMethod("optim", "generator"),
    "optim_w+": NamedMethod("optim", "generator"),
    "restyle_psp+optim": NamedMethod("hybrid", "restyle_psp"),
    "restyle_e4e+optim": NamedMethod("hybrid", "restyle_e4e"),
    "restyle_psp_toon": NamedMethod("restyle", "restyle_psp_toon"),
    "toon_bootstrap": NamedMethod("restyle", "restyle_psp_toon", start_key="restyle_psp"),
}


def expected_files(domain: str, folder=None) -> dict:
    """key -> the path where a domain's checkpoint is looked for (``folder`` overrides the mini default)."""
    folder = Path(folder) if folder else None
    if domain == "mini":
        return {m.key: (folder / m.file if folder else m.path) for m in MINI_MODELS}
    return {k: (folder / v if folder else Path(v)) for k, v in OFFICIAL_FILES.get(domain, {}).items()}


def resolve_checkpoints(domain: str, given=None) -> tuple[dict, dict]:
    """(found, missing): key -> Path. ``given``: a folder, or a dict of key -> file (overrides)."""
    folder = given if isinstance(given, (str, Path)) and given else None
    expected = expected_files(domain, folder)
    if isinstance(given, dict):
        expected.update({k: Path(v) for k, v in given.items() if v})
    found = {k: p for k, p in expected.items() if p.is_file()}
    missing = {k: p for k, p in expected.items() if not p.is_file()}
    return found, missing


def named_method_keys(name: str) -> tuple:
    """The checkpoint keys a named method needs (a hybrid needs its encoder's)."""
    if name not in NAMED_METHODS:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(NAMED_METHODS)}")
    entry = NAMED_METHODS[name]
    return (entry.key,) + ((entry.start_key,) if entry.start_key else ())


def named_spec(name: str, checkpoints: dict, steps: int, optim_steps: int,
               optim_images: int | None = None) -> MethodSpec | None:
    """The spec of a named method with the given settings, or None when a checkpoint it needs is missing.
    ``optim_images``: optimisation methods invert a seeded subset of this many images (None: all)."""
    if any(k not in checkpoints for k in named_method_keys(name)):
        return None
    entry = NAMED_METHODS[name]
    path = str(checkpoints[entry.key])
    if entry.kind == "restyle":
        start = str(checkpoints[entry.start_key]) if entry.start_key else None
        return ReStyleSpec(name, checkpoint=path, steps=steps, bootstrap=start)
    if entry.kind == "single":
        return SingleSpec(name, checkpoint=path)
    if entry.kind == "naive":
        return NaiveSpec(name, checkpoint=path, steps=steps)
    schedule = snapshot_schedule(optim_steps)
    if entry.kind == "optim":
        return OptimSpec(name, space=name.split("_", 1)[1], record_at=schedule, generator=path, images=optim_images)
    return HybridSpec(name, encoder=entry.key, record_at=schedule, images=optim_images)


# base and fine-tuned generator keys for the alignment study, in order of preference
GENERATOR_PAIRS = (("generator", "toon_generator"), ("restyle_psp", "restyle_psp_toon"))
