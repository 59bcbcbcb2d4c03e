"""Signed distances of the world's primitives, vectorised over points [P, 3] (negative inside).

The heads and the OOD objects are built from these; ``density`` turns a signed distance into an opaque
volume density with a thin, compact transition (exactly zero beyond ``SOFTNESS`` outside a surface, so an
object leaves the rest of the image untouched). Ellipsoid distances use the gradient-normalised
approximation k0 (k0 - 1) / k1, accurate near the surface even for flat ellipsoids (lenses).
"""

from __future__ import annotations

import torch

WORLD_SCALE = 0.88  # the heads and objects are designed at nominal size and rendered this much smaller,
# which frames them as EG3D's FFHQ crops frame faces (hair near the top edge, chin near the bottom)
SOFTNESS = 0.006  # half-width (world units) of the band in which a surface goes from empty to solid
DENSITY = 600.0  # density inside a solid, per world unit (opaque within about a hundredth)


def sphere(p: torch.Tensor, centre, radius: float) -> torch.Tensor:
    return (p - p.new_tensor(centre)).norm(dim=-1) - radius


def ellipsoid(p: torch.Tensor, centre, radii) -> torch.Tensor:
    r = p.new_tensor(radii)
    q = p - p.new_tensor(centre)
    k0 = (q / r).norm(dim=-1)
    k1 = (q / r.square()).norm(dim=-1).clamp_min(1e-9)
    return k0 * (k0 - 1) / k1


def box(p: torch.Tensor, centre, half_size) -> torch.Tensor:
    q = (p - p.new_tensor(centre)).abs() - p.new_tensor(half_size)
    outside = q.clamp_min(0).norm(dim=-1)
    inside = q.max(dim=-1).values.clamp_max(0)
    return outside + inside


def capsule(p: torch.Tensor, a, b, radius: float) -> torch.Tensor:
    a_, b_ = p.new_tensor(a), p.new_tensor(b)
    ab = b_ - a_
    t = ((p - a_) @ ab / ab.dot(ab)).clamp(0, 1)
    return (p - (a_ + t[:, None] * ab)).norm(dim=-1) - radius


def shell(p: torch.Tensor, centre, radii, thickness: float) -> torch.Tensor:
    """A thin layer on an ellipsoid's surface (a mask, a visor)."""
    return ellipsoid(p, centre, radii).abs() - thickness


def clip_below(d: torch.Tensor, p: torch.Tensor, axis: int, limit: float) -> torch.Tensor:
    """Keep the part of a solid where coordinate ``axis`` < ``limit`` (intersection with a half-space)."""
    return torch.maximum(d, p[:, axis] - limit)


def clip_above(d: torch.Tensor, p: torch.Tensor, axis: int, limit: float) -> torch.Tensor:
    return torch.maximum(d, limit - p[:, axis])


def smooth_union(a: torch.Tensor, b: torch.Tensor, k: float) -> torch.Tensor:
    """Polynomial smooth minimum: a seamless join over a width ``k``."""
    h = (0.5 + 0.5 * (b - a) / k).clamp(0, 1)
    return torch.lerp(b, a, h) - k * h * (1 - h)


def density(sdf: torch.Tensor, softness: float = SOFTNESS, scale: float = DENSITY) -> torch.Tensor:
    """``scale`` inside, 0 beyond ``softness`` outside, a smoothstep across the band in between."""
    t = (0.5 - sdf / (2 * softness)).clamp(0, 1)
    return scale * t * t * (3 - 2 * t)
