"""The In-N-Out render: the face (EG3D's tri-planes) and the OOD field through the one marcher.

Both fields are evaluated at exactly the same sample positions: the fine samples follow the composite
weights, so where the OOD object occludes the face (glasses, a mask) it gets them, and where the face is
visible they fall on the skin as in EG3D. With b = 0 everywhere the render is EG3D's, exactly. The
official code evaluates the OOD field at the face's points but sorts them by other depths, which
misaligns the two fields; docs/differences.md says why we do not.
"""

from __future__ import annotations

import torch

from ..eg3d.cameras import camera_rays
from ..eg3d.generator import TriPlaneGenerator
from ..render import Render, render_rays
from .ood_field import OODField


def render_composite(
    G: TriPlaneGenerator,
    planes: torch.Tensor,
    ood: OODField,
    frames: torch.Tensor,
    cameras: torch.Tensor,
    *,
    resolution: int | None = None,
    blend_scale: float | torch.Tensor = 1.0,
    separate: bool = False,
    ood_codes: torch.Tensor | None = None,
    **march_options,
) -> Render:
    """Composite neural render from face tri-planes [N, 3, 32, H, W], the OOD field at ``frames`` [N] and
    cameras [N, 25]. ``blend_scale`` multiplies b: 0 removes the OOD object; a per-pixel map [N, 1, R, R]
    removes it where the map is 0 (mask-guided removal). ``ood_codes`` [N, code_dim] replace the frames' own
    OOD codes (temporal smoothing). ``march_options``: see ``innout.render.render_rays``."""
    res = resolution or G.neural_rendering_resolution
    origins, directions = camera_rays(cameras.to(planes.device), res)
    if isinstance(blend_scale, torch.Tensor) and blend_scale.ndim == 4:
        blend_scale = blend_scale.reshape(planes.shape[0], res * res)
    fields = [G.face_field(planes), ood.field(frames, ood_codes)]
    return render_rays(
        fields, origins, directions, G.rendering, blend_scale=blend_scale, separate=separate, **march_options
    )
