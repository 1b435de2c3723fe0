"""The notebooks and their parameters, in one table.

``PARAMS`` holds every parameter once: its default, how its value is checked, its smoke cap and
its documentation; ``NOTEBOOKS`` says which parameters and methods each notebook has. The
notebooks' parameters cells are this table written out (``parameters_cell``, by ``run.docs_tables``; a test
fails when they are stale), ``Lab.from_parameters`` (inside a notebook) and ``restyle-lab reproduce`` (before running
any) resolve values through it, and the command line takes its defaults from it. A value that
cannot be honoured is refused here, with its name, before a notebook starts.

torch-free: the command line's ``--help`` reads the defaults.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Callable

from ..facts.catalog import NAMED_METHODS
from ..facts.defaults import DEFAULTS
from ..facts.domains import DOMAINS, STYLE_GROUP_SCHEMES
from ..facts.edit_specs import SOURCES, parse_edits, parse_strengths
from ..facts.errors import UsageError
from ..facts.formats import DTYPE_NAMES, IMPLS
from ..facts.literals import BOOL, FLOAT, INT, PATH, STR, Type, check_type, dict_of, list_of, optional
from ..facts.methods import positive_int
from ..facts.metric_names import IDENTITY, LPIPS, MSE, RECONSTRUCTION, SIMILARITIES
from ..facts.palette import CHANGE_SCALES
from ..facts.schedule import SNAPSHOTS

# ------------------------------------------------------------------ how values are checked
# A parameter's value is first a plain literal of its declared type (``literals``: nothing else ever reaches
# a notebook's code cell); then its check, if it has one, takes (value, what) and returns the value to use,
# or raises UsageError naming ``what``.

def count(value, what: str):
    """A whole number >= 1 (None passes: an optional count's "all of them")."""
    return None if value is None else positive_int(value, what)


def fraction(value, what: str) -> float:
    if not 0 < value <= 1:
        raise UsageError(f"{what} must be a number in (0, 1]. Got: {value!r}")
    return value


def choice(*options) -> Callable:
    def check(value, what: str):
        if value not in options:
            raise UsageError(f"{what} must be one of {', '.join(options)}. Got: {value!r}")
        return value
    check.options = options
    return check


def parsed(parse: Callable) -> Callable:
    """Text (or a list) that ``parse`` must accept; empty text means the domain's default."""
    def check(value, what: str):
        if value != "":
            try:
                parse(value)
            except (UsageError, ValueError) as err:
                raise UsageError(f"{what}: {err}") from None
        return value
    return check


# ------------------------------------------------------------------ the table

@dataclass(frozen=True)
class Param:
    """One notebook parameter. type: the plain literals it takes (``literals``); check: what else its value
    must satisfy (None: its type says all); smoke_cap: the most a smoke run (CI) uses; set_by: the
    ``reproduce`` option that sets it (a ``--params`` file may not)."""

    name: str
    default: object
    type: Type
    doc: str
    check: Callable | None = None
    smoke_cap: int | None = None
    set_by: str | None = None

    @property
    def choices(self) -> tuple:
        return getattr(self.check, "options", ())


RESULTS = "results"  # the folder under the working folder that holds every notebook's out_dir by default
SMOKE = {"n_images": 4, "steps": 3, "optim_steps": 20, "n_pairs": 4, "n_show": 4, "n_samples": 300}
RESTYLE_METHODS = tuple(m for m, e in NAMED_METHODS.items() if e.kind == "restyle")
FOLDER = optional(PATH)  # empty (or null): the default place

PARAMS = {p.name: p for p in (
    Param("domain", DEFAULTS.domain, STR, " or ".join([", ".join(list(DOMAINS)[:-1]), list(DOMAINS)[-1]]), choice(*DOMAINS),
          set_by="--domain"),
    Param("checkpoints", "", optional(PATH | dict_of(STR, PATH)), "folder with the official checkpoint files (or "
          "{key: file}); empty: the domain's defaults (mini ships its own)"),
    Param("data_root", "", FOLDER, "folder of test images; empty: the mini test set, rendered on demand"),
    Param("n_images", 32, INT, "test images to use", count, SMOKE["n_images"]),
    Param("steps", DEFAULTS.steps, INT, "ReStyle / naive iterations", count, SMOKE["steps"]),
    Param("device", DEFAULTS.device, STR, "cpu, cuda, cuda:N", set_by="--device"),
    Param("dtype", DEFAULTS.dtype, STR, "float32, float64, bf16 or fp16 (bf16 / fp16: autocast, for GPUs)",
          choice(*DTYPE_NAMES), set_by="--dtype"),
    Param("impl", DEFAULTS.impl, STR, "fast ops, or reference (exact: the oracle the fast ones are tested against)",
          choice(*IMPLS), set_by="--impl"),
    Param("batch_size", DEFAULTS.batch_size, INT, "images per batch", count),
    Param("smoke", False, BOOL, f"tiny settings for CI ({SMOKE['n_images']} images, {SMOKE['steps']} steps, "
          f"{SMOKE['optim_steps']} optimisation steps)", set_by="--smoke"),
    Param("out_dir", "", FOLDER, f"where figures and tables go; empty: {RESULTS}/DOMAIN/NOTEBOOK under the working "
          "folder", set_by="--out"),
    Param("optim_steps", SNAPSHOTS[-1], INT, f"longest optimisation (snapshots at {', '.join(map(str, SNAPSHOTS))})",
          count, SMOKE["optim_steps"]),
    Param("optim_images", 64, optional(INT), "the optimisation baselines invert a seeded subset of this many images "
          "(all when fewer, or null)", count),
    Param("optim_batch_size", None, optional(INT), "images per optimisation batch; None: the domain's ("
          + ", ".join(f"{d.name}: {d.optim_batch_size}" for d in DOMAINS.values() if d.optim_batch_size)
          + "), else batch_size", count),
    Param("group_scheme", "stylegan", STR, "stylegan (coarse 0-3, medium 4-7, fine 8+) or psp (0-2, 3-6, 7+)",
          choice(*STYLE_GROUP_SCHEMES)),
    Param("n_show", 4, INT, "images shown", count, SMOKE["n_show"]),
    Param("normalise", "global", STR, "change maps divided by the image's largest change over all steps (global, the "
          "paper's Fig. 2) or by each step's own (per step: where a late step still changes the image)",
          choice(*CHANGE_SCALES)),
    Param("metric", MSE, STR, f"the metric plotted; {LPIPS} where its weights are available",
          choice(*RECONSTRUCTION, IDENTITY)),
    Param("n_pairs", 64, INT, "sampled codes", count, SMOKE["n_pairs"]),
    Param("truncation", 0.7, FLOAT, "towards w_avg, in (0, 1]", fraction),
    Param("similarity", SIMILARITIES[0], STR, f"or {LPIPS} where its weights are available", choice(*SIMILARITIES)),
    Param("method", "restyle_psp", STR, "any ReStyle method the domain has", choice(*RESTYLE_METHODS)),
    Param("source", "", STR, f"{', '.join(SOURCES[:-1])} or {SOURCES[-1]}; empty: the paper's pairing for the domain",
          choice("", *SOURCES)),
    Param("edits", "", STR, "NAME, NAME:COMPONENT or NAME:COMPONENT@ROWS, comma-separated; empty: the pairing",
          parsed(parse_edits)),
    Param("strengths", "-4,-2,0,2,4", STR | list_of(FLOAT), "edit strengths, in standard deviations of mapped w "
          "along each direction", parsed(parse_strengths)),
    Param("interfacegan_dir", "", FOLDER, "folder with the published age.pt / smile.pt / pose.pt (faces; not "
          "shipped)"),
    Param("n_samples", 2000, INT, "mapped w samples behind fits, PCA and strength calibration", count,
          SMOKE["n_samples"]),
)}


@dataclass(frozen=True)
class Notebook:
    """A notebook: its parameters in cell order, the named methods it runs (``catalog.NAMED_METHODS``; it runs
    those whose checkpoints exist and says which it skipped), the parameters whose default differs here, and
    whether it studies a generator pair (``catalog.GENERATOR_PAIRS``) instead of inverting."""

    name: str
    params: tuple
    methods: tuple = ()
    defaults: dict = field(default_factory=dict)
    generator_pair: bool = False

    def default(self, name: str):
        return self.defaults.get(name, PARAMS[name].default)

    def methods_with(self, params: dict) -> tuple:
        """The methods it runs with these parameters (the explorer: its ``method``)."""
        return (params.get("method", self.default("method")),) if "method" in self.params else self.methods


def _inverting(*extras) -> tuple:
    return ("domain", "checkpoints", "data_root", "n_images", "steps", "device", "dtype", "impl", "batch_size", "smoke",
            "out_dir", *extras)


NOTEBOOKS = {n.name: n for n in (
    Notebook("quality_time", _inverting("optim_steps", "optim_images", "optim_batch_size"),
             ("psp", "e4e", "restyle_psp", "restyle_e4e", "optim_w", "restyle_psp+optim", "restyle_e4e+optim")),
    Notebook("latent_change", _inverting("group_scheme"), ("restyle_psp", "restyle_e4e")),
    Notebook("step_heatmaps", _inverting("n_show", "normalise"), ("restyle_psp", "restyle_e4e")),
    Notebook("fpn_vs_simple", _inverting(), ("restyle_psp_fpn", "restyle_psp")),
    Notebook("naive_vs_restyle", _inverting("metric"), ("restyle_psp", "psp_naive", "restyle_e4e", "e4e_naive")),
    Notebook("generator_alignment", ("domain", "checkpoints", "device", "smoke", "out_dir", "n_pairs", "truncation",
                                     "similarity"), generator_pair=True),
    Notebook("encoder_bootstrapping", _inverting("n_show"), ("restyle_psp_toon", "toon_bootstrap"), {"n_show": 6}),
    Notebook("explorer", _inverting("method")),  # its one method is its ``method`` parameter
    Notebook("editing", _inverting("optim_steps", "optim_batch_size", "source", "edits", "strengths",
                                   "interfacegan_dir", "n_samples", "n_show"),
             ("restyle_psp", "restyle_e4e", "psp", "e4e", "optim_w"), {"n_show": 3}),
)}
ALL_PARAMS = tuple(dict.fromkeys(p for n in NOTEBOOKS.values() for p in n.params))


class Params(Mapping):
    """A notebook's resolved parameters, read-only, by key or attribute (``lab.params.n_images``)."""

    def __init__(self, values: dict):
        object.__setattr__(self, "_values", dict(values))

    def __getitem__(self, key):
        return self._values[key]

    def __getattr__(self, key):
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"no parameter {key!r}; this notebook has {', '.join(self._values)}") from None

    def __setattr__(self, key, value):
        raise AttributeError("parameters are read-only; give them to Lab.from_parameters")

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def __repr__(self):
        return f"Params({self._values!r})"



