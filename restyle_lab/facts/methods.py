"""Inversion methods as typed, frozen specs, one class per kind, each owning its behaviour.

A spec says what to run. Its class knows how it is written (the command line's
``[NAME=]KIND:ARG[:STEPS]``, a dict, a notebook's named method), which inverter it builds
(``build``, through the engine's builder, ``restyle_lab.inversion.build``), how many steps it
runs and how the plan probes it, and how a plot draws it. Nothing else dispatches on the kind.

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
from .palette import GREEN, family_colour
from .schedule import PROJECTOR_OPTIONS, SNAPSHOTS, ProjectorConfig, snapshot_schedule

DEFAULT_STEPS = 5
DEFAULT_OPTIM_STEPS = SNAPSHOTS[-1]
# names become folder names in a run directory: no path separators, no leading dot, no line ends, and short
# enough for any file system (checked before anything is written)
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
MAX_NAME_LENGTH = 100


def positive_int(value, what: str) -> int:
    """``value`` as a whole number >= 1, or a UsageError naming ``what``."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if isinstance(value, bool) or not (text.isdigit() and int(text) >= 1):
        raise UsageError(f"{what} must be a whole number of at least 1. Got: {value!r}")
    return int(text)


@dataclass(frozen=True)
class CliContext:
    """What the rest of a command line tells a method: the ``--generator`` file and the encoder
    checkpoints of the methods given before it (an optimisation without a generator uses the first's
    decoder)."""

    generator: str | None = None
    checkpoints: tuple = ()


@dataclass(frozen=True)
class NamedSettings:
    """A notebook's settings for its named methods: iterations, optimiser steps, optimisation subset."""

    steps: int
    optim_steps: int
    optim_images: int | None = None


@dataclass(frozen=True)
class MethodSpec:
    """Common part of every method: its unique name (a folder name in the run store)."""

    name: str
    kind: ClassVar[str] = ""
    # an encoder method: a hybrid may start from its inversion
    encoder_method: ClassVar[bool] = False
    # the plan's probe: the first step carries set-up (and a hybrid's encoder), so it is timed apart
    setup_in_first_step: ClassVar[bool] = False
    # an optimisation: its batches take the notebook's optim_batch_size (its steps cost less per image in
    # larger batches), the others' its batch_size
    optimises: ClassVar[bool] = False
    # the command line's ARG may be followed by :STEPS; else the hint says what to use instead
    takes_steps: ClassVar[bool] = True
    # the command line's ARG names a checkpoint file (which may hold ':')
    arg_is_file: ClassVar[bool] = False
    steps_hint: ClassVar[str] = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not NAME_PATTERN.fullmatch(self.name):
            raise UsageError(f"method name {_clip(self.name)} must start with a letter or digit and hold only "
                             "letters, digits and _ . + -")
        if len(self.name) > MAX_NAME_LENGTH:
            raise UsageError(f"method name {_clip(self.name)} is {len(self.name)} characters long; at most "
                             f"{MAX_NAME_LENGTH} (it names a folder in the run directory)")

    # ------------------------------------------------------------------ written forms
    def to_dict(self) -> dict:
        out = {"name": self.name, "kind": self.kind}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name != "name" and value is not None:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "MethodSpec":
        """The spec of a dict without its ``kind``; unknown keys are refused, naming the allowed ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"method {data.get('name')!r} ({cls.kind}): unknown keys {unknown}; known: "
                             f"{', '.join(sorted(cls.written_keys()))}")
        if "name" not in data:
            raise UsageError(f"a {cls.kind} method needs a 'name'. Got: {data!r}")
        return cls(**data)

    @classmethod
    def written_keys(cls) -> set:
        """The keys its dict form may hold."""
        return {f.name for f in dataclasses.fields(cls)}

    @classmethod
    def from_cli(cls, name: str | None, arg: str, steps: int | None, context: CliContext,
                 original: str) -> "MethodSpec":  # pragma: no cover - every kind overrides it
        raise NotImplementedError

    @classmethod
    def named(cls, name: str, entry, checkpoints: dict, settings: NamedSettings) -> "MethodSpec":
        """The spec of a notebook's named method (``catalog.NamedMethod``) whose checkpoints are ``checkpoints``."""
        raise NotImplementedError  # pragma: no cover - every kind overrides it

    # ------------------------------------------------------------------ what it runs
    def files(self) -> dict:
        """role -> path of every file the method reads (their sha256 go into the provenance)."""
        return {}

    def needs(self) -> tuple:
        """Names of other methods this one runs on (a hybrid: its encoder)."""
        return ()

    @property
    def total_steps(self) -> int:
        """Iterations or optimiser steps per image."""
        return 1

    def probe_spec(self) -> "MethodSpec":
        """The cheap variant the plan times (a few steps of it)."""
        return self

    def timing_spec(self) -> "MethodSpec":
        """What a figure's timing pass runs (``inversion.timing``): the whole method, each step timed."""
        return self

    def timed_steps(self, measured: dict) -> list[tuple[int, float, bool]]:
        """(step, cumulative seconds per image, whether that step was timed) for each step a figure plots,
        from the timing pass's ``measured`` step -> cumulative seconds per image."""
        return [(s, t, True) for s, t in sorted(measured.items())]

    def with_images(self, images: int | None) -> "MethodSpec":
        """The method on a seeded subset of that many test images, where its kind takes one (encoders cost
        little per image and always run on all of them)."""
        return self

    def build(self, builder):
        """This method's inverter, made by the engine's builder (``restyle_lab.inversion.build``)."""
        raise NotImplementedError  # pragma: no cover - every kind overrides it

    # ------------------------------------------------------------------ how plots draw it
    def plot_style(self, record: dict, records: dict) -> dict:
        """matplotlib keyword arguments (colour, line, marker; its label is the catalogue's display name);
        ``record``: its provenance entry (family, head), ``records``: all."""
        raise NotImplementedError  # pragma: no cover - every kind overrides it


