"""The paper's analyses as functions returning tidy DataFrames, and their plots."""

from . import explorer
from .alignment import (
    alignment_samples,
    alignment_scores,
    alignment_summary,
    luma_lowpass_pearson,
    plot_alignment_pairs,
    plot_alignment_scores,
)
from .editing import comparison_view, edit_success_view, plot_edit_grid, plot_edit_success
from .heatmaps import (
    NORMALISATIONS,
    change_table,
    mean_heatmaps,
    normalise,
    normalise_per_image,
    normalise_per_step,
    plot_image_heatmaps,
    plot_mean_heatmaps,
    plot_strips,
    step_changes,
)
from .latents import latent_change, plot_latent_change
from .output import save_figure, save_parameters, save_table
from .quality import (
    brief_statuses,
    images_per_method,
    per_step_means,
    plot_quality_time,
    plot_step_curves,
    plot_table,
    quality_time_table,
    step_table,
)
from .visual import display_name, generator_label, inversion_label, method_label, timing_note

__all__ = [
    "explorer", "display_name", "generator_label", "method_label", "comparison_view", "edit_success_view",
    "inversion_label", "plot_edit_grid", "plot_edit_success", "alignment_samples", "alignment_scores",
    "alignment_summary", "luma_lowpass_pearson", "plot_alignment_pairs", "plot_alignment_scores", "NORMALISATIONS",
    "change_table", "mean_heatmaps", "normalise", "normalise_per_image", "normalise_per_step", "plot_image_heatmaps",
    "plot_mean_heatmaps", "plot_strips", "step_changes", "latent_change", "plot_latent_change", "save_figure",
    "save_parameters", "save_table", "brief_statuses", "images_per_method", "per_step_means", "plot_quality_time",
    "plot_step_curves", "quality_time_table", "step_table", "plot_table", "timing_note",
]
