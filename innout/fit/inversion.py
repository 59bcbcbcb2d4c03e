"""In-distribution inversion (paper section 3.2; docs/method.md) and the PTI baseline.

W+ inversion optimises w_cano and per-frame residuals: first on K evenly spaced frames (M1 epochs:
the canonical code settles on a few views), then on all frames (M2 epochs). The W baseline is the
same loop with one code per frame broadcast to all layers. PTI tunes the generator itself around the
W+ codes, as pivotal tuning does.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from ..eg3d.generator import TriPlaneGenerator
from .config import InversionConfig, PTIConfig
from .data import FitData, evenly_spaced, frame_batches
from .latents import LatentCodes, RenderSettings, render_face
from .loop import DEFAULT_RUN, StageRun, lr_schedule, run_loop
from .losses import backward_weighted, delta_regulariser, reconstruction_terms, w_regulariser


@dataclass
class InversionResult:
    w_cano: torch.Tensor  # [1, L, 512], L = 14 (W+) or 1 (W)
    residuals: torch.Tensor  # [F, L, 512]
    residual_scale: float
    history: list[dict[str, float]]

    def codes(self, num_ws: int) -> LatentCodes:
        codes = LatentCodes(self.w_cano, len(self.residuals), residual_scale=self.residual_scale, num_ws=num_ws)
        with torch.no_grad():
            codes.residuals.copy_(self.residuals)
        return codes


def inversion_schedule(n_frames: int, cfg: InversionConfig, seed: int) -> list[torch.Tensor]:
    """The frames of every step: M1 epochs over K evenly spaced frames, then M2 epochs over all."""
    generator = torch.Generator().manual_seed(seed)
    subset = torch.tensor(evenly_spaced(n_frames, cfg.subset_frames))
    steps: list[torch.Tensor] = []
    for _ in range(cfg.subset_epochs):
        steps += [subset[b] for b in frame_batches(len(subset), cfg.batch_frames, generator)]
    for _ in range(cfg.all_epochs):
        steps += frame_batches(n_frames, cfg.batch_frames, generator)
    return steps


def image_for_loss(
    G: TriPlaneGenerator, ws: torch.Tensor, cameras: torch.Tensor, settings: RenderSettings, compare: str, planes=None
) -> torch.Tensor:
    if compare not in ("sr", "raw"):
        raise ValueError(f"compare must be 'sr' or 'raw', got {compare!r}")
    render, image = render_face(G, ws, cameras, settings, with_sr=compare == "sr", planes=planes)
    return image if compare == "sr" else render.image_raw


def invert(
    G: TriPlaneGenerator,
    data: FitData,
    w_cano: torch.Tensor,
    cfg: InversionConfig,
    *,
    run: StageRun = DEFAULT_RUN,
) -> InversionResult:
    """Fit per-frame codes from the initial canonical code ``w_cano`` [1, 14, 512]."""
    seed, checkpoint, progress = run.seed, run.checkpoint, run.progress
    if cfg.space not in ("w+", "w"):
        raise ValueError(f"inversion.space must be 'w+' or 'w', got {cfg.space!r}")
    start = w_cano if cfg.space == "w+" else w_cano[:, :1]
    codes = LatentCodes(start, len(data), residual_scale=cfg.residual_scale, num_ws=G.num_ws).to(
        data.cameras.device
    )
    settings = RenderSettings.of(cfg.resolution, cfg.samples_per_ray)
    resolution = G.img_resolution if cfg.compare == "sr" else settings.size(G)
    w_avg = G.backbone.mapping.w_avg.reshape(1, 1, -1)
    schedule = inversion_schedule(len(data), cfg, seed)
    optimizer = torch.optim.Adam([codes.w_cano, codes.residuals], lr=cfg.lr)

    def step(i: int) -> dict[str, float]:
        frames = schedule[i].to(data.cameras.device)
        ws = codes(frames)
        image = image_for_loss(G, ws, data.cameras[frames], settings, cfg.compare)
        target = data.target(frames, resolution)
        ood = data.mask(frames, resolution)  # semi-supervised: only what the face model should explain
        terms = reconstruction_terms(image, target, cfg, None if ood is None else 1 - ood)
        if cfg.lambda_delta:
            terms["delta"] = (cfg.lambda_delta, delta_regulariser(ws))
        if cfg.lambda_w:
            terms["w"] = (cfg.lambda_w, w_regulariser(ws, w_avg))
        return backward_weighted(terms)

    history = run_loop(
        "invert" if cfg.space == "w+" else "invert-w",
        len(schedule),
        step,
        {"w_cano": codes.w_cano, "residuals": codes.residuals},
        optimizer,
        seed=seed,
        checkpoint=checkpoint,
        every=cfg.checkpoint_every,
        progress=progress,
        lr_fn=lambda i: [lr_schedule(i, len(schedule), cfg.lr, cfg.rampup, cfg.rampdown)],
    )
    return InversionResult(
        w_cano=codes.w_cano.detach().clone(),
        residuals=codes.residuals.detach().clone(),
        residual_scale=cfg.residual_scale,
        history=history,
    )


def tunable_parameters(G: TriPlaneGenerator) -> dict[str, torch.nn.Parameter]:
    """What pivotal tuning changes: everything but the mapping network."""
    return {n: p for n, p in G.named_parameters() if not n.startswith("backbone.mapping.")}


def pivotal_tuning(
    G: TriPlaneGenerator,
    data: FitData,
    ws: torch.Tensor,
    cfg: PTIConfig,
    *,
    settings: RenderSettings,
    compare: str,
    run: StageRun = DEFAULT_RUN,
) -> tuple[TriPlaneGenerator, list[dict[str, float]]]:
    """A copy of G tuned so that the fixed pivots ``ws`` [F, 14, 512] reproduce the frames."""
    seed, checkpoint, progress = run.seed, run.checkpoint, run.progress
    tuned = copy.deepcopy(G).requires_grad_(False)
    params = tunable_parameters(tuned)
    for p in params.values():
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(list(params.values()), lr=cfg.lr)
    resolution = G.img_resolution if compare == "sr" else settings.size(G)
    generator = torch.Generator().manual_seed(seed)
    frames_of_step = [torch.randint(len(data), (1,), generator=generator) for _ in range(cfg.steps)]

    def step(i: int) -> dict[str, float]:
        frames = frames_of_step[i].to(ws.device)
        image = image_for_loss(tuned, ws[frames], data.cameras[frames], settings, compare)
        target = data.target(frames, resolution)
        return backward_weighted(reconstruction_terms(image, target, cfg))

    history = run_loop(
        "pti",
        cfg.steps,
        step,
        params,
        optimizer,
        seed=seed,
        checkpoint=checkpoint,
        every=cfg.checkpoint_every,
        progress=progress,
    )
    return tuned.requires_grad_(False), history