class IteratedMixin:
    """An encoder run ``steps`` times (ReStyle, naive iteration): that many steps per image, two in the probe."""

    @property
    def total_steps(self) -> int:
        return self.steps

    def probe_spec(self):
        return dataclasses.replace(self, steps=2)


@dataclass(frozen=True)
class ReStyleSpec(IteratedMixin, MethodSpec):
    """``steps`` ReStyle iterations; ``bootstrap``: a ReStyle checkpoint whose ``bootstrap_steps``
    iterations give the starting point (encoder bootstrapping, paper Sec. 5.5)."""

    checkpoint: str = ""
    steps: int = DEFAULT_STEPS
    bootstrap: str | None = None
    bootstrap_steps: int = 1
    kind: ClassVar[str] = "restyle"
    arg_is_file: ClassVar[bool] = True
    encoder_method: ClassVar[bool] = True

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

    @classmethod
    def from_dict(cls, data: dict) -> "ReStyleSpec":
        data = dict(data)
        if isinstance(data.get("bootstrap"), dict):
            boot = dict(data.pop("bootstrap"))
            data["bootstrap"] = boot.pop("checkpoint", None)
            data["bootstrap_steps"] = boot.pop("steps", 1)
            if boot:
                raise UsageError(f"method {data.get('name')!r}: unknown bootstrap keys {sorted(boot)}; "
                                 "known: checkpoint, steps")
        return super().from_dict(data)

    @classmethod
    def written_keys(cls) -> set:
        return super().written_keys() - {"bootstrap_steps"}

    @classmethod
    def from_cli(cls, name, arg, steps, context, original):
        return cls(name or f"restyle_{_stem(arg)}", checkpoint=arg, steps=steps or DEFAULT_STEPS)

    @classmethod
    def named(cls, name, entry, checkpoints, settings):
        start = str(checkpoints[entry.start_key]) if entry.start_key else None
        return cls(name, checkpoint=str(checkpoints[entry.key]), steps=settings.steps, bootstrap=start)

    def files(self) -> dict:
        return {"checkpoint": self.checkpoint, **({"bootstrap": self.bootstrap} if self.bootstrap else {})}

    def build(self, builder):
        start = (builder.restyle(self, self.bootstrap, 1, f"{self.name}_init"), self.bootstrap_steps) \
            if self.bootstrap else None
        return builder.restyle(self, self.checkpoint, self.steps, self.name, bootstrap=start)

    def plot_style(self, record, records):
        style = {"color": family_colour(record.get("family")), "linestyle": "-", "marker": "o", "markersize": 4}
        if record.get("head") == "fpn":
            style.update(linestyle="-.", marker="s")
        return style


