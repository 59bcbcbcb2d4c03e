"""In-N-Out fitting: initialisation, W+ inversion, joint optimisation of the latents and the OOD field, SR
fine-tuning, and the staged, cached pipeline that writes a scene file.

The package face below is what the app, the exports and the command line use; the modules behind it
are the fit's own business.
"""

from .config import PRESETS, FitConfig, SettingError, apply_overrides, get_preset, scaled
from .masks import MaskError, read_mask
from .pipeline import METHODS, planned_stages
from .run import RANDOM_GENERATORS, fit_video, random_generator, scene_source

__all__ = [
    "METHODS",
    "PRESETS",
    "RANDOM_GENERATORS",
    "FitConfig",
    "MaskError",
    "SettingError",
    "apply_overrides",
    "fit_video",
    "get_preset",
    "planned_stages",
    "random_generator",
    "read_mask",
    "scaled",
    "scene_source",
]
