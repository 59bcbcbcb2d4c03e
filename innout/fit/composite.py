"""Composite volume rendering of the face field (EG3D) and the OOD field (paper eq. 7, facts E3).

Both fields are evaluated at exactly the same sample positions along every ray; the official code
evaluates the OOD field at the face's fine points but sorts them by its own, different importance
depths, which misaligns the two (facts G7). Here one set of depths serves both:

- coarse depths: EG3D's stratified samples;
- fine depths: inverse-CDF samples of the *composite* weights. Where the OOD object occludes the face
  (glasses, a mask), the composite weights peak on the object, so it gets the fine samples; where the
  face is visible they peak on the skin as in EG3D. With b = 0 everywhere the composite weights are
  EG3D's weights, so the samples, and the whole render, are exactly EG3D's.

The blend uses the factorised transmittance of the official code: per interval the light passing is
(1 - b alpha_O)(1 - (1 - b) alpha_I), and the colour is sum_k T_k (b alpha_O c_O + (1 - b) alpha_I c_I),
with interval values averaged from the two ends (EG3D's MipRayMarcher2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..eg3d.cameras import camera_rays
from ..eg3d.config import RenderingConfig
from ..eg3d.generator import TriPlaneGenerator
from ..eg3d.renderer import (
    default_points_per_chunk,
    draw_samples,
    expected_depth,
    importance_depths,
    march_weights,
    per_sample_weights,
    ray_points,
    triplane_field,
)
from .ood_field import FieldSamples, OODField


@dataclass
class CompositeRender:
    """Images [N, C, R, R]: ``feature_image`` (composite, 32 channels in [-1, 1], RGB first) feeds the
    super-resolution; ``ood_opacity`` is the share of each pixel's colour that comes from the OOD field
    (the blend map); ``face_feature_image`` / ``ood_feature_image`` are each field rendered alone (only
    when asked for); ``blend`` holds b at every sample [N, R*R, S] for the entropy loss."""

    feature_image: torch.Tensor
    depth_image: torch.Tensor
    weight_image: torch.Tensor
    ood_opacity: torch.Tensor
    blend: torch.Tensor
    face_feature_image: torch.Tensor | None = None
    ood_feature_image: torch.Tensor | None = None

    @property
    def image_raw(self) -> torch.Tensor:
        return self.feature_image[:, :3]


def _interval_mean(x: torch.Tensor) -> torch.Tensor:
    return (x[..., :-1] + x[..., 1:]) / 2


def blend_interval_weights(
    sigma_face: torch.Tensor, sigma_ood: torch.Tensor, blend: torch.Tensor, depths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-interval weights of the face and the OOD field [..., S-1] for sorted samples [..., S]."""
    deltas = depths[..., 1:] - depths[..., :-1]
    alpha_face = 1 - torch.exp(-F.softplus(_interval_mean(sigma_face) - 1) * deltas)
    alpha_ood = 1 - torch.exp(-F.softplus(_interval_mean(sigma_ood) - 1) * deltas)
    b = _interval_mean(blend)
    passing = (1 - b * alpha_ood) * (1 - (1 - b) * alpha_face) + 1e-10
    transmittance = torch.cumprod(torch.cat([torch.ones_like(passing[..., :1]), passing], dim=-1), dim=-1)[..., :-1]
    return transmittance * (1 - b) * alpha_face, transmittance * b * alpha_ood


Field = Callable[[torch.Tensor], FieldSamples]


def _colour(order: torch.Tensor, interval_weights: torch.Tensor, rgbs: list[torch.Tensor]) -> torch.Tensor:
    """Sum of colours under interval weights of sorted samples; the colours stay in evaluation order
    (coarse then fine) and the per-sample weights are scattered back to it."""
    w = torch.zeros_like(order, dtype=interval_weights.dtype).scatter(-1, order, per_sample_weights(interval_weights))
    out, offset = 0, 0
    for rgb in rgbs:
        out = out + torch.matmul(w[..., None, offset : offset + rgb.shape[-2]], rgb).squeeze(-2)
        offset += rgb.shape[-2]
    return out


