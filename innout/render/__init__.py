"""Volume rendering shared by everything: fields (points -> colour, density, optional blend), the samplers,
and the one marcher that composites a base field and an optional overlay at the same samples."""

from .fields import Field, FieldSamples, MarchSettings
from .marcher import Render, default_points_per_chunk, interval_weights, per_sample_weights, render_rays
from .samplers import draw_samples, importance_depths, stratified_depths

__all__ = [
    "Field",
    "FieldSamples",
    "MarchSettings",
    "Render",
    "default_points_per_chunk",
    "draw_samples",
    "importance_depths",
    "interval_weights",
    "per_sample_weights",
    "render_rays",
    "stratified_depths",
]
