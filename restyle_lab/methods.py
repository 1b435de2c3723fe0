"""Inversion methods as typed, frozen specs, parsed in one place.

A spec says what to run, never how: ``restyle_lab.evaluate`` turns it into an inverter.
Three ways in, one result:

- the command line, ``[NAME=]KIND:ARG[:STEPS]`` (``parse_method``);
- a JSON list of dicts (``--methods-json``) or a notebook (``spec_from_dict``), e.g.::

    {"name": "restyle_psp", "kind": "restyle", "checkpoint": "restyle_psp.pt", "steps": 5}
    {"name": "psp", "kind": "single", "checkpoint": "psp.pt"}
    {"name": "psp_naive", "kind": "naive", "checkpoint": "psp.pt", "steps": 5}
    {"name": "optim_w", "kind": "optim", "generator": "stylegan2.pt", "space": "w", "record_at": [1, 10, 100]}
    {"name": "hybrid", "kind": "hybrid", "encoder": "restyle_psp", "record_at": [10, 100], "images": 64}
    {"name": "toon_bootstrap", "kind": "restyle", "checkpoint": "toon.pt", "steps": 5,
     "bootstrap": {"checkpoint": "ffhq.pt", "steps": 1}}

- and ``to_dict()`` writes that same dict back (it is what the provenance records).

Anything that cannot be honoured is refused with a ``UsageError`` that names it.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import ClassVar

from .errors import UsageError
from .schedule import SNAPSHOTS, snapshot_schedule

KINDS = ("restyle", "single", "naive", "optim", "hybrid")
DEFAULT_STEPS = 5
DEFAULT_OPTIM_STEPS = SNAPSHOTS[-1]
# ProjectorConfig fields a method may set, with the type each must have
PROJECTOR_OPTIONS = {"lr": float, "noise_scale": float, "noise_ramp": float, "noise_regularize": float,
                     "mse_weight": float, "perceptual": bool, "seed": int}
# names become folder names in a run directory: no path separators, no leading dot, no line ends, and short
# enough for any file system (checked before anything is written)
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
MAX_NAME_LENGTH = 100
SYNTAX = "[NAME=]KIND:ARG[:STEPS] with KIND one of " + ", ".join(KINDS)


def positive_int(value, what: str) -> int:
    """``value`` as a whole number >= 1, or a UsageError naming ``what``."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if isinstance(value, bool) or not (text.isdigit() and int(text) >= 1):
        raise UsageError(f"{what} must be a whole number of at least 1. Got: {value!r}")
    return int(text)


@dataclass(frozen=True)
class MethodSpec:
    """Common part of every method: its unique name (a folder name in the run store)."""

    name: str
    kind: ClassVar[str] = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not NAME_PATTERN.fullmatch(self.name):
            raise UsageError(f"method name {_clip(self.name)} must start with a letter or digit and hold only "
                             "letters, digits and _ . + -")
        if len(self.name) > MAX_NAME_LENGTH:
            raise UsageError(f"method name {_clip(self.name)} is {len(self.name)} characters long; at most "
                             f"{MAX_NAME_LENGTH} (it names a folder in the run directory)")

    def to_dict(self) -> dict:
        out = {"name": self.name, "kind": self.kind}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name != "name" and value is not None:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def files(self) -> dict:
        """role -> path of every file the method reads (their sha256 go into the provenance)."""
        return {}


@dataclass(frozen=True)
class ReStyleSpec(MethodSpec):
    """``steps`` ReStyle iterations; ``bootstrap``: a ReStyle checkpoint whose ``bootstrap_steps``
    iterations give the starting point (encoder bootstrapping, paper Sec. 5.5)."""

    checkpoint: str = ""
    steps: int = DEFAULT_STEPS
    bootstrap: str | None = None
    bootstrap_steps: int = 1
    kind: ClassVar[str] = "restyle"

    def __post_init__(self):
        super().__post_init__()
        _need_path(self, "checkpoint")
        object.__setattr__(self, "steps", positive_int(self.steps, f"method {self.name!r}: steps"))
        object.__setattr__(self, "bootstrap_steps",
                           positive_int(self.bootstrap_steps, f"method {self.name!r}: bootstrap steps"))

    def to_dict(self) -> dict:
        out = {"name": self.name, "kind": self.kind, "checkpoint": self.checkpoint, "steps": self.steps}
        if self.bootstrap:
            out["bootstrap"] = {"checkpoint": self.bootstrap, "steps": self.bootstrap_steps}
        return out

    def files(self) -> dict:
        return {"checkpoint": self.checkpoint, **({"bootstrap": self.bootstrap} if self.bootstrap else {})}