@dataclass(frozen=True)
class SingleSpec(MethodSpec):
    """One pass of a pSp / e4e encoder."""

    checkpoint: str = ""
    kind: ClassVar[str] = "single"
    arg_is_file: ClassVar[bool] = True
    encoder_method: ClassVar[bool] = True
    takes_steps: ClassVar[bool] = False
    steps_hint: ClassVar[str] = " (a single pass takes no STEPS; use naive:CKPT:STEPS to iterate)"

    def __post_init__(self):
        super().__post_init__()
        _need_path(self, "checkpoint")

    @classmethod
    def from_cli(cls, name, arg, steps, context, original):
        return cls(name or f"single_{_stem(arg)}", checkpoint=arg)

    @classmethod
    def named(cls, name, entry, checkpoints, settings):
        return cls(name, checkpoint=str(checkpoints[entry.key]))

    def files(self) -> dict:
        return {"checkpoint": self.checkpoint}

    def build(self, builder):
        return builder.encoder(self, self.checkpoint, 1, self.name)

    def plot_style(self, record, records):
        return {"color": family_colour(record.get("family")), "linestyle": "none", "marker": "*", "markersize": 14}


@dataclass(frozen=True)
class NaiveSpec(IteratedMixin, MethodSpec):
    """A pSp / e4e encoder fed its own output ``steps`` times (the paper's naive iteration)."""

    checkpoint: str = ""
    steps: int = DEFAULT_STEPS
    kind: ClassVar[str] = "naive"
    arg_is_file: ClassVar[bool] = True
    encoder_method: ClassVar[bool] = True

    def __post_init__(self):
        super().__post_init__()
        _need_path(self, "checkpoint")
        object.__setattr__(self, "steps", positive_int(self.steps, f"method {self.name!r}: steps"))

    @classmethod
    def from_cli(cls, name, arg, steps, context, original):
        return cls(name or f"naive_{_stem(arg)}", checkpoint=arg, steps=steps or DEFAULT_STEPS)

    @classmethod
    def named(cls, name, entry, checkpoints, settings):
        return cls(name, checkpoint=str(checkpoints[entry.key]), steps=settings.steps)

    def files(self) -> dict:
        return {"checkpoint": self.checkpoint}

    def build(self, builder):
        return builder.encoder(self, self.checkpoint, self.steps, self.name)

    def plot_style(self, record, records):
        return {"color": family_colour(record.get("family")), "linestyle": ":", "marker": "x", "markersize": 5}


@dataclass(frozen=True)
class ProjectorMixin:
    """What the two optimisation kinds share: the snapshot schedule, projector options, and a seeded subset.

    ``images``: invert at most this many test images, a subset drawn with ``subset_seed`` (the
    optimisation baselines cost seconds to minutes per image at real size); None: all of them.
    """

    setup_in_first_step: ClassVar[bool] = True
    optimises: ClassVar[bool] = True

    def _check_projector(self):
        _check_schedule(self)
        if self.images is not None:
            object.__setattr__(self, "images", positive_int(self.images, f"method {self.name!r}: images"))

    def _subset_dict(self) -> dict:
        return {} if self.images is None else {"images": self.images, "subset_seed": self.subset_seed}

    @classmethod
    def _split_options(cls, data: dict) -> dict:
        data = dict(data)
        data["options"] = {k: data.pop(k) for k in list(data) if k in PROJECTOR_OPTIONS}
        return data

    @classmethod
    def written_keys(cls) -> set:
        return (super().written_keys() - {"options"}) | set(PROJECTOR_OPTIONS)

    def projector_config(self, space: str) -> ProjectorConfig:
        options = dict(self.options)
        if options.get("perceptual") is False and "mse_weight" not in options:
            options["mse_weight"] = 1.0  # the MSE-only projector needs a loss
        return ProjectorConfig(space=space, record_at=self.record_at, **options)

    @property
    def total_steps(self) -> int:
        return self.record_at[-1]

    def probe_spec(self):
        return dataclasses.replace(self, record_at=(1, 3))

    def timing_spec(self):
        # a few steps: step 1 carries the set-up (a hybrid: its encoder), the next ones the cost of a step
        return self.probe_spec()

    def timed_steps(self, measured):
        """Each snapshot's time multiplied out from the few steps timed: step 1's, then the cost per step."""
        (first, t_first), (last, t_last) = sorted(measured.items())[0], sorted(measured.items())[-1]
        per_step = (t_last - t_first) / (last - first) if last > first else t_first
        return [(k, measured.get(k, t_first + (k - first) * per_step), k in measured) for k in self.record_at]

    def with_images(self, images):
        return dataclasses.replace(self, images=images)


