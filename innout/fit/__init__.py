"""In-N-Out fitting: the OOD field, composite rendering and (to come) the staged, cached optimisation."""

from .composite import CompositeRender, render_composite, render_composite_image
from .ood_field import FieldSamples, OODField

__all__ = ["CompositeRender", "FieldSamples", "OODField", "render_composite", "render_composite_image"]
