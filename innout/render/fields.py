"""What the marcher renders: fields, i.e. functions from points to colour features, density and blend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch


@dataclass
class FieldSamples:
    """A field evaluated at P points: colour features [P, C] (RGB first, in (-0.001, 1.001) for EG3D's
    decoders), raw density [P, 1] (before softplus), and the blend weight b [P, 1] in [0, 1] of an overlay
    field (the share of a point that belongs to it rather than to the base field; None for a base field)."""

    rgb: torch.Tensor
    sigma: torch.Tensor
    blend: torch.Tensor | None = None


class Field(Protocol):
    """A radiance field: points [N, P, 3] (N images, P points each) -> samples of the N * P points, in
    that order."""

    def __call__(self, points: torch.Tensor) -> FieldSamples: ...


class MarchSettings(Protocol):
    """The sampling and compositing options the marcher reads (EG3D's ``RenderingConfig`` has them all)."""

    depth_resolution: int  # coarse (stratified) samples per ray
    depth_resolution_importance: int  # fine (importance) samples per ray; 0 for none
    ray_start: float
    ray_end: float
    disparity_space_sampling: bool
    density_noise: float  # std of Gaussian noise added to the base field's raw density (EG3D training)
    white_back: bool  # composite onto white: colour += 1 - opacity
