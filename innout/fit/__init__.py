"""In-N-Out fitting: initialisation, W+ inversion, the OOD field, composite rendering, joint optimisation,
SR fine-tuning and the staged, cached pipeline that writes a scene file."""

from .composite import CompositeRender, render_composite, render_composite_image
from .config import FitConfig, SettingError, apply_overrides, get_preset
from .data import FitData
from .ood_field import FieldSamples, OODField
from .pipeline import METHODS, FitPipeline
from .run import fit_video, random_generator
from .scene_file import SceneData, SceneFormatError, load_scene, save_scene

__all__ = [
    "METHODS",
    "CompositeRender",
    "FieldSamples",
    "FitConfig",
    "FitData",
    "FitPipeline",
    "OODField",
    "SceneData",
    "SceneFormatError",
    "SettingError",
    "apply_overrides",
    "fit_video",
    "get_preset",
    "load_scene",
    "random_generator",
    "render_composite",
    "render_composite_image",
    "save_scene",
]
