"""Per-frame latent codes w_t = w_cano + a * r_t (paper section 3.2) and the renders made from them."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..eg3d.generator import TriPlaneGenerator
from ..render import Render


class LatentCodes(nn.Module):
    """A shared canonical code and one residual per frame. ``layers`` 14 is W+; 1 is W (one code
    broadcast to every layer). Residuals start at zero, so every frame starts at w_cano."""

    def __init__(self, w_cano: torch.Tensor, n_frames: int, *, residual_scale: float = 0.7, num_ws: int = 14) -> None:
        super().__init__()
        if w_cano.ndim == 2:
            w_cano = w_cano.unsqueeze(0)
        self.num_ws, self.residual_scale = num_ws, residual_scale
        self.w_cano = nn.Parameter(w_cano.detach().clone().float())
        self.residuals = nn.Parameter(torch.zeros(n_frames, w_cano.shape[1], w_cano.shape[2]))

    @property
    def n_frames(self) -> int:
        return self.residuals.shape[0]

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """ws [N, num_ws, 512] of frame indices [N]."""
        ws = self.w_cano + self.residual_scale * self.residuals[frames]
        return ws.expand(-1, self.num_ws, -1)

    def all_ws(self) -> torch.Tensor:
        return self(torch.arange(self.n_frames, device=self.residuals.device))


@dataclass(frozen=True)
class RenderSettings:
    """Neural rendering resolution and samples per ray (None: the generator's own)."""

    resolution: int | None = None
    coarse: int | None = None
    fine: int | None = None

    @classmethod
    def of(cls, resolution: int | None, samples_per_ray: tuple[int, int] | None) -> RenderSettings:
        coarse, fine = samples_per_ray if samples_per_ray else (None, None)
        return cls(resolution, coarse, fine)

    def size(self, G: TriPlaneGenerator) -> int:
        return self.resolution or G.neural_rendering_resolution

    def kwargs(self) -> dict:
        return {"depth_resolution": self.coarse, "depth_resolution_importance": self.fine}


def render_face(
    G: TriPlaneGenerator,
    ws: torch.Tensor,
    cameras: torch.Tensor,
    settings: RenderSettings,
    *,
    with_sr: bool,
    planes: torch.Tensor | None = None,
) -> tuple[Render, torch.Tensor | None]:
    """EG3D render of ws at cameras; the SR image only when asked for (In-N-Out's const SR noise)."""
    if planes is None:
        planes = G.synthesize_planes(ws, noise_mode="const")
    render = G.render_planes(planes, cameras, resolution=settings.size(G), **settings.kwargs())
    image = G.super_resolve(render, ws, noise_mode="const") if with_sr else None
    return render, image
