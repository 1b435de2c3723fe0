"""The paper's colours: pSp red, e4e blue, optimisation green (IDInvert orange), everything else grey; the colour
map of change maps and what its scale means.

torch- and matplotlib-free, so method kinds can carry their own plot style (``restyle_lab.facts.methods``).
"""

from __future__ import annotations

from .configs import FAMILIES

RED, BLUE, GREEN, ORANGE, GREY = "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#7f7f7f"
PALETTE = [RED, BLUE, GREEN, ORANGE, GREY]
GROUP_COLOURS = {"coarse": RED, "medium": GREEN, "fine": BLUE}
OPTIMISATION = GREEN
_BASE_COLOURS = {"psp": RED, "e4e": BLUE}


def family_colour(family: str | None) -> str:
    """The colour of an encoder family (``configs.FAMILIES``): its base method's; grey when unknown."""
    known = FAMILIES.get(family or "")
    return _BASE_COLOURS.get(known.base, GREY) if known else GREY

# change maps (step_heatmaps, the explorer): red = large change, as in the paper's Figs. 6-7. How a map is scaled
# (the notebooks' ``normalise`` parameter and the explorer's control) -> what its colour bar's 1 means
CHANGE_CMAP = "jet"
CHANGE_SCALES = {"global": "the largest change over all steps", "per step": "the largest change in that step"}
