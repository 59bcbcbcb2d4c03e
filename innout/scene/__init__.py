"""A fitted scene: its self-contained file format, its OOD field, the composite render, its edits and
caches, and ``Scene.render(RenderRequest)``. Inference only: nothing here imports the fitting code."""

from .composite import render_composite
from .edits import RenderError, SceneEdits
from .file import SceneData, SceneFormatError, SceneSource, load_scene, save_scene
from .ood_field import OODField
from .scene import QUALITIES, REMOVAL_MODES, Camera, Quality, RenderRequest, Scene, SceneRender

__all__ = [
    "QUALITIES",
    "REMOVAL_MODES",
    "Camera",
    "OODField",
    "Quality",
    "RenderError",
    "RenderRequest",
    "Scene",
    "SceneData",
    "SceneEdits",
    "SceneFormatError",
    "SceneRender",
    "SceneSource",
    "load_scene",
    "render_composite",
    "save_scene",
]