def notebook(name: str) -> Notebook:
    if name not in NOTEBOOKS:
        raise UsageError(f"unknown notebook {name!r}; known: {', '.join(NOTEBOOKS)}")
    return NOTEBOOKS[name]


def check_parameters(name: str, params: dict) -> dict:
    """``params`` checked against notebook ``name``'s parameters and their rules; returns the checked values.
    Unknown names and values that cannot be honoured raise UsageError naming them."""
    nb = notebook(name)
    unknown = sorted(set(params) - set(nb.params))
    if unknown:
        raise UsageError(f"notebook {name!r} has no parameter(s) {unknown}; its parameters: {', '.join(nb.params)}")
    out = {}
    for key, value in params.items():
        what = f"{name}: {key}"
        check_type(what, value, PARAMS[key].type)
        out[key] = PARAMS[key].check(value, what) if PARAMS[key].check else value
    return out


def resolve(name: str, given: dict) -> Params:
    """Every parameter of notebook ``name``: its default, overridden by ``given``, checked, and smoke-capped
    when ``smoke`` is set (the caps of ``PARAMS``)."""
    nb = notebook(name)
    values = {key: nb.default(key) for key in nb.params}
    values.update(check_parameters(name, given))
    if values.get("smoke"):
        values = {k: (min(v, PARAMS[k].smoke_cap) if PARAMS[k].smoke_cap else v) for k, v in values.items()}
    return Params(values)


