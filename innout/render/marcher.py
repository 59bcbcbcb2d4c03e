"""The one volume marcher of the project.

EG3D's render is this marcher with one field (the face's tri-planes and decoder); In-N-Out's composite
render is the same marcher with two fields, the face (the base) and the OOD object (an overlay with a
blend weight b), evaluated at the SAME sample positions along every ray. Every option (samples,
determinism, chunking, ``density_noise``, ``white_back``) therefore means the same in both uses, and with
b = 0 the composite is EG3D's render exactly. See docs/method.md.

Per ray: coarse stratified depths; the fields there; fine depths by inverse-CDF sampling of the total
interval weights (where an opaque OOD object hides the face, its weights get the fine samples); the
fields there; all samples sorted by depth; interval weights again; colour, depth and opacity. Interval
values average the two ends, as EG3D's MipRayMarcher2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .fields import Field, MarchSettings
from .samplers import draw_samples, importance_depths


@dataclass
class Render:
    """A volume render, images [N, C, R, R].

    ``feature_image``: the colour features in [-1, 1] (RGB first; EG3D's super-resolution reads all 32);
    ``depth_image``: expected depth; ``weight_image``: opacity (sum of the weights). With an overlay field:
    ``ood_opacity``, the share of each pixel's colour that comes from it, and ``blend`` [N, R*R, S], its
    blend weight at every sample in evaluation order: the ``coarse_samples`` coarse ones, then the fine ones
    (the losses treat the two sets apart, as the official code). With ``separate``: each field rendered alone
    through its own densities, at the same samples (``face_feature_image``, ``ood_feature_image``; the OOD field's own
    opacity ``ood_alone_weight``, which puts its image over any background)."""

    feature_image: torch.Tensor
    depth_image: torch.Tensor
    weight_image: torch.Tensor
    ood_opacity: torch.Tensor | None = None
    blend: torch.Tensor | None = None
    coarse_samples: int = 0
    face_feature_image: torch.Tensor | None = None
    ood_feature_image: torch.Tensor | None = None
    ood_alone_weight: torch.Tensor | None = None

    @property
    def image_raw(self) -> torch.Tensor:
        return self.feature_image[:, :3]


def default_points_per_chunk(device: torch.device) -> int:
    """Points (times fields) evaluated at once: small chunks keep a CPU's working set in cache; a GPU wants
    one launch for a whole 128^2 x 96-sample frame (docs/speed.md: 42 -> 6.6 ms on an H200)."""
    return 1 << 22 if device.type == "cuda" else 1 << 17


def ray_points(origins: torch.Tensor, directions: torch.Tensor, depths: torch.Tensor) -> torch.Tensor:
    """Points o + t d [N, R * S, 3] for rays [N, R, 3] at depths [N, R, S]."""
    points = origins.unsqueeze(-2) + depths.unsqueeze(-1) * directions.unsqueeze(-2)
    return points.reshape(origins.shape[0], -1, 3)


def interval_mean(x: torch.Tensor) -> torch.Tensor:
    return (x[..., :-1] + x[..., 1:]) / 2


def interval_weights(
    sigmas: Sequence[torch.Tensor], depths: torch.Tensor, blend: torch.Tensor | None = None
) -> list[torch.Tensor]:
    """Per-interval weights [..., S-1] of each field, for raw densities and sorted depths [..., S].

    One field, EG3D's MipRayMarcher2: alpha = 1 - exp(-softplus(mean sigma - 1) delta) and
    w = alpha * prod(1 - alpha + 1e-10). Two fields (base, overlay) with the overlay's blend b: the
    factorised transmittance of In-N-Out's official code, per interval the light passing is
    (1 - b alpha_O)(1 - (1 - b) alpha_I), and the weights are T (1 - b) alpha_I and T b alpha_O. With
    b = 0 that is the one-field formula, operation for operation.
    """
    deltas = depths[..., 1:] - depths[..., :-1]
    alphas = [1 - torch.exp(-F.softplus(interval_mean(s) - 1) * deltas) for s in sigmas]
    if len(alphas) == 1:
        passing = 1 - alphas[0] + 1e-10
        shares = [None]
    else:
        b = interval_mean(blend)
        passing = (1 - b * alphas[1]) * (1 - (1 - b) * alphas[0]) + 1e-10
        shares = [1 - b, b]
    transmittance = torch.cumprod(torch.cat([torch.ones_like(passing[..., :1]), passing], dim=-1), dim=-1)[..., :-1]
    return [a * transmittance if s is None else transmittance * s * a for a, s in zip(alphas, shares, strict=True)]


def per_sample_weights(weights: torch.Tensor) -> torch.Tensor:
    """Interval weights [..., S-1] -> sample weights [..., S].

    EG3D averages the colours of an interval's two ends; that equals giving sample k the weight
    (w_{k-1} + w_k) / 2, which lets colours be summed without building interval midpoints.
    """
    pad = weights.new_zeros(weights.shape[:-1] + (1,))
    return (torch.cat([pad, weights], dim=-1) + torch.cat([weights, pad], dim=-1)) * 0.5


def expected_depth(weights: torch.Tensor, depths_mid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted mean depth [..., 1] (nan -> inf, unclamped) and weight sum [..., 1]. As EG3D, the depth is
    clamped to the depth range of the whole batch once every chunk is rendered."""
    weight_total = weights.sum(dim=-1, keepdim=True)
    depth = (weights * depths_mid).sum(dim=-1, keepdim=True) / weight_total
    return torch.nan_to_num(depth, float("inf")), weight_total


def _colour(order: torch.Tensor, weights: torch.Tensor, rgbs: list[torch.Tensor]) -> torch.Tensor:
    """Sum of colours under the interval weights of sorted samples. The colours stay in evaluation order
    (coarse then fine) and the per-sample weights are scattered back to it: sorting 32 channels per sample
    costs more than scattering one weight. Without a gradient the sum is a batched matrix product (the fastest
    there); with one it is a product and a sum, whose backward pass is two elementwise products, where the
    matrix product's backward copies every ray's operands apart on a CPU (a tenth of a joint step)."""
    w = torch.zeros_like(order, dtype=weights.dtype).scatter(-1, order, per_sample_weights(weights))
    differentiated = torch.is_grad_enabled() and (w.requires_grad or any(rgb.requires_grad for rgb in rgbs))
    out, offset = 0, 0
    for rgb in rgbs:
        share = w[..., offset : offset + rgb.shape[-2]]
        if differentiated:
            out = out + (share.unsqueeze(-1) * rgb).sum(-2)
        else:
            out = out + torch.matmul(share.unsqueeze(-2), rgb).squeeze(-2)
        offset += rgb.shape[-2]
    return out


def render_rays(
    fields: Sequence[Field],
    origins: torch.Tensor,
    directions: torch.Tensor,
    cfg: MarchSettings,
    *,
    depth_resolution: int | None = None,
    depth_resolution_importance: int | None = None,
    deterministic: bool = False,
    blend_scale: float | torch.Tensor = 1.0,
    separate: bool = False,
    points_per_chunk: int | None = None,
) -> Render:
    """Render the rays [N, R*R, 3] of N square images through ``fields``: one (a base field) or two (a base
    and an overlay whose samples carry a blend weight). ``blend_scale`` multiplies the overlay's b: 0
    removes it, a [N, R*R] tensor scales per ray. ``depth_resolution`` / ``_importance`` override the
    samples of ``cfg``; ``deterministic`` uses the fixed sample protocol instead of random draws."""
    if len(fields) not in (1, 2):
        raise ValueError(f"the marcher composites one field or a base and an overlay, got {len(fields)} fields")
    n, m, _ = origins.shape
    res = math.isqrt(m)
    if res * res != m:
        raise ValueError(f"expected the rays of square images (R*R per image), got {m}")
    overlay = len(fields) == 2
    coarse = depth_resolution or cfg.depth_resolution
    fine = cfg.depth_resolution_importance if depth_resolution_importance is None else depth_resolution_importance
    depths_coarse, u = draw_samples(n, m, cfg, coarse, fine, deterministic, origins.device)
    scale = torch.as_tensor(blend_scale, dtype=origins.dtype, device=origins.device)
    scale = scale.expand(n, m) if scale.ndim == 0 else scale.reshape(n, m)

    def evaluate(depths: torch.Tensor, o: torch.Tensor, d: torch.Tensor, ray_scale: torch.Tensor):
        rays, samples = depths.shape[1], depths.shape[2]
        points = ray_points(o, d, depths)
        rgbs, sigmas, blend = [], [], None
        for i, field in enumerate(fields):
            out = field(points)
            sigma = out.sigma
            if i == 0 and cfg.density_noise > 0:  # EG3D's training regulariser, a property of the base field
                sigma = sigma + torch.randn_like(sigma) * cfg.density_noise
            rgbs.append(out.rgb.reshape(n, rays, samples, -1))
            sigmas.append(sigma.reshape(n, rays, samples))
            if i == 1:
                if out.blend is None:
                    raise ValueError("the overlay field must return a blend weight")
                blend = out.blend.reshape(n, rays, samples) * ray_scale.unsqueeze(-1)
        return rgbs, sigmas, blend

    chunk = points_per_chunk or default_points_per_chunk(origins.device) // len(fields)
    rays_per_chunk = max(1, chunk // (n * (coarse + max(fine, 0))))
    outputs: dict[str, list[torch.Tensor]] = {"features": [], "depth": [], "weight": [], "opacity": [], "blend": []}
    alone: list[list[torch.Tensor]] = [[] for _ in fields]
    alone_weight: list[torch.Tensor] = []
    lo, hi = [], []
    for start in range(0, m, rays_per_chunk):
        sl = slice(start, min(m, start + rays_per_chunk))
        o, d, ray_scale = origins[:, sl], directions[:, sl], scale[:, sl]
        t = depths_coarse[:, sl, :, 0]
        rgbs, sigmas, blend = evaluate(t, o, d, ray_scale)
        colours = [[rgb] for rgb in rgbs]
        if fine > 0:
            with torch.no_grad():  # the fine depths are not differentiated, as in EG3D
                total = sum(interval_weights(sigmas, t, blend))
                rows = n * t.shape[1]
                t_fine = importance_depths(t.reshape(rows, -1), total.reshape(rows, -1), u[:, sl].reshape(rows, -1))
            rgbs_fine, sigmas_fine, blend_fine = evaluate(t_fine.reshape(n, -1, fine), o, d, ray_scale)
            t = torch.cat([t, t_fine.reshape(n, -1, fine)], dim=-1)
            colours = [[*c, r] for c, r in zip(colours, rgbs_fine, strict=True)]
            sigmas = [torch.cat([a, b], dim=-1) for a, b in zip(sigmas, sigmas_fine, strict=True)]
            blend = torch.cat([blend, blend_fine], dim=-1) if overlay else None
        t_sorted, order = torch.sort(t, dim=-1)
        sigmas = [s.gather(-1, order) for s in sigmas]
        weights = interval_weights(sigmas, t_sorted, blend.gather(-1, order) if overlay else None)
        features = sum(_colour(order, w, c) for w, c in zip(weights, colours, strict=True))
        total = sum(weights)
        if cfg.white_back:
            features = features + 1 - total.sum(dim=-1, keepdim=True)
        depth, weight = expected_depth(total, interval_mean(t_sorted))
        outputs["features"].append(features * 2 - 1)
        outputs["depth"].append(depth)
        outputs["weight"].append(weight)
        if overlay:
            outputs["opacity"].append(weights[1].sum(-1, keepdim=True))
            outputs["blend"].append(blend)
        if separate:
            for k, (sigma, c) in enumerate(zip(sigmas, colours, strict=True)):
                own = interval_weights([sigma], t_sorted)[0]
                alone[k].append(_colour(order, own, c) * 2 - 1)
                if k == 1:
                    alone_weight.append(own.sum(-1, keepdim=True))
        lo.append(t_sorted.amin())
        hi.append(t_sorted.amax())

    def image(chunks: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat(chunks, dim=1)
        return x.permute(0, 2, 1).reshape(n, x.shape[-1], res, res).contiguous()

    depth = torch.clamp(torch.cat(outputs["depth"], dim=1), torch.stack(lo).amin(), torch.stack(hi).amax())
    return Render(
        feature_image=image(outputs["features"]),
        depth_image=image([depth]),
        weight_image=image(outputs["weight"]),
        ood_opacity=image(outputs["opacity"]) if overlay else None,
        blend=torch.cat(outputs["blend"], dim=1) if overlay else None,
        coarse_samples=coarse,
        face_feature_image=image(alone[0]) if separate else None,
        ood_feature_image=image(alone[1]) if separate and overlay else None,
        ood_alone_weight=image(alone_weight) if separate and overlay else None,
    )