@dataclass(frozen=True)
class SingleSpec(MethodSpec):
    """One pass of a pSp / e4e encoder."""

    checkpoint: str = ""
    kind: ClassVar[str] = "single"

    def __post_init__(self):
        super().__post_init__()
        _need_path(self, "checkpoint")

    def files(self) -> dict:
        return {"checkpoint": self.checkpoint}


@dataclass(frozen=True)
class NaiveSpec(MethodSpec):
    """A pSp / e4e encoder fed its own output ``steps`` times (the paper's naive iteration)."""

    checkpoint: str = ""
    steps: int = DEFAULT_STEPS
    kind: ClassVar[str] = "naive"

    def __post_init__(self):
        super().__post_init__()
        _need_path(self, "checkpoint")
        object.__setattr__(self, "steps", positive_int(self.steps, f"method {self.name!r}: steps"))

    def files(self) -> dict:
        return {"checkpoint": self.checkpoint}


@dataclass(frozen=True)
class SubsetMixin:
    """``images``: invert at most this many test images, a subset drawn with ``subset_seed`` (the
    optimisation baselines cost seconds to minutes per image at real size); None: all of them."""

    images: int | None = None
    subset_seed: int = 0

    def _check_subset(self):
        if self.images is not None:
            object.__setattr__(self, "images", positive_int(self.images, f"method {self.name!r}: images"))

    def _subset_dict(self) -> dict:
        return {} if self.images is None else {"images": self.images, "subset_seed": self.subset_seed}


@dataclass(frozen=True)
class OptimSpec(SubsetMixin, MethodSpec):
    """The Karras et al. projector into ``space`` of ``generator`` (a generator file) or of the decoder
    of ``checkpoint``; snapshots at ``record_at``; ``options``: ProjectorConfig fields."""

    space: str = "w"
    record_at: tuple = SNAPSHOTS
    generator: str | None = None
    checkpoint: str | None = None
    options: dict = field(default_factory=dict)
    kind: ClassVar[str] = "optim"

    def __post_init__(self):
        super().__post_init__()
        if self.space not in ("w", "w+"):
            raise UsageError(f"method {self.name!r}: space must be w or w+. Got: {self.space!r}")
        if bool(self.generator) == bool(self.checkpoint):
            raise UsageError(f"method {self.name!r}: give exactly one of generator (a generator file) or checkpoint "
                             "(an encoder checkpoint whose decoder is optimised)")
        _check_schedule(self)
        self._check_subset()

    def to_dict(self) -> dict:
        out = {"name": self.name, "kind": self.kind, "space": self.space, "record_at": list(self.record_at)}
        out.update({"generator": self.generator} if self.generator else {"checkpoint": self.checkpoint})
        return {**out, **self.options, **self._subset_dict()}

    def files(self) -> dict:
        return {"generator": self.generator} if self.generator else {"checkpoint": self.checkpoint}


@dataclass(frozen=True)
class HybridSpec(SubsetMixin, MethodSpec):
    """The projector in W+ started from the inversion of ``encoder`` (another method's name)."""

    encoder: str = ""
    record_at: tuple = SNAPSHOTS
    options: dict = field(default_factory=dict)
    kind: ClassVar[str] = "hybrid"

    def __post_init__(self):
        super().__post_init__()
        if not self.encoder:
            raise UsageError(f"method {self.name!r}: a hybrid needs 'encoder', the name of an encoder method")
        _check_schedule(self)
        self._check_subset()

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "encoder": self.encoder, "record_at": list(self.record_at),
                **self.options, **self._subset_dict()}


