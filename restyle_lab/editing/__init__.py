"""Latent editing on inversions (supplementary Figs. 22-24): directions from three sources, applied to
w+ codes, rendered, and measured where attributes can be read (mini).

Sources, all returning ``Direction`` (a [D] or [n_styles, D] vector, the style rows it moves, and
``sigma``: strength 1 = one standard deviation of mapped w along it):

- InterFaceGAN: ``load_interfacegan`` (the published files, read from the user's folder; their
  format is in ``editing.interfacegan``), ``fit_interfacegan`` (linear SVM / logistic regression
  on codes and scores), ``project_out`` (conditional edits);
- GANSpace: ``ganspace_pca`` + ``ganspace_direction`` (PCA of mapped w, seeded);
- SeFa: ``sefa_factorize`` + ``sefa_direction`` (closed form from the modulation weights of a row range).

``edit(codes, direction, strengths)`` applies one; ``measure_edits`` / ``edit_success`` /
``summarise`` / ``compare`` measure them; ``build_directions`` and ``pairing`` pick a source per domain.
"""

from ..facts.edit_specs import SOURCES, parse_edits, parse_strengths
from .directions import Direction, calibrate, directions_table, edit, mapped_samples, parse_rows
from .ganspace import PCA, ganspace_direction, ganspace_pca
from .interfacegan import DirectionFileError, fit_interfacegan, load_interfacegan, load_interfacegan_dir, project_out
from .measure import SUCCESS_MEASURES, compare, edit_images, edit_success, measure_edits, render, summarise
from .sefa import modulations, sefa_direction, sefa_factorize
from .sources import build_directions, pairing

__all__ = [
    "Direction", "calibrate", "directions_table", "edit", "mapped_samples", "parse_rows",
    "PCA", "ganspace_direction",
    "ganspace_pca", "DirectionFileError", "fit_interfacegan", "load_interfacegan", "load_interfacegan_dir",
    "project_out", "SUCCESS_MEASURES", "compare", "edit_images", "edit_success", "measure_edits", "render",
    "summarise", "modulations", "sefa_direction", "sefa_factorize", "build_directions", "pairing", "SOURCES",
    "parse_edits", "parse_strengths",
]
