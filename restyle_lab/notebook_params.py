"""The notebooks: their names, parameters, smoke settings, and the methods each runs.

One table that ``Lab.from_parameters`` (inside a notebook), ``restyle-lab reproduce``
(before running any) and the tests all read. A parameter that cannot be honoured is
refused here, with its name, before a notebook starts.
"""

from __future__ import annotations

from .analysis.alignment import SIMILARITIES
from .catalog import NAMED_METHODS
from .devices import DTYPES, IMPLS
from .domains import STYLE_GROUP_SCHEMES
from .editing import SOURCES, parse_edits, parse_strengths
from .errors import UsageError
from .literals import BOOL, FLOAT, INT, PATH, STR, dict_of, list_of, optional, check_type
from .methods import positive_int
from .metrics import METRICS

NOTEBOOKS = ["quality_time", "latent_change", "step_heatmaps", "fpn_vs_simple", "naive_vs_restyle",
             "generator_alignment", "encoder_bootstrapping", "explorer", "editing"]
# The parameters every notebook takes, and each one's extras (README documents them; a test checks the
# notebooks' parameters cells against these lists).
COMMON_PARAMETERS = ["domain", "checkpoints", "data_root", "n_images", "steps", "device", "dtype", "impl",
                     "batch_size", "smoke", "out_dir"]
EXTRA_PARAMETERS = {"quality_time": ["optim_steps", "optim_images"], "latent_change": ["group_scheme"],
                    "step_heatmaps": ["n_show"], "fpn_vs_simple": [], "naive_vs_restyle": ["metric"],
                    "generator_alignment": ["n_pairs", "truncation", "similarity"],
                    "encoder_bootstrapping": ["n_show"], "explorer": ["method"],
                    "editing": ["optim_steps", "source", "edits", "strengths", "interfacegan_dir", "n_samples",
                                "n_show"]}
# The methods each notebook runs (a notebook runs those whose checkpoints exist, and says which it skipped);
# generator_alignment runs no inversion: it needs a generator pair (catalog.GENERATOR_PAIRS).
NOTEBOOK_METHODS = {
    "quality_time": ["psp", "e4e", "restyle_psp", "restyle_e4e", "optim_w", "restyle_psp+optim", "restyle_e4e+optim"],
    "latent_change": ["restyle_psp", "restyle_e4e"],
    "step_heatmaps": ["restyle_psp", "restyle_e4e"],
    "fpn_vs_simple": ["restyle_psp_fpn", "restyle_psp"],
    "naive_vs_restyle": ["restyle_psp", "psp_naive", "restyle_e4e", "e4e_naive"],
    "generator_alignment": [],
    "encoder_bootstrapping": ["restyle_psp_toon", "toon_bootstrap"],
    "explorer": ["restyle_psp"],
    "editing": ["restyle_psp", "restyle_e4e", "psp", "e4e", "optim_w"],
}
# The smoke setting caps these (CI: seconds per notebook).
SMOKE_CAPS = {"n_images": 4, "steps": 3, "optim_steps": 20, "n_pairs": 4, "n_show": 4, "n_samples": 300}
# Parameters that reproduce sets from its own options (a --params file may not set them).
SET_BY_REPRODUCE = {"domain": "--domain", "device": "--device", "dtype": "--dtype", "impl": "--impl", "smoke": "--smoke",
                    "out_dir": "--out"}

# The declared type of every parameter: a value of another type is refused by name before papermill
# writes it into a notebook (literals.py: only plain literals ever reach a code cell).
PARAM_TYPES = {
    "domain": STR, "checkpoints": optional(PATH | dict_of(STR, PATH)), "data_root": optional(PATH),
    "n_images": INT, "steps": INT, "device": STR, "dtype": STR, "impl": STR, "batch_size": INT, "smoke": BOOL,
    "out_dir": optional(PATH), "optim_steps": INT, "optim_images": optional(INT), "group_scheme": STR,
    "n_show": INT, "metric": STR, "n_pairs": INT, "truncation": FLOAT, "similarity": STR, "method": STR,
    "source": STR, "edits": STR, "strengths": STR | list_of(FLOAT), "interfacegan_dir": optional(PATH),
    "n_samples": INT,
}

