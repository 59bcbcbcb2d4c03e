"""Fine-tuning of the super-resolution module on the fitted composite (docs/method.md, fitting).

Only the SR module learns (L2 + LPIPS at 512). The two fields are frozen by then, so with
``cache_renders`` each frame's composite feature image is rendered once (deterministic samples) and
reused every epoch instead of re-rendering 128^2 x 96 samples per step.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..eg3d.generator import TriPlaneGenerator
from ..scene.composite import render_composite
from ..scene.ood_field import OODField
from .config import SuperResolutionConfig
from .data import FitData, frame_batches
from .joint import face_planes
from .latents import LatentCodes, RenderSettings
from .loop import DEFAULT_RUN, StageRun, run_loop
from .losses import backward_weighted, reconstruction_terms


@torch.no_grad()
def composite_features(
    G: TriPlaneGenerator,
    ws: torch.Tensor,
    ood: OODField,
    cameras: torch.Tensor,
    frames: torch.Tensor,
    settings: RenderSettings,
    *,
    deterministic: bool,
) -> torch.Tensor:
    planes = face_planes(G, ws)
    out = render_composite(
        G, planes, ood, frames, cameras, resolution=settings.size(G), deterministic=deterministic, **settings.kwargs()
    )
    return out.feature_image


def finetune_superresolution(
    G: TriPlaneGenerator,
    data: FitData,
    codes: LatentCodes,
    ood: OODField,
    cfg: SuperResolutionConfig,
    settings: RenderSettings,
    *,
    run: StageRun = DEFAULT_RUN,
) -> tuple[nn.Module, list[dict[str, float]]]:
    """A fine-tuned copy of ``G.superresolution`` and the loss history."""
    seed, checkpoint, progress = run.seed, run.checkpoint, run.progress
    device = data.cameras.device
    sr = copy.deepcopy(G.superresolution).requires_grad_(True)
    all_ws = codes.all_ws().detach()
    cache = None
    if cfg.cache_renders:
        cache = torch.cat(
            [
                composite_features(
                    G, all_ws[t : t + 1], ood, data.cameras[t : t + 1], torch.tensor([t], device=device), settings,
                    deterministic=True,
                )
                for t in range(len(data))
            ]
        )
    generator = torch.Generator().manual_seed(seed)
    schedule = [b for _ in range(cfg.epochs) for b in frame_batches(len(data), 1, generator)]
    optimizer = torch.optim.Adam(sr.parameters(), lr=cfg.lr)

    def step(i: int) -> dict[str, float]:
        frames = schedule[i].to(device)
        if cache is not None:
            features = cache[frames]
        else:
            features = composite_features(
                G, all_ws[frames], ood, data.cameras[frames], frames, settings, deterministic=False
            )
        image = sr(features[:, :3], features, all_ws[frames], noise_mode="const", allow_fp16=False)
        target = data.target(frames, G.img_resolution)
        return backward_weighted(reconstruction_terms(image, target, cfg))

    params = dict(sr.named_parameters())
    history = run_loop(
        "superres",
        len(schedule),
        step,
        params,
        optimizer,
        seed=seed,
        checkpoint=checkpoint,
        every=cfg.checkpoint_every,
        progress=progress,
    )
    return sr.requires_grad_(False), history
