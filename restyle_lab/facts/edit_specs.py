"""The text forms of edits and edit strengths, parsed without torch (the notebook parameters are
checked with these before a notebook starts).

An edit spec is a comma-separated list of ``name[:component][@rows]``: ``"smile,yaw"`` (InterFaceGAN
names), ``"viewpoint:0@0-4,cube:16@3-5"`` (GANSpace or SeFa components on style rows, inclusive).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UsageError

SOURCES = ("interfacegan", "interfacegan_fit", "ganspace", "sefa")


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


def parse_strengths(text) -> list[float]:
    """``"-2,-1,0,1,2"`` (or a list) -> [-2.0, -1.0, 0.0, 1.0, 2.0]; 0 must be among them (the inversion)."""
    values = [float(s) for s in (str(text).split(",") if isinstance(text, str) else text) if str(s).strip()]
    if 0.0 not in values:
        raise UsageError(f"strengths must include 0, the unedited inversion. Got: {text!r}")
    return values