_COUNTS = ("n_images", "steps", "batch_size", "optim_steps", "optim_images", "n_show", "n_pairs", "n_samples")
_CHOICES = {"group_scheme": STYLE_GROUP_SCHEMES, "metric": tuple(METRICS), "similarity": tuple(SIMILARITIES),
            "method": tuple(m for m, e in NAMED_METHODS.items() if e.kind == "restyle"),
            "source": ("", *SOURCES), "dtype": tuple(DTYPES), "impl": IMPLS}
# free-text parameters parsed before a notebook starts (each raises UsageError naming the problem)
_PARSED = {"strengths": parse_strengths, "edits": parse_edits}


def notebook_parameters(name: str) -> list[str]:
    if name not in EXTRA_PARAMETERS:
        raise UsageError(f"unknown notebook {name!r}; known: {', '.join(NOTEBOOKS)}")
    return COMMON_PARAMETERS + EXTRA_PARAMETERS[name]


def check_parameters(name: str, params: dict) -> dict:
    """``params`` checked against notebook ``name``'s parameter list and value rules; returns them with
    counts as ints. Unknown names and values that cannot be honoured raise UsageError naming them."""
    known = notebook_parameters(name)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise UsageError(f"notebook {name!r} has no parameter(s) {unknown}; its parameters: {', '.join(known)}")
    out = dict(params)
    for key, value in params.items():
        check_type(f"{name}: {key}", value, PARAM_TYPES[key])
        if key in _COUNTS and value is not None:  # None: optim_images' "all of them"
            out[key] = positive_int(value, f"{name}: {key}")
        elif key in _CHOICES and value not in _CHOICES[key]:
            raise UsageError(f"{name}: {key} must be one of {', '.join(_CHOICES[key])}. Got: {value!r}")
        elif key == "truncation" and not (isinstance(value, (int, float)) and 0 < value <= 1):
            raise UsageError(f"{name}: truncation must be a number in (0, 1]. Got: {value!r}")
        elif key in _PARSED and value != "":  # empty: the domain's default
            try:
                _PARSED[key](value)
            except (UsageError, ValueError) as err:
                raise UsageError(f"{name}: {key}: {err}") from None
        elif key == "smoke" and not isinstance(value, bool):
            raise UsageError(f"{name}: smoke must be true or false. Got: {value!r}")
    return out


def smoke_capped(params: dict) -> dict:
    """The parameters a smoke run uses: every count in SMOKE_CAPS capped."""
    return {k: (min(v, SMOKE_CAPS[k]) if k in SMOKE_CAPS else v) for k, v in params.items()}


def params_from_file(settings, domain: str) -> dict:
    """notebook -> its parameters from a --params file: top-level keys apply to every notebook that takes
    them, a key named after a notebook holds that notebook's own. Anything else is refused."""
    if settings is None:
        return {n: {} for n in NOTEBOOKS}
    if not isinstance(settings, dict):
        raise UsageError(f"--params: expected a mapping of parameter names to values. Got: {type(settings).__name__}")
    every = set(COMMON_PARAMETERS).union(*EXTRA_PARAMETERS.values())
    unknown = sorted(k for k in settings if k not in every and k not in NOTEBOOKS)
    if unknown:
        raise UsageError(f"--params: unknown key(s) {unknown}; parameters are {', '.join(sorted(every))}, and a "
                         f"notebook name ({', '.join(NOTEBOOKS)}) may hold that notebook's own")
    out = {}
    for name in NOTEBOOKS:
        own = settings.get(name) or {}
        if not isinstance(own, dict):
            raise UsageError(f"--params: {name} must hold a mapping of that notebook's parameters. Got: {own!r}")
        params = {k: v for k, v in settings.items() if k in notebook_parameters(name)}
        params.update(own)
        fixed = sorted(set(params) & set(SET_BY_REPRODUCE))
        if fixed:
            raise UsageError(f"--params sets {fixed}, which reproduce sets itself: use "
                             f"{', '.join(SET_BY_REPRODUCE[k] for k in fixed)}")
        out[name] = check_parameters(name, params)
    return out
