"""Joint optimisation of the face latents and the OOD field (paper eq. 8; docs/method.md).

Per step: a batch of frames is rendered through the composite renderer and compared with the
targets: L2 + LPIPS at the rendering resolution (+ L2 of the 512 SR image), the blend entropy and
area terms that make b binary and small, and the latent regularisers. With OOD masks (semi-
supervised) the OOD-only render must match the target inside the mask and b is kept at zero outside;
without, the OOD-only render matches the target inside the first guess's masks at a weight fading to 0 (a guide,
beyond the paper: ``lambda_guide``).
When the latents are frozen (``latent_lr`` 0) the face tri-planes are synthesised once per frame and
reused: the backbone, the most expensive part, then runs F times instead of every step.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..eg3d.cameras import camera_rays
from ..eg3d.generator import TriPlaneGenerator
from ..scene.composite import render_composite
from ..scene.ood_field import OODField
from .bootstrap import (
    MOTION_RATIO,
    FirstGuess,
    at_depth_offset,
    background_onto_object,
    bootstrap_ood,
    centroid_offsets,
    first_guess,
    motion_ratio,
    views_depth_choice,
)
from .config import JointConfig
from .data import FitData, frame_batches
from .inversion import InversionResult
from .latents import LatentCodes, RenderSettings
from .loop import DEFAULT_RUN, StageRun, run_loop
from .losses import (
    background_colours,
    backward_weighted,
    blend_area,
    blend_entropy,
    blend_sparsity,
    delta_regulariser,
    l2,
    largest_blend_cross_entropy,
    masked_l2,
    over_background,
    reconstruction_terms,
    w_distance,
    w_regulariser,
)


@dataclass
class JointResult:
    """``decisions``: what the stage decided from its first guess before its steps, for the log and the reports:
    ``motion_ratio`` ('auto' motion: how far the object moves against the head, in its image radii; it moves above
    ``MOTION_RATIO``), ``moves`` (1 or 0), ``depth_offset``, ``depth_best`` and ``depth_gain`` ('views' depth: the
    head start's offset along the rays, the offset at which the views agree best, and how much better they agree
    there than at the surface; the best is taken only from a gain of ``DEPTH_MIN_GAIN``)."""

    codes: LatentCodes
    ood: OODField
    history: list[dict[str, float]]
    decisions: dict[str, float] = field(default_factory=dict)


def joint_schedule(n_frames: int, iterations: int, batch: int, seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    steps: list[torch.Tensor] = []
    while len(steps) < iterations:
        steps += frame_batches(n_frames, batch, generator)
    return steps[:iterations]


def make_ood_field(n_frames: int, cfg: JointConfig, seed: int) -> OODField:
    """The OOD field with seeded N(0, 1) tri-planes and codes."""
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return OODField(n_frames, resolution=cfg.ood_resolution, code_dim=cfg.ood_code_dim,
                        motion=cfg.ood_motion != "none")  # fmt: skip
    finally:
        torch.random.set_rng_state(state)


def guided(cfg: JointConfig, semi_supervised: bool) -> bool:
    """Whether the stage has the first-guess guide: unsupervised, a guide weight, and some steps to fade over."""
    weighted = bool(cfg.lambda_guide or cfg.lambda_guide_blend)
    return not semi_supervised and weighted and cfg.guide_fade * cfg.iterations > 0


def makes_first_guess(cfg: JointConfig, semi_supervised: bool) -> bool:
    """Whether the stage computes a first guess: for its head start or for its guide."""
    return cfg.bootstrap_steps > 0 or guided(cfg, semi_supervised)


def blend_schedule(i: int, cfg: JointConfig) -> float:
    """The share of the entropy and area weights at step ``i``: 0 during the warm-up (``blend_warmup`` of the
    iterations), then rising linearly to 1 over ``blend_ramp`` of them (at once when 0)."""
    start = cfg.blend_warmup * cfg.iterations
    if i < start:
        return 0.0
    span = cfg.blend_ramp * cfg.iterations
    return 1.0 if span <= 0 else min(1.0, (i - start) / span)


@torch.no_grad()
def reinit_canonical(codes: LatentCodes, share: float, seed: int) -> None:
    """w_cano <- (1 - share) w_cano + share N(0, 1), seeded: the official mask-free script's start of the joint
    stage (it keeps the inversion's residuals)."""
    noise = torch.randn(codes.w_cano.shape, generator=torch.Generator().manual_seed(seed + 7919))
    codes.w_cano.mul_(1 - share).add_(share * noise.to(codes.w_cano))


@torch.no_grad()
def start_distances(codes: LatentCodes, w_avg: torch.Tensor) -> torch.Tensor:
    """Each frame's ||w_t - w_avg|| [F] before the stage: L_w's free distance with ``w_allowance`` 'start'."""
    return w_distance(codes.all_ws(), w_avg)


@torch.no_grad()
def face_planes(G: TriPlaneGenerator, ws: torch.Tensor) -> torch.Tensor:
    """Tri-planes of every frame [F, 3, 32, H, W], synthesised one frame at a time."""
    return torch.cat([G.synthesize_planes(w[None], noise_mode="const") for w in ws])


def joint_fit(
    G: TriPlaneGenerator,
    data: FitData,
    start: InversionResult,
    cfg: JointConfig,
    *,
    run: StageRun = DEFAULT_RUN,
    guess_from: InversionResult | None = None,
    after_step: Callable[[int, LatentCodes, OODField], None] | None = None,
    decided: Callable[[dict[str, float]], None] | None = None,
) -> JointResult:
    """The joint stage from the inversion ``start``; ``guess_from``: the inversion whose render errors make the
    unsupervised first guess (default ``start``; ``joint.guess_space``); ``after_step(n, codes, ood)`` sees the
    parameters after each step ``n`` (the world benchmark's curve keeps some of them); ``decided(decisions)`` hears
    the stage's decisions (``JointResult.decisions``) as soon as they are made, before the first step."""
    seed, checkpoint, progress = run.seed, run.checkpoint, run.progress
    device = data.cameras.device
    codes = start.codes(G.num_ws).to(device)
    settings = RenderSettings.of(cfg.resolution, cfg.samples_per_ray)
    resolution = settings.size(G)
    semi_supervised = data.ood_masks is not None
    ood = make_ood_field(len(data), cfg, seed).to(device)

    @functools.cache
    def the_first_guess() -> FirstGuess:
        """Where the inversion's own latents cannot explain the frames (innout/fit/bootstrap.py), computed once;
        deterministic, so a resumed stage computes the same."""
        guessed = start if semi_supervised or guess_from is None else guess_from
        guess = first_guess(G, data, guessed.codes(G.num_ws).to(device), settings, cfg.bootstrap_floor)
        return guess if cfg.bootstrap_depth == "surface" else background_onto_object(guess)

    @functools.cache
    def guess_rays() -> tuple[torch.Tensor, torch.Tensor]:
        """The rays [F, R*R, 3] through the first guess's pixels, for the decisions below."""
        return camera_rays(data.cameras, the_first_guess().masks.shape[-1])

    decisions: dict[str, float] = {}

    def start_offsets() -> torch.Tensor | None:
        """The OOD field's starting translations (``ood_motion``): the first guess's centroid offsets when the field
        moves ('translation', or 'auto' and the guess's object moves), else None (the translations stay 0 and are
        not trained). Deterministic, so a resumed stage decides the same."""
        if cfg.ood_motion == "none":
            return None
        guess, (origins, directions) = the_first_guess(), guess_rays()
        if cfg.ood_motion == "auto":
            ratio = motion_ratio(guess, origins, directions, data.cameras)
            decisions.update(motion_ratio=ratio, moves=float(ratio > MOTION_RATIO))
            if not ratio > MOTION_RATIO:
                return None
        return centroid_offsets(guess, origins, directions)

    moving_offsets = start_offsets()

    def depth_offset() -> float:
        """The head start's offset along the rays (``bootstrap_depth`` 'views', a still object: where its views
        agree, not on the inversion's surface; a moving object's views never agree); decided before the steps, so
        a resumed stage reports it too."""
        if cfg.bootstrap_depth != "views" or moving_offsets is not None or cfg.bootstrap_steps == 0:
            return 0.0
        origins, directions = guess_rays()
        choice = views_depth_choice(the_first_guess(), origins, directions, data.cameras)
        decisions.update(depth_offset=choice.offset, depth_best=choice.best, depth_gain=choice.gain)
        return choice.offset

    start_depth = depth_offset()
    if decided is not None and decisions:
        decided(dict(decisions))

    def head_start() -> None:
        """The OOD field's head start (innout/fit/bootstrap.py) at ``start_depth`` off the first guess's depths,
        which also sets the translations' start (even without steps). A resumed stage has its result in the
        checkpoint."""
        guess = at_depth_offset(the_first_guess(), start_depth)
        coarse = settings.coarse or G.rendering.depth_resolution
        spacing = (G.rendering.ray_end - G.rendering.ray_start) / coarse
        bootstrap_ood(ood, guess, data.cameras, G.rendering, steps=cfg.bootstrap_steps, lr=cfg.lr, seed=seed,
                      shell=max(0.03, spacing), balanced=cfg.bootstrap_balanced,
                      blend_span=cfg.bootstrap_blend, empty_span=cfg.bootstrap_empty,
                      start_offsets=moving_offsets, progress=progress)  # fmt: skip

    if cfg.latent_lr > 0 and cfg.cano_reinit > 0 and not semi_supervised:  # the official mask-free script only
        reinit_canonical(codes, cfg.cano_reinit, seed)
    train_latents = cfg.latent_lr > 0
    cached_planes = None if train_latents else face_planes(G, codes.all_ws().detach())
    w_avg = G.backbone.mapping.w_avg.reshape(1, 1, -1)
    # before any step (a resumed stage loads its latents later, in run_loop): the same start distances
    free_w = start_distances(codes, w_avg) if train_latents and cfg.w_allowance == "start" else None

    groups = [
        {"params": [ood.triplanes], "lr": cfg.lr},
        {"params": list(ood.decoder.parameters()), "lr": cfg.lr if cfg.ood_decoder_lr is None else cfg.ood_decoder_lr},
        {"params": [ood.codes] + ([ood.offsets] if moving_offsets is not None else []), "lr": cfg.lr},
    ]
    if ood.motion and moving_offsets is None:
        ood.offsets.requires_grad_(False)  # 'auto' found no motion: the translations stay 0
    params = {"ood." + k: v for k, v in ood.named_parameters()}
    if train_latents:
        groups.append({"params": [codes.w_cano, codes.residuals], "lr": cfg.latent_lr})
        params.update({"w_cano": codes.w_cano, "residuals": codes.residuals})
    else:
        codes.requires_grad_(False)
    optimizer = torch.optim.Adam(groups)
    schedule = joint_schedule(len(data), cfg.iterations, cfg.batch_frames, seed)

    def guide(i: int) -> float:
        """The first-guess guide's share at step ``i`` (unsupervised fits with a guide weight only): 1 falling
        linearly to 0 at ``guide_fade`` of the stage."""
        if not guided(cfg, semi_supervised):
            return 0.0
        return max(0.0, 1.0 - i / (cfg.guide_fade * cfg.iterations))

    def allowance(frames: torch.Tensor, user_masks: torch.Tensor | None) -> torch.Tensor | None:
        """The area term's free share for these frames (``area_allowance``): the share of pixels the user's masks
        (``user_masks``, these frames' at the rendering resolution) cover ('masks', 'guess') or the unsupervised
        first guess's masks ('guess'); None: every covered ray costs."""
        if cfg.area_allowance == "none" or (cfg.area_allowance == "masks" and user_masks is None):
            return None
        masks = user_masks > 0.5 if user_masks is not None else the_first_guess().masks[frames]
        return masks.float().mean(dim=(1, 2, 3))

    def step(i: int) -> dict[str, float]:
        frames = schedule[i].to(device)
        share = guide(i)
        ws = codes(frames)
        planes = cached_planes[frames] if cached_planes is not None else G.synthesize_planes(ws, noise_mode="const")
        out = render_composite(
            G,
            planes,
            ood,
            frames,
            data.cameras[frames],
            resolution=resolution,
            separate=semi_supervised or (share > 0 and cfg.lambda_guide > 0),
            **settings.kwargs(),
        )
        target = data.target(frames, resolution)
        user_masks = data.mask(frames, resolution)  # None without masks
        ramp = blend_schedule(i, cfg)
        terms = {
            **reconstruction_terms(out.image_raw, target, cfg),
            "entropy": (ramp * cfg.lambda_entropy, blend_entropy(out.blend, cfg.entropy_skew)),
            "area": (ramp * cfg.lambda_area, blend_area(out.blend, out.coarse_samples, allowance(frames, user_masks))),
        }
        if cfg.lambda_l2_sr:
            image = G.super_resolve(out, ws, noise_mode="const")
            terms["l2_sr"] = (cfg.lambda_l2_sr, l2(image, data.target(frames, G.img_resolution)))
        if train_latents:
            terms["delta"] = (cfg.lambda_delta, delta_regulariser(ws))
            terms["w"] = (cfg.lambda_w, w_regulariser(ws, w_avg, None if free_w is None else free_w[frames]))
        ood_image = None if out.ood_feature_image is None else out.ood_feature_image[:, :3]
        if ood_image is not None and cfg.ood_background == "random":
            # on black, a dark object's pixels are matched by an empty OOD field: nothing would hold its density
            colours = background_colours(len(frames), seed, i, device)
            ood_image = over_background(ood_image, out.ood_alone_weight, colours)
        if user_masks is not None:
            terms["l2_ood"] = (cfg.lambda_l2_ood, masked_l2(ood_image, target, user_masks))
            terms["sparsity"] = (cfg.lambda_sparsity, blend_sparsity(out.blend, 1 - user_masks.flatten(1)))
            if cfg.lambda_mask_blend:
                terms["mask_blend"] = (cfg.lambda_mask_blend, largest_blend_cross_entropy(out.blend, user_masks))
        if share > 0:
            mask = the_first_guess().masks[frames].float()
            if cfg.lambda_guide:
                l2_inside = masked_l2(ood_image, target, mask)
                terms["guide"] = (share * cfg.lambda_guide, l2_inside)
            if cfg.lambda_guide_blend:
                terms["guide_blend"] = (share * cfg.lambda_guide_blend, largest_blend_cross_entropy(out.blend, mask))
        # 'planes': the area term shrinks b where it acts, through the tri-plane, not everywhere at once through the
        # shared decoder and the frame's code, which took the object with it (docs/settings.md, area_reach)
        limited = (("area",), [ood.triplanes]) if cfg.area_reach == "planes" else None
        result = backward_weighted(terms, limited)
        result["ood_opacity"] = float(out.ood_opacity.detach().mean())
        return result

    history = run_loop(
        "joint",
        cfg.iterations,
        step,
        params,
        optimizer,
        seed=seed,
        checkpoint=checkpoint,
        every=cfg.checkpoint_every,
        progress=progress,
        fresh_start=head_start if cfg.bootstrap_steps > 0 or moving_offsets is not None else None,
        after_step=None if after_step is None else (lambda n: after_step(n, codes, ood)),
    )
    return JointResult(codes=codes.requires_grad_(False), ood=ood.requires_grad_(False), history=history,
                       decisions=decisions)  # fmt: skip
