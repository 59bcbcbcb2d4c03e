"""In-N-Out fitting: initialisation, W+ inversion, joint optimisation of the latents and the OOD field, SR
fine-tuning, and the staged, cached pipeline that writes a scene file.

The package face below is what the app, the exports and the command line use; the modules behind it
are the fit's own business.
"""

from ..settings import SettingError, apply_overrides
from .budget import FitUnfinished, time_budget
from .config import FitConfig
from .masks import MaskError, read_mask
from .pipeline import CACHED, METHODS, RESUMING, planned_stages, planned_steps
from .presets import PRESETS, get_preset, scaled
from .run import fit_video, scene_source

__all__ = [
    "CACHED",
    "METHODS",
    "PRESETS",
    "RESUMING",
    "FitConfig",
    "FitUnfinished",
    "MaskError",
    "SettingError",
    "apply_overrides",
    "fit_video",
    "get_preset",
    "planned_stages",
    "planned_steps",
    "read_mask",
    "scaled",
    "scene_source",
    "time_budget",
]