SPEC_CLASSES = {cls.kind: cls for cls in (ReStyleSpec, SingleSpec, NaiveSpec, OptimSpec, HybridSpec)}


def _need_path(spec, attr: str) -> None:
    value = getattr(spec, attr)
    if not isinstance(value, str) or not value:
        raise UsageError(f"method {spec.name!r}: {attr} must name a file. Got: {value!r}")


def _check_schedule(spec) -> None:
    what = f"method {spec.name!r}: record_at"
    if isinstance(spec.record_at, (str, bytes)) or not hasattr(spec.record_at, "__iter__"):
        raise UsageError(f"{what} must be a list of step counts. Got: {spec.record_at!r}")
    steps = tuple(positive_int(s, what) for s in spec.record_at)
    if not steps or list(steps) != sorted(set(steps)):
        raise UsageError(f"{what} must be increasing step counts, each once. Got: {list(spec.record_at)}")
    object.__setattr__(spec, "record_at", steps)
    for key, value in spec.options.items():
        kind = PROJECTOR_OPTIONS.get(key)
        if kind is None:
            raise UsageError(f"method {spec.name!r}: unknown option {key!r}; known: {', '.join(PROJECTOR_OPTIONS)}")
        if kind is bool and not isinstance(value, bool) or kind is not bool and (
                isinstance(value, bool) or not isinstance(value, (int, float))):
            raise UsageError(f"method {spec.name!r}: option {key!r} must be a {kind.__name__}. Got: {value!r}")


# --------------------------------------------------------------------------- parsing

def spec_from_dict(data) -> MethodSpec:
    """A spec from its dict form (see the module docstring); unknown keys are refused."""
    if isinstance(data, MethodSpec):
        return data
    if not isinstance(data, dict):
        raise UsageError(f"a method must be a dict with 'name' and 'kind'. Got: {data!r}")
    data = dict(data)
    kind = data.pop("kind", None)
    if kind not in SPEC_CLASSES:
        raise UsageError(f"method {data.get('name')!r}: kind must be one of {', '.join(KINDS)}. Got: {kind!r}")
    cls = SPEC_CLASSES[kind]
    if kind == "restyle" and isinstance(data.get("bootstrap"), dict):
        boot = dict(data.pop("bootstrap"))
        data["bootstrap"] = boot.pop("checkpoint", None)
        data["bootstrap_steps"] = boot.pop("steps", 1)
        if boot:
            raise UsageError(f"method {data.get('name')!r}: unknown bootstrap keys {sorted(boot)}; "
                             "known: checkpoint, steps")
    if kind in ("optim", "hybrid"):
        data["options"] = {k: data.pop(k) for k in list(data) if k in PROJECTOR_OPTIONS}
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        allowed = sorted((known - {"options", "bootstrap_steps"}) | (set(PROJECTOR_OPTIONS) if "options" in known
                                                                     else set()))
        raise UsageError(f"method {data.get('name')!r} ({kind}): unknown keys {unknown}; known: {', '.join(allowed)}")
    if "name" not in data:
        raise UsageError(f"a {kind} method needs a 'name'. Got: {data!r}")
    return cls(**data)


