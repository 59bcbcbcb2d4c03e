"""The synthetic face world: procedural heads with named attributes, OOD objects as data, an exact renderer
of its own, clips with ground truth, and the small prior trained to draw its heads (docs/world.md)."""

from .clips import ClipPlan, WorldClip, render_clip
from .heads import ATTRIBUTES, Head, HeadAttributes
from .objects import ObjectSpec, ObjectSpecError, builtin_objects, load_object
from .render import WorldRender, render_world

__all__ = [
    "ATTRIBUTES",
    "ClipPlan",
    "Head",
    "HeadAttributes",
    "ObjectSpec",
    "ObjectSpecError",
    "WorldClip",
    "WorldRender",
    "builtin_objects",
    "load_object",
    "render_clip",
    "render_world",
]