def params_from_file(settings) -> dict:
    """notebook -> its parameters from a --params file: top-level keys apply to every notebook that takes
    them, a key named after a notebook holds that notebook's own. Anything else is refused."""
    if settings is None:
        return {n: {} for n in NOTEBOOKS}
    if not isinstance(settings, dict):
        raise UsageError(f"--params: expected a mapping of parameter names to values. Got: {type(settings).__name__}")
    unknown = sorted(k for k in settings if k not in ALL_PARAMS and k not in NOTEBOOKS)
    if unknown:
        raise UsageError(f"--params: unknown key(s) {unknown}; parameters are {', '.join(sorted(ALL_PARAMS))}, and a "
                         f"notebook name ({', '.join(NOTEBOOKS)}) may hold that notebook's own")
    out = {}
    for name, nb in NOTEBOOKS.items():
        own = settings.get(name) or {}
        if not isinstance(own, dict):
            raise UsageError(f"--params: {name} must hold a mapping of that notebook's parameters. Got: {own!r}")
        params = {k: v for k, v in settings.items() if k in nb.params}
        params.update(own)
        fixed = sorted(k for k in params if PARAMS[k].set_by)
        if fixed:
            raise UsageError(f"--params sets {fixed}, which reproduce sets itself: use "
                             f"{', '.join(PARAMS[k].set_by for k in fixed)}")
        out[name] = check_parameters(name, params)
    return out