def parse_method(text: str, generator: str | None = None, checkpoints: tuple = ()) -> MethodSpec:
    """A spec from the command-line syntax ``[NAME=]KIND:ARG[:STEPS]``.

    ``optim`` optimises ``generator`` if given, else the decoder of the first encoder
    checkpoint named before it (``checkpoints``).
    """
    original = text
    name = None
    head = text.split(":", 1)[0]
    if "=" in head:
        name, text = text.split("=", 1)
    parts = text.split(":")
    kind = parts[0]
    if kind not in KINDS or len(parts) < 2 or not parts[1]:
        raise UsageError(f"--method {original!r}: expected {SYNTAX}")
    if kind in FILE_KINDS and len(parts) > 2:
        parts = _file_with_colons(original, kind, parts)
    arg = parts[1]
    max_parts = 2 if kind == "single" else 3
    if len(parts) > max_parts:
        extra = ":".join(parts[max_parts:])
        hint = " (a single pass takes no STEPS; use naive:CKPT:STEPS to iterate)" if kind == "single" else ""
        raise UsageError(f"--method {original!r}: unexpected {extra!r} after {kind}:{':'.join(parts[1:max_parts])}"
                         f"{hint}")
    steps = positive_int(parts[2], f"--method {original!r}: STEPS") if len(parts) == 3 else None
    if kind == "restyle":
        return ReStyleSpec(name or f"restyle_{_stem(arg)}", checkpoint=arg, steps=steps or DEFAULT_STEPS)
    if kind == "single":
        return SingleSpec(name or f"single_{_stem(arg)}", checkpoint=arg)
    if kind == "naive":
        return NaiveSpec(name or f"naive_{_stem(arg)}", checkpoint=arg, steps=steps or DEFAULT_STEPS)
    schedule = snapshot_schedule(steps or DEFAULT_OPTIM_STEPS)
    if kind == "optim":
        if arg not in ("w", "w+"):
            raise UsageError(f"--method {original!r}: optim takes w or w+. Got: {arg!r}")
        if not generator and not checkpoints:
            raise UsageError(f"--method {original!r}: optim needs --generator, or an encoder checkpoint in a method "
                             "given before it (its decoder is optimised)")
        source = {"generator": generator} if generator else {"checkpoint": checkpoints[0]}
        return OptimSpec(name or f"optim_{arg}", space=arg, record_at=schedule, **source)
    return HybridSpec(name or f"{arg}+optim", encoder=arg, record_at=schedule)


FILE_KINDS = ("restyle", "single", "naive")  # their ARG is a checkpoint path


def _file_with_colons(original: str, kind: str, parts: list) -> list:
    """[kind, path, (steps)] where the checkpoint path itself holds ':' (it names an existing file);
    otherwise ``parts`` as split, or a UsageError when a field read as STEPS is plainly a path."""
    for cut in (len(parts), len(parts) - 1):
        path = ":".join(parts[1:cut])
        if os.path.isfile(path) and (cut == len(parts) or kind != "single"):
            return [kind, path] + parts[cut:]
    tail = ":".join(parts[2:])
    if "/" in tail or "\\" in tail or PurePath(tail).suffix:  # read as STEPS, but plainly part of a path
        raise UsageError(f"--method {original!r}: {tail!r} is not a STEPS count, and there is no file "
                         f"{':'.join(parts[1:])!r} (a ':' inside a checkpoint path works when the whole path "
                         "names an existing file)")
    return parts


def parse_methods(texts, generator: str | None = None, extra=()) -> list[MethodSpec]:
    """CLI method strings (and dicts from --methods-json, first) -> checked specs."""
    specs = [spec_from_dict(d) for d in extra]
    checkpoints = [s.checkpoint for s in specs if getattr(s, "checkpoint", None)]
    for text in texts:
        spec = parse_method(text, generator, tuple(checkpoints))
        if getattr(spec, "checkpoint", None):
            checkpoints.append(spec.checkpoint)
        specs.append(spec)
    return check_specs(specs)


def check_specs(specs) -> list[MethodSpec]:
    """Names unique; a hybrid's encoder is an encoder method listed before it."""
    specs = [spec_from_dict(s) for s in specs]
    seen = {}
    for spec in specs:
        if spec.name in seen:
            raise UsageError(f"two methods are named {spec.name!r}; give one of them another NAME= prefix")
        if isinstance(spec, HybridSpec):
            encoder = seen.get(spec.encoder)
            if not isinstance(encoder, (ReStyleSpec, SingleSpec, NaiveSpec)):
                raise UsageError(f"hybrid {spec.name!r}: encoder {spec.encoder!r} must name an encoder method "
                                 "(restyle, single or naive) listed before it")
        seen[spec.name] = spec
    return specs


def _clip(value, n: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= n else text[:n] + "...'"


def _stem(path: str) -> str:
    """A checkpoint's file stem, made safe as a method name."""
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", PurePath(path).stem)[:80] or "method"
