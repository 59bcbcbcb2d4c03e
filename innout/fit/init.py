"""Nearest-neighbour initialisation (paper Algorithm 1; docs/method.md).

n random z are mapped with the frontal conditioning camera (f = 4.4652, as the official code), each
candidate's tri-planes are synthesised once and rendered at every frame's camera, and every frame
keeps the candidate with the lowest LPIPS. w_cano is the mean of the kept codes. The cost is n
backbone passes plus n x F renders, done in batches of candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..eg3d.cameras import INO_FOCAL, frontal_label
from ..eg3d.generator import TriPlaneGenerator
from ..metrics.perceptual import get_lpips
from .config import InitConfig
from .data import FitData
from .latents import RenderSettings, render_face
from .loop import DEFAULT_RUN, StageRun


@dataclass
class InitResult:
    ws: torch.Tensor  # [F, 14, 512]: each frame's nearest candidate
    w_cano: torch.Tensor  # [1, 14, 512]
    distances: torch.Tensor  # [F]: LPIPS of the kept candidate


@torch.no_grad()
def nearest_neighbour_init(
    G: TriPlaneGenerator,
    data: FitData,
    cfg: InitConfig,
    *,
    run: StageRun = DEFAULT_RUN,
) -> InitResult:
    seed, progress = run.seed, run.progress
    device = data.cameras.device
    settings = RenderSettings.of(cfg.resolution, cfg.samples_per_ray)
    use_sr = cfg.compare == "sr"
    if cfg.compare not in ("sr", "raw"):
        raise ValueError(f"init.compare must be 'sr' or 'raw', got {cfg.compare!r}")
    resolution = G.img_resolution if use_sr else settings.size(G)
    lpips = get_lpips(cfg.lpips_net, str(device))
    n_frames = len(data)
    generator = torch.Generator().manual_seed(seed)
    z_all = torch.randn(cfg.samples, G.z_dim, generator=generator).to(device)
    conditioning = frontal_label(INO_FOCAL).to(device)
    best = torch.full((n_frames,), float("inf"), device=device)
    best_ws = torch.zeros(n_frames, G.num_ws, G.w_dim, device=device)
    all_frames = torch.arange(n_frames, device=device)
    for start in range(0, cfg.samples, cfg.batch):
        z = z_all[start : start + cfg.batch]
        ws = G.mapping(z, conditioning.expand(len(z), -1))
        planes = G.synthesize_planes(ws, noise_mode="const")
        for k in range(len(z)):
            for frames in all_frames.split(cfg.batch):
                n = len(frames)
                torch.manual_seed(seed + start + k)  # the same ray jitter for every candidate
                render, image = render_face(
                    G,
                    ws[k : k + 1].expand(n, -1, -1),
                    data.cameras[frames],
                    settings,
                    with_sr=use_sr,
                    planes=planes[k : k + 1].expand(n, -1, -1, -1, -1),
                )
                image = image if use_sr else render.image_raw
                distance = lpips(image, data.target(frames, resolution))
                better = distance < best[frames]
                best[frames] = torch.where(better, distance, best[frames])
                best_ws[frames[better]] = ws[k]
        if progress is not None:
            progress("init", min(start + cfg.batch, cfg.samples), cfg.samples, {"lpips": float(best.mean())})
    return InitResult(ws=best_ws, w_cano=best_ws.mean(dim=0, keepdim=True), distances=best)
