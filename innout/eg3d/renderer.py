"""EG3D's tri-planes as a field: plane sampling and the tri-plane MLP decoder (docs/method.md).

Two tri-plane samplers compute the same function:
- ``sample_planes``: per-plane features through ``grid_sample``, the official formulation, kept as the
  reference and for the parity fixture; the faster one on CUDA;
- ``sample_planes_mean``: the mean over the three planes as one weighted gather from channels-last
  planes (``embedding_bag``), several times faster on a CPU, differentiable with respect to the planes.

``TriPlaneDecoder`` is the MLP of EG3D's OSGDecoder and of In-N-Out's OOD field (the latter adds a
per-frame code to its input and a blend weight to its output). Rendering is ``innout.render``'s marcher.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..render import Field, FieldSamples
from .layers import FullyConnectedLayer

N_PLANES = 3


def plane_coordinates(coords: torch.Tensor, box_warp: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(u, v) on each plane, [N, 3, M] each, in grid_sample's [-1, 1] units.

    EG3D's planes are (x, y), (x, z), (z, x): XZ is sampled twice (transposed) and YZ never. The
    official checkpoints were trained so; reproducing it is required to render them (docs/method.md).
    """
    p = coords * (2 / box_warp)
    x, y, z = p.unbind(-1)
    return torch.stack([x, x, z], dim=1), torch.stack([y, z, x], dim=1)


def sample_planes(planes: torch.Tensor, coords: torch.Tensor, box_warp: float) -> torch.Tensor:
    """Bilinear features of each plane at ``coords`` [N, M, 3] -> [N, 3, M, C] (official formulation)."""
    n, n_planes, channels, h, w = planes.shape
    u, v = plane_coordinates(coords, box_warp)
    grid = torch.stack([u, v], dim=-1).reshape(n * n_planes, 1, -1, 2)
    out = F.grid_sample(
        planes.reshape(n * n_planes, channels, h, w),
        grid.float(),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )
    return out.permute(0, 3, 2, 1).reshape(n, n_planes, -1, channels)


def planes_to_table(planes: torch.Tensor) -> torch.Tensor:
    """[N, 3, C, H, W] -> channels-last rows [N * 3 * H * W, C], the layout ``sample_planes_mean`` gathers from."""
    return planes.permute(0, 1, 3, 4, 2).reshape(-1, planes.shape[2])


def sample_planes_mean(table: torch.Tensor, resolution: int, coords: torch.Tensor, box_warp: float) -> torch.Tensor:
    """Mean over the three planes of the bilinear features at ``coords`` [N, M, 3] -> [N * M, C].

    Same maths as ``sample_planes(...).mean(1)`` (align_corners=False, zero padding): each point is a
    bag of 12 rows (3 planes x 4 corners) weighted by bilinear weight / 3, corners outside the plane
    weighted 0. ``table`` comes from ``planes_to_table``.
    """
    n, m, _ = coords.shape
    size = resolution
    x, y, z = (coords * (2 / box_warp)).unbind(-1)
    ix = ((torch.stack([x, x, z], dim=-1) + 1) * size - 1) / 2  # [N, M, 3]
    iy = ((torch.stack([y, z, x], dim=-1) + 1) * size - 1) / 2
    x0f, y0f = ix.floor(), iy.floor()
    fx, fy = ix - x0f, iy - y0f
    x0, y0 = x0f.int(), y0f.int()
    wx0 = (1 - fx) * ((x0 >= 0) & (x0 < size))
    wx1 = fx * ((x0 >= -1) & (x0 < size - 1))
    wy0 = (1 - fy) * ((y0 >= 0) & (y0 < size)) * (1.0 / N_PLANES)
    wy1 = fy * ((y0 >= -1) & (y0 < size - 1)) * (1.0 / N_PLANES)
    weights = torch.stack([wx0 * wy0, wx1 * wy0, wx0 * wy1, wx1 * wy1], dim=-1)  # [N, M, 3, 4]
    base = torch.arange(n * N_PLANES, dtype=torch.int32, device=coords.device).reshape(n, 1, N_PLANES) * size
    xc0, xc1 = x0.clamp(0, size - 1), (x0 + 1).clamp(0, size - 1)
    r0 = (base + y0.clamp(0, size - 1)) * size
    r1 = (base + (y0 + 1).clamp(0, size - 1)) * size
    rows = torch.stack([r0 + xc0, r0 + xc1, r1 + xc0, r1 + xc1], dim=-1)
    return F.embedding_bag(
        rows.reshape(n * m, 4 * N_PLANES),
        table,
        per_sample_weights=weights.reshape(n * m, 4 * N_PLANES).to(table.dtype),
        mode="sum",
    )


