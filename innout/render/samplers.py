"""Where along each ray the fields are evaluated: stratified coarse depths and importance-sampled fine ones.

Every random number of a render is drawn up-front, in EG3D's order and shapes (coarse jitter, then the
importance draws), so that a seeded render is the same whatever the chunking (see docs/method.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .fields import MarchSettings


def stratified_depths(
    n: int, m: int, count: int, cfg: MarchSettings, *, deterministic: bool, device: torch.device
) -> torch.Tensor:
    """Coarse depths [N, M, count, 1]: one jittered sample per bin, or bin centres when deterministic."""
    if cfg.disparity_space_sampling:
        base = torch.linspace(0, 1, count, device=device)
        step = 1.0 / (count - 1)
    else:
        base = torch.linspace(cfg.ray_start, cfg.ray_end, count, device=device)
        step = (cfg.ray_end - cfg.ray_start) / (count - 1)
    depths = base.reshape(1, 1, count, 1).repeat(n, m, 1, 1)
    if deterministic:
        depths = depths + 0.5 * step
    else:
        depths = depths + torch.rand_like(depths) * step
    if cfg.disparity_space_sampling:
        depths = 1.0 / (1.0 / cfg.ray_start * (1.0 - depths) + 1.0 / cfg.ray_end * depths)
    return depths


def draw_samples(
    n: int, m: int, cfg: MarchSettings, coarse: int, fine: int, deterministic: bool, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """All random numbers of a render: coarse depths [N, M, coarse, 1], then the importance draws
    u [N, M, fine] (None when fine = 0); a fixed protocol (bin centres, evenly spaced u) when deterministic."""
    depths = stratified_depths(n, m, coarse, cfg, deterministic=deterministic, device=device)
    if fine <= 0:
        return depths, None
    if deterministic:
        u = torch.linspace(0, 1, fine, device=device).expand(n * m, fine)
    else:
        u = torch.rand(n * m, fine, device=device)
    return depths, u.reshape(n, m, fine)


def importance_depths(depths: torch.Tensor, weights: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Fine depths by inverse-CDF sampling of the smoothed coarse weights, as EG3D's ImportanceRenderer.

    depths [B, S] sorted coarse depths, weights [B, S-1] interval weights, u [B, K] in [0, 1].
    """
    with torch.no_grad():
        w = F.max_pool1d(weights.unsqueeze(1), 2, 1, padding=1)
        w = F.avg_pool1d(w, 2, 1).squeeze(1) + 0.01
        bins = 0.5 * (depths[:, :-1] + depths[:, 1:])
        w = w[:, 1:-1] + 1e-5
        n_bins = w.shape[1]
        pdf = w / w.sum(dim=-1, keepdim=True)
        cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, dim=-1)], dim=-1)
        inds = torch.searchsorted(cdf, u.contiguous(), right=True)
        below = (inds - 1).clamp_min(0)
        above = inds.clamp_max(n_bins)
        cdf_below, cdf_above = cdf.gather(1, below), cdf.gather(1, above)
        bins_below, bins_above = bins.gather(1, below), bins.gather(1, above)
        denom = cdf_above - cdf_below
        denom = torch.where(denom < 1e-5, torch.ones_like(denom), denom)
        return bins_below + (u - cdf_below) / denom * (bins_above - bins_below)
