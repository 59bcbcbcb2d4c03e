"""Pictures of the world and its prior, for the README and for looking: ``python -m innout.world figures DIR``.

- ``prior_vs_world.png``: held-out heads (latents the prior never trained on) from three views, the world's
  render above the prior's, at the prior's neural resolution;
- ``smile_edit.png``: one prior head moved along the shipped smile direction, above the world's render of
  the same head with its smile attribute moved by the direction's measured amount.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from ..eg3d.cameras import FRONTAL_PITCH, FRONTAL_YAW, orbit_label
from ..eg3d.generator import TriPlaneGenerator
from .heads import Head
from .prior import Z_DIM, attributes_of
from .render import render_world

VIEWS_DEG = (-30.0, 0.0, 30.0)
STRENGTHS = (-2.0, -1.0, 0.0, 1.0, 2.0)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N, 3, H, W] in [-1, 1] -> [N, H, W, 3] uint8."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()


def grid(rows: list[torch.Tensor], scale: int = 2) -> np.ndarray:
    """Rows of images [N, 3, H, W] side by side, a 2-pixel white gap, each pixel repeated ``scale`` times."""
    h, w = rows[0].shape[-2:]
    cols = max(len(r) for r in rows)
    out = np.full((len(rows) * (h + 2), cols * (w + 2), 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, image in enumerate(to_uint8(row)):
            out[i * (h + 2) : i * (h + 2) + h, j * (w + 2) : j * (w + 2) + w] = image
    return out.repeat(scale, 0).repeat(scale, 1)


@torch.no_grad()
def prior_render(G: TriPlaneGenerator, ws: torch.Tensor, camera: torch.Tensor) -> torch.Tensor:
    return G.render_planes(G.synthesize_planes(ws, noise_mode="const"), camera, deterministic=True).image_raw


def prior_vs_world(G: TriPlaneGenerator, heads: int = 4, seed: int = 4242) -> np.ndarray:
    res = G.neural_rendering_resolution
    z = torch.randn(heads, Z_DIM, generator=torch.Generator().manual_seed(seed))
    cameras = [orbit_label(FRONTAL_YAW + math.radians(d), FRONTAL_PITCH) for d in VIEWS_DEG]
    rows = []
    for zi, attrs in zip(z, attributes_of(z), strict=True):
        ws = G.mapping(zi[None], cameras[0])
        rows.append(torch.cat([render_world(Head(attrs), [], c, res).image for c in cameras]))
        rows.append(torch.cat([prior_render(G, ws, c) for c in cameras]))
    return grid(rows)


def smile_edit(G: TriPlaneGenerator, direction, seed: int = 4243) -> np.ndarray:
    res = G.neural_rendering_resolution
    z = torch.randn(1, Z_DIM, generator=torch.Generator().manual_seed(seed))
    camera = orbit_label(FRONTAL_YAW, FRONTAL_PITCH)
    ws = G.mapping(z, camera)
    base = attributes_of(z)[0]
    per_strength = float(direction.info.get("attribute_per_strength", 0.0))
    prior_row = torch.cat([prior_render(G, ws + direction.offset(G.num_ws, s).to(ws), camera) for s in STRENGTHS])
    world_row = torch.cat([
        render_world(Head(base.replace(smile=max(-1.0, min(1.0, base.smile + s * per_strength)))), [], camera,
                     res).image
        for s in STRENGTHS
    ])  # fmt: skip
    return grid([prior_row, world_row])


def write_figures(G: TriPlaneGenerator, out_dir: str | os.PathLike, smile_direction=None) -> list[Path]:
    from PIL import Image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    G = G.eval().requires_grad_(False)
    paths = [out / "prior_vs_world.png"]
    Image.fromarray(prior_vs_world(G)).save(paths[0])
    if smile_direction is not None:
        paths.append(out / "smile_edit.png")
        Image.fromarray(smile_edit(G, smile_direction)).save(paths[1])
    return paths
