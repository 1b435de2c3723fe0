"""Which direction source a domain's edits use (the paper's pairing, ``Domain.editing``), and directions
built from an edit spec (``restyle_lab.facts.edit_specs``). Rows default to all rows, except for SeFa whose
default is its editor's layers 2-5.
"""

from __future__ import annotations

from dataclasses import replace

from ..facts.domains import FIRST_COMPONENTS, Domain, EditPairing
from ..facts.edit_specs import SOURCES, parse_edits
from ..facts.errors import UsageError
from .directions import Direction, calibrate, mapped_samples, parse_rows
from .ganspace import ganspace_direction, ganspace_pca
from .interfacegan import load_interfacegan_dir
from .mini import fit_mini_directions
from .sefa import sefa_direction

SEFA_DEFAULT_ROWS = "2-5"


def pairing(domain: Domain, source: str = "", edits: str = "", interfacegan_dir: str = "") -> tuple[str, str, str]:
    """(source, edit spec, a note on what was chosen): the given ones, else the domain's pairing
    (``Domain.editing``, the paper's supplementary Figs. 22-24).

    The faces pairing needs the published InterFaceGAN files: without ``interfacegan_dir`` it falls
    back to GANSpace and says so in the note; asking for ``source="interfacegan"`` without them is an error.
    """
    default = domain.editing
    if source and source not in SOURCES:
        raise UsageError(f"source must be one of {SOURCES}. Got: {source!r}")
    note = f"{domain.name}: the paper's pairing, {default.source}" if not source else f"{domain.name}: {source}, as asked"
    if not source and default.source == "interfacegan" and not interfacegan_dir:
        default = EditPairing("ganspace", FIRST_COMPONENTS)
        note = (f"{domain.name}: the paper pairs it with InterFaceGAN, whose files are not shipped; set "
                "interfacegan_dir to the folder with age.pt / smile.pt / pose.pt. Using GANSpace meanwhile")
    source = source or default.source
    if not edits:
        edits = default.edits if source == default.source else (FIRST_COMPONENTS if source in ("ganspace", "sefa")
                                                                else "")
    if not edits:
        raise UsageError(f"source {source!r} on {domain.name!r} needs edits (e.g. 'smile,age')")
    return source, edits, note


def build_directions(source: str, edits: str, generator, interfacegan_dir: str = "", judge=None,
                     n_samples: int = 10_000, seed: int = 0) -> list[Direction]:
    """Calibrated directions (strength 1 = one standard deviation of mapped w along each) for ``generator``.

    interfacegan: ``<interfacegan_dir>/<name>.pt`` files; interfacegan_fit: fitted on ``n_samples``
    mapped samples labelled by ``judge`` (mini); ganspace: PCA of ``n_samples`` mapped samples; sefa:
    the modulation weights of the spec's rows.
    """
    specs = parse_edits(edits)
    n_styles, style_dim = generator.n_latent, generator.style_dim
    if source == "interfacegan_fit":
        if judge is None:
            raise UsageError("interfacegan_fit labels samples with an attribute judge; only the mini domain has one "
                             "(restyle_lab.mini.attributes). Elsewhere use source='interfacegan' with the files.")
        # one labelled sample set for every attribute; rows are set per edit afterwards
        fitted = fit_mini_directions(generator, judge, [s.name for s in specs], n_samples=n_samples, seed=seed)
        return [replace(d, rows=parse_rows(s.rows or "all", n_styles)) for d, s in zip(fitted, specs)]
    if source == "ganspace":
        pca = ganspace_pca(generator, n_samples, seed)
        return [ganspace_direction(pca, s.component if s.component is not None else 0, n_styles, s.rows or "all",
                                   name=s.name) for s in specs]
    w = mapped_samples(generator, n_samples, seed)
    if source == "interfacegan":
        if not interfacegan_dir:
            raise UsageError("source 'interfacegan' reads the published files: give interfacegan_dir, the folder "
                             "holding age.pt, smile.pt, pose.pt (not shipped with restyle-lab)")
        dirs = []
        for s in specs:
            dirs += load_interfacegan_dir(interfacegan_dir, [s.name], n_styles, style_dim, rows=s.rows or "all")
        return [calibrate(d, w) for d in dirs]
    if source == "sefa":
        return [calibrate(sefa_direction(generator, s.component if s.component is not None else 0,
                                         s.rows or SEFA_DEFAULT_ROWS, name=s.name), w) for s in specs]
    raise ValueError(f"source must be one of {SOURCES}. Got: {source!r}")
