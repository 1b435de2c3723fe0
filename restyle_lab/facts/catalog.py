"""The checkpoints each domain's analyses use, and the named methods the notebooks run.

A *key* names a role (``restyle_psp``, ``generator``, ...); each domain's record
(``restyle_lab.facts.domains``) maps keys to file names, looked for in the ``--checkpoints`` folder
or where the domain ships them. A *named method* (``restyle_psp``,
``psp_naive``, ``optim_w``, ...) says which kind of inversion runs on which key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .domains import get_domain
from .methods import SPEC_CLASSES, MethodSpec, NamedSettings


@dataclass(frozen=True)
class NamedMethod:
    """How a notebook's method name becomes a spec (``methods.SPEC_CLASSES[kind].named``): its kind, the
    checkpoint key it inverts with (a hybrid: its encoder method), and (bootstrapping) the key of the
    network that gives its start."""

    kind: str
    key: str
    start_key: str | None = None
    space: str | None = None  # an optimisation's latent space
    label: str = ""  # how figures name it


NAMED_METHODS = {
    "restyle_psp": NamedMethod("restyle", "restyle_psp", label="ReStyle-pSp"),
    "restyle_e4e": NamedMethod("restyle", "restyle_e4e", label="ReStyle-e4e"),
    "restyle_psp_fpn": NamedMethod("restyle", "restyle_psp_fpn", label="ReStyle-pSp (FPN)"),
    "psp": NamedMethod("single", "psp", label="pSp"),
    "e4e": NamedMethod("single", "e4e", label="e4e"),
    "psp_naive": NamedMethod("naive", "psp", label="pSp, naive"),
    "e4e_naive": NamedMethod("naive", "e4e", label="e4e, naive"),
    "optim_w": NamedMethod("optim", "generator", space="w", label="optimisation (W)"),
    "optim_w+": NamedMethod("optim", "generator", space="w+", label="optimisation (W+)"),
    "restyle_psp+optim": NamedMethod("hybrid", "restyle_psp", label="ReStyle-pSp + optimisation"),
    "restyle_e4e+optim": NamedMethod("hybrid", "restyle_e4e", label="ReStyle-e4e + optimisation"),
    "restyle_psp_toon": NamedMethod("restyle", "restyle_psp_toon", label="ReStyle-pSp (toon)"),
    "toon_bootstrap": NamedMethod("restyle", "restyle_psp_toon", start_key="restyle_psp", label="bootstrapped (toon)"),
}


def expected_files(domain: str, folder=None) -> dict:
    """key -> the path where a domain's checkpoint is looked for: in ``folder``, else where the domain ships
    its own (mini), else under its bare file name."""
    dom = get_domain(domain)
    folder = Path(folder) if folder else dom.checkpoint_folder
    return {k: (folder / name if folder else Path(name)) for k, name in dom.checkpoint_files().items()}


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
    """The checkpoint keys a named method needs (a hybrid needs its encoder's: the same key)."""
    if name not in NAMED_METHODS:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(NAMED_METHODS)}")
    entry = NAMED_METHODS[name]
    return (entry.key,) + ((entry.start_key,) if entry.start_key else ())


def named_spec(name: str, checkpoints: dict, settings: NamedSettings) -> MethodSpec | None:
    """The spec of a named method with the given settings, or None when a checkpoint it needs is missing."""
    if any(k not in checkpoints for k in named_method_keys(name)):
        return None
    entry = NAMED_METHODS[name]
    return SPEC_CLASSES[entry.kind].named(name, entry, checkpoints, settings)


# the reference rows of the editing study: edits of GAN samples, which are no inversion method
SAMPLES = "w_samples"
OTHER_LABELS = {SAMPLES: "GAN samples"}


def method_label(name: str) -> str:
    """How figures name a method: its named method's label, else its own name (tables keep the names)."""
    entry = NAMED_METHODS.get(name)
    return entry.label if entry and entry.label else OTHER_LABELS.get(name, name)


# base and fine-tuned generator keys for the alignment study, in order of preference
GENERATOR_PAIRS = (("generator", "toon_generator"), ("restyle_psp", "restyle_psp_toon"))
GENERATOR_LABELS = {"generator": "base generator", "toon_generator": "toon generator"}


def generator_label(key: str) -> str:
    """How figures name a generator by its checkpoint key (an encoder's: its decoder)."""
    return GENERATOR_LABELS.get(key) or f"{method_label(key)} decoder"