HEADER = "# Parameters (papermill overrides these; `restyle-lab reproduce` sets them per domain)"


def _literal(value) -> str:
    return json.dumps(value) if isinstance(value, str) else repr(value)


def parameters_cell(name: str) -> str:
    """The source of notebook ``name``'s parameters cell, written from the table (literals only)."""
    nb = notebook(name)
    lines = [HEADER]
    for key in nb.params:
        lines.append(f"{key} = {_literal(nb.default(key))}".ljust(21) + f"  # {PARAMS[key].doc}")
    return "\n".join(lines) + "\n"


def parameters_markdown() -> str:
    """The documentation's table of the notebook parameters (``docs/generated/parameters.md``, written by
    ``run.docs_tables``)."""
    lines = ["| parameter | default | smoke cap | notebooks | what it sets |", "| --- | --- | --- | --- | --- |"]
    for key in ALL_PARAMS:
        users = [n for n in NOTEBOOKS.values() if key in n.params]
        own = [f"{n.name}: {_literal(n.defaults[key])}" for n in users if key in n.defaults]
        default = _literal(PARAMS[key].default) + (f" ({', '.join(own)})" if own else "")
        others = [n for n in NOTEBOOKS if n not in {u.name for u in users}]
        where = ", ".join(n.name for n in users) if len(users) <= len(others) else \
            "all" + (f" but {', '.join(others)}" if others else "")
        cap = "" if PARAMS[key].smoke_cap is None else str(PARAMS[key].smoke_cap)
        lines.append(f"| `{key}` | `{default}` | {cap} | {where} | {PARAMS[key].doc} |")
    return "\n".join(lines) + "\n"