def default_sampler(device: torch.device) -> str:
    """The faster of the two samplers on a device: 'gather' on a CPU (several times faster there),
    'grid_sample' on CUDA (docs/speed.md)."""
    return "grid_sample" if device.type == "cuda" else "gather"


def mean_plane_features(planes: torch.Tensor, coords: torch.Tensor, box_warp: float, sampler: str = "auto"):
    """Mean over the three planes of the bilinear features at ``coords`` [N, M, 3] -> [N * M, C], with the
    sampler asked for ('auto': ``default_sampler`` of the planes' device)."""
    if sampler == "auto":
        sampler = default_sampler(planes.device)
    if sampler == "gather":
        return sample_planes_mean(planes_to_table(planes), planes.shape[-1], coords, box_warp)
    if sampler == "grid_sample":
        return sample_planes(planes, coords, box_warp).mean(1).reshape(-1, planes.shape[2])
    raise ValueError(f"sampler must be 'auto', 'gather' or 'grid_sample', got {sampler!r}")


class TriPlaneDecoder(nn.Module):
    """Mean tri-plane feature (+ an optional code) -> raw density, colour features and optional blend.

    FC(in, 64) -> softplus -> FC(64, 1 + 32 [+ 1]); colour = sigmoid * (1 + 2 * 0.001) - 0.001. EG3D's
    OSGDecoder is ``TriPlaneDecoder(32)``; In-N-Out's OOD decoder is ``TriPlaneDecoder(32, code_dim=32,
    blend=True)``, whose input is the feature concatenated with the frame's code and whose last output is
    the blend weight (sigmoid). The parameter names (``net.0``, ``net.2``) are the official ones.
    """

    def __init__(
        self,
        n_features: int = 32,
        hidden_dim: int = 64,
        out_features: int = 32,
        *,
        code_dim: int = 0,
        blend: bool = False,
        lr_multiplier: float = 1.0,
    ) -> None:
        super().__init__()
        self.code_dim, self.out_features, self.has_blend = code_dim, out_features, blend
        self.net = nn.Sequential(
            FullyConnectedLayer(n_features + code_dim, hidden_dim, lr_multiplier=lr_multiplier),
            nn.Softplus(),
            FullyConnectedLayer(hidden_dim, 1 + out_features + int(blend), lr_multiplier=lr_multiplier),
        )

    def forward(self, features: torch.Tensor, code: torch.Tensor | None = None) -> FieldSamples:
        """features [P, n_features] (and code [P, code_dim]) -> samples of the P points."""
        if self.code_dim:
            features = torch.cat([features, code], dim=1)
        w0, b0 = self.net[0].effective_weight_and_bias()
        w2, b2 = self.net[2].effective_weight_and_bias()
        hidden = F.softplus(torch.addmm(b0, features, w0.t()))
        out = torch.addmm(b2, hidden, w2.t())
        end = 1 + self.out_features
        rgb = torch.sigmoid(out[:, 1:end]) * (1 + 2 * 0.001) - 0.001
        blend = torch.sigmoid(out[:, end : end + 1]) if self.has_blend else None
        return FieldSamples(rgb=rgb, sigma=out[:, :1], blend=blend)


def triplane_field(planes: torch.Tensor, decoder: TriPlaneDecoder, box_warp: float, sampler: str = "auto") -> Field:
    """Tri-planes [N, 3, C, H, W] + decoder as a field over points [N, P, 3]. ``sampler``: 'gather',
    'grid_sample' (the same numbers) or 'auto' (``default_sampler``)."""
    if sampler == "auto":
        sampler = default_sampler(planes.device)
    if sampler == "gather":
        table, resolution = planes_to_table(planes), planes.shape[-1]
        return lambda points: decoder(sample_planes_mean(table, resolution, points, box_warp))
    if sampler == "grid_sample":
        return lambda points: decoder(sample_planes(planes, points, box_warp).mean(1).reshape(-1, planes.shape[2]))
    raise ValueError(f"sampler must be 'auto', 'gather' or 'grid_sample', got {sampler!r}")
