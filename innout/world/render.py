"""The world's own volume renderer: exact, and independent of the project's renderers.

It shares nothing with ``innout.render`` but EG3D's camera convention (``camera_rays``): dense, evenly spaced
samples along each ray (no importance sampling, no learned field), alpha compositing over a black
background, and the objects composited physically with the head: at every sample the densities add, and
the colour is the density-weighted mix. A paint object has no geometry: it recolours the skin it lies on.
Everything the benchmarks need comes out of one pass: the image, the depth, and each object's opacity (the
share of each pixel's colour that comes from it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..eg3d.cameras import camera_rays
from .heads import Head
from .objects import PlacedObject

RAY_START, RAY_END = 2.25, 3.3  # EG3D's FFHQ ray range
SAMPLES = 192


@dataclass
class WorldRender:
    """Images [N, 3, R, R] in [-1, 1] (black background), depth [N, 1, R, R] (expected ray depth where
    opaque, the far end where not), opacity [N, 1, R, R], and the opacity of every object [N, K, R, R]."""

    image: torch.Tensor
    depth: torch.Tensor
    opacity: torch.Tensor
    object_opacity: torch.Tensor

    @property
    def object_mask(self) -> torch.Tensor:
        """[N, 1, R, R] bool: where the objects together give more than half the pixel's colour."""
        return self.object_opacity.sum(1, keepdim=True) > 0.5


def _march(head: Head, objects: list[PlacedObject], origins, directions, samples: int):
    n_rays = origins.shape[0]
    t = torch.linspace(RAY_START, RAY_END, samples + 1, device=origins.device)
    t = (t[:-1] + t[1:]) / 2
    delta = (RAY_END - RAY_START) / samples
    points = (origins[:, None, :] + t[None, :, None] * directions[:, None, :]).reshape(-1, 3)
    sigma_head, colour, skin = head(points)
    sigma = sigma_head.clone()
    shares = []
    weighted = sigma_head[:, None] * colour
    for obj in objects:
        if obj.paint:
            alpha, paint = obj.paint_at(points)
            alpha = alpha * skin  # paint lies on the skin, not on the eyes, brows or hair
            weighted = weighted + sigma_head[:, None] * alpha[:, None] * (paint - colour)
            shares.append(sigma_head * alpha)
        else:
            s, c = obj.solid_at(points)
            sigma = sigma + s
            weighted = weighted + s[:, None] * c
            shares.append(s)
    mixed = weighted / sigma.clamp_min(1e-8)[:, None]
    alpha = (1 - torch.exp(-sigma * delta)).reshape(n_rays, samples)
    transmittance = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha + 1e-10], dim=1), dim=1)
    w = alpha * transmittance[:, :-1]
    rgb = (w[..., None] * mixed.reshape(n_rays, samples, 3)).sum(1)
    opacity = w.sum(1)
    depth = torch.where(opacity > 1e-4, (w * t).sum(1) / opacity.clamp_min(1e-8), torch.full_like(opacity, RAY_END))
    share = [(w * (s / sigma.clamp_min(1e-8)).reshape(n_rays, samples)).sum(1) for s in shares]
    return rgb, depth, opacity, torch.stack(share, dim=1) if share else rgb.new_zeros(n_rays, 0)


@torch.no_grad()
def render_world(
    head: Head,
    objects: list[PlacedObject],
    cameras: torch.Tensor,
    resolution: int,
    *,
    samples: int = SAMPLES,
    rays_per_chunk: int = 2048,
) -> WorldRender:
    """Render the head with ``objects`` (placed at this time) from cameras [N, 25] at ``resolution``^2."""
    origins, directions = camera_rays(cameras, resolution)
    n = cameras.shape[0]
    outputs = []
    for i in range(n):
        pieces = [
            _march(head, objects, origins[i, s : s + rays_per_chunk], directions[i, s : s + rays_per_chunk], samples)
            for s in range(0, origins.shape[1], rays_per_chunk)
        ]
        outputs.append([torch.cat(parts) for parts in zip(*pieces, strict=True)])

    def image(k: int, channels: int) -> torch.Tensor:
        stacked = torch.stack([o[k].reshape(resolution * resolution, -1) for o in outputs])
        return stacked.permute(0, 2, 1).reshape(n, channels, resolution, resolution)

    k = len(objects)
    return WorldRender(
        image=image(0, 3) * 2 - 1,
        depth=image(1, 1),
        opacity=image(2, 1),
        object_opacity=image(3, k) if k else torch.zeros(n, 0, resolution, resolution),
    )
