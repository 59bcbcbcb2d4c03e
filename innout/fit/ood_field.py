"""The out-of-distribution (OOD) radiance field of In-N-Out (facts E2).

One tri-plane T_O [1, 3, 32, R, R] (N(0, 1) at start) shared by all frames, a code phi_t in R^32 per
frame, and a two-layer MLP D_O(mean tri-plane feature, phi_t) -> raw density, 32 colour features and
a blend weight b in (0, 1) that says how much of each point belongs to the OOD object rather than to
the face. Same box, plane axes and sampling as EG3D's tri-planes, so both fields can be evaluated at
the same points.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..eg3d.layers import FullyConnectedLayer
from ..eg3d.renderer import mean_plane_features


@dataclass
class FieldSamples:
    """A field evaluated at points: colour features [P, 32] in (-0.001, 1.001), raw density [P, 1],
    and for the OOD field the blend weight [P, 1] (None for the face field)."""

    rgb: torch.Tensor
    sigma: torch.Tensor
    blend: torch.Tensor | None = None


class OODField(nn.Module):
    def __init__(
        self,
        n_frames: int,
        *,
        resolution: int = 256,
        channels: int = 32,
        code_dim: int = 32,
        hidden: int = 64,
        box_warp: float = 1.0,
    ) -> None:
        super().__init__()
        self.resolution, self.channels, self.box_warp = resolution, channels, box_warp
        self.triplanes = nn.Parameter(torch.randn(1, 3, channels, resolution, resolution))
        self.codes = nn.Parameter(torch.randn(n_frames, code_dim))
        self.decoder = nn.Sequential(
            FullyConnectedLayer(channels + code_dim, hidden),
            nn.Softplus(),
            FullyConnectedLayer(hidden, 1 + 32 + 1),
        )

    @property
    def n_frames(self) -> int:
        return self.codes.shape[0]

    def forward(self, points: torch.Tensor, frames: torch.Tensor, codes: torch.Tensor | None = None) -> FieldSamples:
        """points [N, M, 3], frame indices [N] (or explicit ``codes`` [N, code_dim]) -> samples for N*M points."""
        n, m, _ = points.shape
        features = mean_plane_features(self.triplanes, points.reshape(1, n * m, 3), self.box_warp)
        code = self.codes[frames] if codes is None else codes
        code = code.unsqueeze(1).expand(n, m, -1).reshape(n * m, -1)
        w0, b0 = self.decoder[0].effective_weight_and_bias()
        w2, b2 = self.decoder[2].effective_weight_and_bias()
        hidden = F.softplus(torch.addmm(b0, torch.cat([features, code], dim=1), w0.t()))
        out = torch.addmm(b2, hidden, w2.t())
        rgb = torch.sigmoid(out[:, 1:33]) * (1 + 2 * 0.001) - 0.001
        return FieldSamples(rgb=rgb, sigma=out[:, :1], blend=torch.sigmoid(out[:, 33:34]))