def render_composite(
    face: Field,
    ood: Field,
    origins: torch.Tensor,
    directions: torch.Tensor,
    cfg: RenderingConfig,
    *,
    depth_resolution: int | None = None,
    depth_resolution_importance: int | None = None,
    deterministic: bool = False,
    blend_scale: float | torch.Tensor = 1.0,
    separate: bool = False,
    points_per_chunk: int | None = None,
) -> dict[str, torch.Tensor]:
    """Composite render of rays [N, M, 3]. ``face``/``ood`` map points [N, P, 3] to ``FieldSamples``.

    ``blend_scale`` multiplies b (0 removes the OOD object; a [N, M] tensor scales per ray).
    Returns per-ray tensors [N, M, ...]; ``render_composite_image`` wraps this for cameras.
    """
    n, m, _ = origins.shape
    coarse = depth_resolution or cfg.depth_resolution
    fine = cfg.depth_resolution_importance if depth_resolution_importance is None else depth_resolution_importance
    depths_coarse, u = draw_samples(n, m, cfg, coarse, fine, deterministic, origins.device)
    scale_per_ray = torch.as_tensor(blend_scale, dtype=origins.dtype, device=origins.device)
    if scale_per_ray.ndim == 0:
        scale_per_ray = scale_per_ray.expand(n, m)

    def evaluate(depths: torch.Tensor, o: torch.Tensor, d: torch.Tensor, scale: torch.Tensor):
        rays, samples = depths.shape[1], depths.shape[2]
        points = ray_points(o, d, depths)
        f, g = face(points), ood(points)
        shape = (n, rays, samples)
        blend = g.blend.reshape(shape) * scale.unsqueeze(-1)
        return (
            f.rgb.reshape(*shape, -1),
            f.sigma.reshape(shape),
            g.rgb.reshape(*shape, -1),
            g.sigma.reshape(shape),
            blend,
        )

    chunk = points_per_chunk or default_points_per_chunk(origins.device) // 2  # two fields per point
    rays_per_chunk = max(1, chunk // (n * (coarse + max(fine, 0))))
    outputs: dict[str, list[torch.Tensor]] = {k: [] for k in ("features", "depth", "weight", "opacity", "blend")}
    if separate:
        outputs.update(face=[], ood=[])
    lo, hi = [], []
    for start in range(0, m, rays_per_chunk):
        sl = slice(start, min(m, start + rays_per_chunk))
        o, d, scale = origins[:, sl], directions[:, sl], scale_per_ray[:, sl]
        t = depths_coarse[:, sl, :, 0]
        rgb_f, sig_f, rgb_o, sig_o, b = evaluate(t, o, d, scale)
        if fine > 0:
            with torch.no_grad():
                w_face, w_ood = blend_interval_weights(sig_f, sig_o, b, t)
                rows = n * t.shape[1]
                t_fine = importance_depths(
                    t.reshape(rows, -1), (w_face + w_ood).reshape(rows, -1), u[:, sl].reshape(rows, -1)
                ).reshape(n, -1, fine)
            rgb_f2, sig_f2, rgb_o2, sig_o2, b2 = evaluate(t_fine, o, d, scale)
            t_all = torch.cat([t, t_fine], dim=-1)
            rgb_face, rgb_ood = [rgb_f, rgb_f2], [rgb_o, rgb_o2]
            sig_f, sig_o, b = torch.cat([sig_f, sig_f2], -1), torch.cat([sig_o, sig_o2], -1), torch.cat([b, b2], -1)
        else:
            t_all, rgb_face, rgb_ood = t, [rgb_f], [rgb_o]
        t_sorted, order = torch.sort(t_all, dim=-1)
        sig_f, sig_o, b = sig_f.gather(-1, order), sig_o.gather(-1, order), b.gather(-1, order)
        w_face, w_ood = blend_interval_weights(sig_f, sig_o, b, t_sorted)
        features = _colour(order, w_face, rgb_face) + _colour(order, w_ood, rgb_ood)
        mids = _interval_mean(t_sorted)
        depth, weight = expected_depth(w_face + w_ood, mids)
        outputs["features"].append(features * 2 - 1)
        outputs["depth"].append(depth)
        outputs["weight"].append(weight)
        outputs["opacity"].append(w_ood.sum(-1, keepdim=True))
        outputs["blend"].append(b)
        if separate:
            outputs["face"].append(_colour(order, march_weights(sig_f, t_sorted)[0], rgb_face) * 2 - 1)
            outputs["ood"].append(_colour(order, march_weights(sig_o, t_sorted)[0], rgb_ood) * 2 - 1)
        lo.append(t_sorted.amin())
        hi.append(t_sorted.amax())
    result = {k: torch.cat(v, dim=1) for k, v in outputs.items()}
    result["depth"] = torch.clamp(result["depth"], torch.stack(lo).amin(), torch.stack(hi).amax())
    return result


def face_field(G: TriPlaneGenerator, planes: torch.Tensor) -> Field:
    """EG3D's tri-planes + decoder as a field over points [N, P, 3]."""
    decode = triplane_field(planes, G.decoder, G.rendering.box_warp)
    return lambda points: FieldSamples(*decode(points))


def ood_field(ood: OODField, frames: torch.Tensor, codes: torch.Tensor | None = None) -> Field:
    """The OOD field of ``frames`` [N] (or of explicit per-frame ``codes`` [N, code_dim], e.g. smoothed)."""
    return lambda points: ood(points, frames, codes)


def render_composite_image(
    G: TriPlaneGenerator,
    planes: torch.Tensor,
    ood: OODField,
    frames: torch.Tensor,
    cameras: torch.Tensor,
    *,
    resolution: int | None = None,
    blend_scale: float | torch.Tensor = 1.0,
    separate: bool = False,
    ood_codes: torch.Tensor | None = None,
    **render_kwargs,
) -> CompositeRender:
    """Composite neural render from face tri-planes [N, 3, 32, H, W], the OOD field at ``frames`` [N] and
    cameras [N, 25]. ``blend_scale`` may be a per-pixel map [N, 1, R, R] (mask-guided removal);
    ``ood_codes`` [N, code_dim] replace the frames' own OOD codes (temporal smoothing)."""
    res = resolution or G.neural_rendering_resolution
    origins, directions = camera_rays(cameras.to(planes.device), res)
    n = planes.shape[0]
    if isinstance(blend_scale, torch.Tensor) and blend_scale.ndim == 4:
        blend_scale = blend_scale.reshape(n, res * res)
    out = render_composite(
        face_field(G, planes),
        ood_field(ood, frames, ood_codes),
        origins,
        directions,
        G.rendering,
        blend_scale=blend_scale,
        separate=separate,
        **render_kwargs,
    )

    def image(x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 1).reshape(n, x.shape[-1], res, res).contiguous()

    return CompositeRender(
        feature_image=image(out["features"]),
        depth_image=image(out["depth"]),
        weight_image=image(out["weight"]),
        ood_opacity=image(out["opacity"]),
        blend=out["blend"],
        face_feature_image=image(out["face"]) if separate else None,
        ood_feature_image=image(out["ood"]) if separate else None,
    )
