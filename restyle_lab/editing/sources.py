"""Which direction source each domain uses (the paper's pairing), and directions built from a short spec.

An edit spec is a comma-separated list of ``name[:component][@rows]``: ``"smile,yaw"`` (InterFaceGAN
names), ``"viewpoint:0@0-4,cube:16@3-5"`` (GANSpace or SeFa components on style rows, inclusive).
Rows default to all rows, except for SeFa whose default is its editor's layers 2-5.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import UsageError
from .directions import Direction, calibrate, mapped_samples, parse_rows
from .ganspace import CARS_EDITS, ganspace_direction, ganspace_pca
from .interfacegan import load_interfacegan_dir
from .mini import fit_mini_directions
from .sefa import sefa_direction

SOURCES = ("interfacegan", "interfacegan_fit", "ganspace", "sefa")
# domain -> (source, edit spec); supplementary Figs. 22-24: faces InterFaceGAN (age, smile), cars GANSpace
# (e4e's viewpoint / cube / colour components and rows), horses SeFa (the paper shows pose and rider edits
# without naming the eigenvectors: the first two are used here, on SeFa's default rows 2-5).
PAIRINGS = {
    "faces": ("interfacegan", "age,smile"),
    "toonify": ("interfacegan", "age,smile"),
    "cars": ("ganspace", ",".join(f"{k}:{CARS_EDITS[k][0]}@{CARS_EDITS[k][1]}"
                                  for k in ("viewpoint", "cube", "colour"))),
    "horse": ("sefa", "sefa0:0@2-5,sefa1:1@2-5"),
    "church": ("ganspace", "pc0:0,pc1:1"),
    "wild": ("ganspace", "pc0:0,pc1:1"),
    "mini": ("interfacegan_fit", "smile,yaw,hair_length,eye_size"),
}
SEFA_DEFAULT_ROWS = "2-5"


@dataclass(frozen=True)
class EditSpec:
    name: str
    component: int | None = None
    rows: str | None = None


def parse_edits(text: str) -> list[EditSpec]:
    """``"a,b:3,c:5@2-4"`` -> [EditSpec('a'), EditSpec('b', 3), EditSpec('c', 5, '2-4')]."""
    out = []
    for part in [p.strip() for p in str(text).split(",") if p.strip()]:
        head, _, rows = part.partition("@")
        name, _, comp = head.partition(":")
        if not name or (comp and not comp.strip().isdigit()):
            raise UsageError(f"an edit is name[:component][@rows], e.g. 'cube:16@3-5'. Got: {part!r}")
        out.append(EditSpec(name.strip(), int(comp) if comp else None, rows.strip() or None))
    if not out:
        raise UsageError(f"no edits in {text!r}")
    return out


def pairing(domain: str, source: str = "", edits: str = "", interfacegan_dir: str = "") -> tuple[str, str, str]:
    """(source, edit spec, a note on what was chosen): the given ones, else the domain's pairing.

    The faces pairing needs the published InterFaceGAN files: without ``interfacegan_dir`` it falls
    back to GANSpace and says so in the note; asking for ``source="interfacegan"`` without them is an error.
    """
    default = PAIRINGS.get(domain, ("ganspace", "pc0:0,pc1:1"))
    if source and source not in SOURCES:
        raise UsageError(f"source must be one of {SOURCES}. Got: {source!r}")
    note = f"{domain}: the paper's pairing, {default[0]}" if not source else f"{domain}: {source}, as asked"
    if not source and default[0] == "interfacegan" and not interfacegan_dir:
        default = ("ganspace", "pc0:0,pc1:1")
        note = (f"{domain}: the paper pairs it with InterFaceGAN, whose files are not shipped; set interfacegan_dir "
                "to the folder with age.pt / smile.pt / pose.pt. Using GANSpace meanwhile")
    source = source or default[0]
    if not edits:
        edits = default[1] if source == default[0] else ("pc0:0,pc1:1" if source in ("ganspace", "sefa") else "")
    if not edits:
        raise UsageError(f"source {source!r} on {domain!r} needs edits (e.g. 'smile,age')")
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
