"""What an edit direction does to the world's heads, read back in the world's own terms.

The prior's latents come from 7 numbers z whose attributes are known exactly (``attributes_of``). An
edited latent w' is read back as the attributes of the z whose latent is nearest to w' (Adam on z through
the mapping network, from the unedited head's z; the remaining distance is reported as a share of the
edit's length), and the head's yaw as the camera yaw at which the unedited head's render best matches the
edited head's frontal render (a 1° grid, refined by a parabola). An edit that turned the head would show
there; the world's mapping has no camera input, so a turn would have to come from the latent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..edit.directions import Direction
from ..eg3d.cameras import FRONTAL_PITCH, FRONTAL_YAW, frontal_label, orbit_label
from ..eg3d.generator import TriPlaneGenerator
from .heads import ATTRIBUTES
from .prior import Z_DIM

YAW_SPAN_DEG = 8


def _attributes(z: torch.Tensor) -> torch.Tensor:
    """``attributes_of`` as a tensor [N, 7] (differentiable: lo + (hi - lo) * Phi(z / rms(z)))."""
    u = z / z.square().mean(dim=1, keepdim=True).sqrt().clamp_min(1e-8)
    phi = 0.5 * (1 + torch.erf(u / math.sqrt(2)))
    lo = torch.tensor([lo for lo, _ in ATTRIBUTES.values()], dtype=z.dtype)
    hi = torch.tensor([hi for _, hi in ATTRIBUTES.values()], dtype=z.dtype)
    return lo + (hi - lo) * phi


def read_attributes(G: TriPlaneGenerator, ws: torch.Tensor, z_start: torch.Tensor, steps: int = 300):
    """(attributes [N, 7], distance [N]) of the prior's nearest latents to ws [N, num_ws, 512]."""
    target = ws[:, 0].detach()
    z = z_start.detach().clone().requires_grad_(True)
    optimiser = torch.optim.Adam([z], lr=0.05)
    c = frontal_label().expand(len(z), -1)
    for _ in range(steps):
        optimiser.zero_grad()
        loss = (G.mapping(z, c)[:, 0] - target).square().sum(1).sum()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        distance = (G.mapping(z, c)[:, 0] - target).norm(dim=1)
        return _attributes(z.double()).float(), distance


@torch.no_grad()
def _render(G: TriPlaneGenerator, ws: torch.Tensor, yaw_deg: float) -> torch.Tensor:
    camera = orbit_label(FRONTAL_YAW + math.radians(yaw_deg), FRONTAL_PITCH).expand(len(ws), -1)
    return G.render_planes(G.synthesize_planes(ws, noise_mode="const"), camera, deterministic=True).image_raw


@torch.no_grad()
def read_yaw(G: TriPlaneGenerator, ws_plain: torch.Tensor, ws_edited: torch.Tensor) -> np.ndarray:
    """Degrees [N]: the camera yaw at which each unedited head looks most like its edited frontal render."""
    edited = _render(G, ws_edited, 0.0)
    grid = np.arange(-YAW_SPAN_DEG, YAW_SPAN_DEG + 1, dtype=np.float64)
    errors = np.stack([(_render(G, ws_plain, float(y)) - edited).square().mean((1, 2, 3)).numpy() for y in grid], 1)
    out = []
    for row in errors:
        i = int(np.clip(row.argmin(), 1, len(grid) - 2))
        a, b, c = row[i - 1], row[i], row[i + 1]
        shift = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c > 0 else 0.0
        out.append(grid[i] + float(np.clip(shift, -1, 1)))
    return np.asarray(out)


@dataclass
class EditResponse:
    strengths: list[float]
    attributes: np.ndarray  # [heads, strengths, 7] read back
    yaw: np.ndarray  # [heads, strengths] degrees
    off_manifold: np.ndarray  # [heads, strengths]: distance left / the edit's length

    def change(self, name: str) -> np.ndarray:
        """[heads]: the attribute at the highest strength minus at the lowest."""
        i = list(ATTRIBUTES).index(name)
        return self.attributes[:, -1, i] - self.attributes[:, 0, i]

    def monotonic(self, name: str) -> np.ndarray:
        """[heads]: whether the attribute increases at every step of strength."""
        i = list(ATTRIBUTES).index(name)
        return (np.diff(self.attributes[:, :, i], axis=1) > 0).all(axis=1)


def edit_response(
    G: TriPlaneGenerator, direction: Direction, *, heads: int = 4, strengths=(-2, -1, 0, 1, 2), seed: int = 7,
    yaw_everywhere: bool = False,
) -> EditResponse:  # fmt: skip
    """Read back ``heads`` random heads of the prior edited with ``direction`` at each strength (the yaw at
    the two extreme strengths only, unless ``yaw_everywhere``: it costs 17 renders a strength)."""
    z = torch.randn(heads, Z_DIM, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ws = G.mapping(z, frontal_label().expand(heads, -1))
    attributes, yaws, distances = [], [], []
    for s in strengths:
        offset = direction.offset(G.num_ws, float(s)).to(ws)
        edited = ws + offset
        values, distance = read_attributes(G, edited, z)
        attributes.append(values.numpy())
        extreme = s in (min(strengths), max(strengths))
        yaws.append(read_yaw(G, ws, edited) if s != 0 and (extreme or yaw_everywhere) else np.zeros(heads))
        length = float(offset[0].norm())
        distances.append((distance / length).numpy() if length else np.zeros(heads))
    return EditResponse(list(map(float, strengths)), np.stack(attributes, 1), np.stack(yaws, 1),
                        np.stack(distances, 1))  # fmt: skip