@dataclass(frozen=True)
class OptimSpec(ProjectorMixin, MethodSpec):
    """The Karras et al. projector into ``space`` of ``generator`` (a generator file) or of the decoder
    of ``checkpoint``; snapshots at ``record_at``; ``options``: ProjectorConfig fields."""

    space: str = "w"
    record_at: tuple = SNAPSHOTS
    generator: str | None = None
    checkpoint: str | None = None
    options: dict = field(default_factory=dict)
    images: int | None = None
    subset_seed: int = 0
    kind: ClassVar[str] = "optim"

    def __post_init__(self):
        super().__post_init__()
        if self.space not in ("w", "w+"):
            raise UsageError(f"method {self.name!r}: space must be w or w+. Got: {self.space!r}")
        if bool(self.generator) == bool(self.checkpoint):
            raise UsageError(f"method {self.name!r}: give exactly one of generator (a generator file) or checkpoint "
                             "(an encoder checkpoint whose decoder is optimised)")
        self._check_projector()

    def to_dict(self) -> dict:
        out = {"name": self.name, "kind": self.kind, "space": self.space, "record_at": list(self.record_at)}
        out.update({"generator": self.generator} if self.generator else {"checkpoint": self.checkpoint})
        return {**out, **self.options, **self._subset_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> "OptimSpec":
        return super().from_dict(cls._split_options(data))

    @classmethod
    def from_cli(cls, name, arg, steps, context, original):
        if arg not in ("w", "w+"):
            raise UsageError(f"--method {original!r}: optim takes w or w+. Got: {arg!r}")
        if not context.generator and not context.checkpoints:
            raise UsageError(f"--method {original!r}: optim needs --generator, or an encoder checkpoint in a method "
                             "given before it (its decoder is optimised)")
        source = {"generator": context.generator} if context.generator else {"checkpoint": context.checkpoints[0]}
        return cls(name or f"optim_{arg}", space=arg, record_at=snapshot_schedule(steps or DEFAULT_OPTIM_STEPS),
                   **source)

    @classmethod
    def named(cls, name, entry, checkpoints, settings):
        return cls(name, space=entry.space, record_at=snapshot_schedule(settings.optim_steps),
                   generator=str(checkpoints[entry.key]), images=settings.optim_images)

    def files(self) -> dict:
        return {"generator": self.generator} if self.generator else {"checkpoint": self.checkpoint}

    def build(self, builder):
        return builder.projector(self, self.projector_config(self.space))

    def plot_style(self, record, records):
        return {"color": GREEN, "linestyle": "--", "marker": "o", "markersize": 3}


@dataclass(frozen=True)
class HybridSpec(ProjectorMixin, MethodSpec):
    """The projector in W+ started from the inversion of ``encoder`` (another method's name)."""

    encoder: str = ""
    record_at: tuple = SNAPSHOTS
    options: dict = field(default_factory=dict)
    images: int | None = None
    subset_seed: int = 0
    kind: ClassVar[str] = "hybrid"

    def __post_init__(self):
        super().__post_init__()
        if not self.encoder:
            raise UsageError(f"method {self.name!r}: a hybrid needs 'encoder', the name of an encoder method")
        self._check_projector()

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "encoder": self.encoder, "record_at": list(self.record_at),
                **self.options, **self._subset_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> "HybridSpec":
        return super().from_dict(cls._split_options(data))

    @classmethod
    def from_cli(cls, name, arg, steps, context, original):
        return cls(name or f"{arg}+optim", encoder=arg, record_at=snapshot_schedule(steps or DEFAULT_OPTIM_STEPS))

    @classmethod
    def named(cls, name, entry, checkpoints, settings):
        return cls(name, encoder=entry.key, record_at=snapshot_schedule(settings.optim_steps),
                   images=settings.optim_images)

    def needs(self) -> tuple:
        return (self.encoder,)

    def build(self, builder):
        return builder.hybrid(self, builder[self.encoder], self.projector_config("w+"))

    def plot_style(self, record, records):
        encoder = records.get(self.encoder, {})
        return {"color": family_colour(encoder.get("family")), "linestyle": "--", "marker": "o", "markersize": 3}


SPEC_CLASSES = {cls.kind: cls for cls in (ReStyleSpec, SingleSpec, NaiveSpec, OptimSpec, HybridSpec)}
KINDS = tuple(SPEC_CLASSES)
SYNTAX = "[NAME=]KIND:ARG[:STEPS] with KIND one of " + ", ".join(KINDS)
_encoders = [k for k, c in SPEC_CLASSES.items() if c.encoder_method]
ENCODER_KINDS = ", ".join(_encoders[:-1]) + " or " + _encoders[-1]


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
    return SPEC_CLASSES[kind].from_dict(data)


def spec_from_record(record: dict) -> MethodSpec:
    """The spec of a provenance entry, which also holds what running it revealed (family, sha256, ...)."""
    cls = SPEC_CLASSES.get(record.get("kind"))
    if cls is None:
        raise UsageError(f"method {record.get('name')!r}: kind must be one of {', '.join(KINDS)}")
    data = {k: v for k, v in record.items() if k in cls.written_keys() | {"bootstrap"}}
    if isinstance(data.get("bootstrap"), dict):
        data["bootstrap"] = {k: v for k, v in data["bootstrap"].items() if k in ("checkpoint", "steps")}
    return cls.from_dict(data)


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
    cls = SPEC_CLASSES.get(parts[0])
    if cls is None or len(parts) < 2 or not parts[1]:
        raise UsageError(f"--method {original!r}: expected {SYNTAX}")
    if cls.arg_is_file and len(parts) > 2:
        parts = _file_with_colons(original, cls, parts)
    max_parts = 3 if cls.takes_steps else 2
    if len(parts) > max_parts:
        extra = ":".join(parts[max_parts:])
        raise UsageError(f"--method {original!r}: unexpected {extra!r} after {cls.kind}:{':'.join(parts[1:max_parts])}"
                         f"{cls.steps_hint}")
    steps = positive_int(parts[2], f"--method {original!r}: STEPS") if len(parts) == 3 else None
    return cls.from_cli(name, parts[1], steps, CliContext(generator, tuple(checkpoints)), original)


def _file_with_colons(original: str, cls, parts: list) -> list:
    """[kind, path, (steps)] where the checkpoint path itself holds ':' (it names an existing file);
    otherwise ``parts`` as split, or a UsageError when a field read as STEPS is plainly a path."""
    for cut in (len(parts), len(parts) - 1):
        path = ":".join(parts[1:cut])
        if os.path.isfile(path) and (cut == len(parts) or cls.takes_steps):
            return [cls.kind, path] + parts[cut:]
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
    """Names unique; a method another runs on (a hybrid's encoder) is an encoder method listed before it."""
    specs = [spec_from_dict(s) for s in specs]
    seen = {}
    for spec in specs:
        if spec.name in seen:
            raise UsageError(f"two methods are named {spec.name!r}; give one of them another NAME= prefix")
        for other in spec.needs():
            if not getattr(seen.get(other), "encoder_method", False):
                raise UsageError(f"{spec.kind} {spec.name!r}: encoder {other!r} must name an encoder method "
                                 f"({ENCODER_KINDS}) listed before it")
        seen[spec.name] = spec
    return specs


def _clip(value, n: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= n else text[:n] + "...'"


def _stem(path: str) -> str:
    """A checkpoint's file stem, made safe as a method name."""
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", PurePath(path).stem)[:80] or "method"
