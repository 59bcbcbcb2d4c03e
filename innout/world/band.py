"""A synthetic face video with ground truth, for testing and benchmarking the fit.

A generator renders known latents along a known camera path (the clean video). A known 3D OOD
object, an opaque coloured band across the eyes built as its own density field with b = 1 inside,
is added through the composite renderer (the composite video). The OOD mask is where the band's
share of a pixel's colour exceeds one half. Everything is at the neural rendering resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..eg3d.cameras import FFHQ_FOCAL, INO_FOCAL, camera_rays, frontal_label, orbit_label
from ..eg3d.generator import TriPlaneGenerator
from ..fit.data import FitData
from ..render import FieldSamples, render_rays
from ..scene.ood_field import OODField

BAND_Y = (0.02, 0.12)  # the band's extent in y (eye height), in front of z > BAND_Z_MIN, |x| < BAND_HALF_WIDTH
BAND_Z_MIN = 0.12
BAND_HALF_WIDTH = 0.15


def band_field(
    colour: tuple[float, float, float] = (1.0, 0.0, 0.0),
    y: tuple[float, float] = BAND_Y,
    z_min: float = BAND_Z_MIN,
    half_width: float = BAND_HALF_WIDTH,
):
    """An opaque slab across the eyes, in front of the face, entirely OOD (b = 1 inside, 0 outside)."""
    rgb = torch.zeros(32)
    rgb[:3] = torch.tensor(colour)

    def field(points: torch.Tensor) -> FieldSamples:
        p = points.reshape(-1, 3)
        inside = (p[:, 1] > y[0]) & (p[:, 1] < y[1]) & (p[:, 2] > z_min) & (p[:, 0].abs() < half_width)
        sigma = torch.where(inside, 60.0, -30.0).unsqueeze(-1)
        return FieldSamples(rgb.to(p.device).expand(len(p), 32), sigma, inside.to(p.dtype).unsqueeze(-1))

    return field


@torch.no_grad()
def band_ood_field(n_frames: int, *, resolution: int = 128, sharpness: float = 60.0) -> OODField:
    """An ``OODField`` (the fitted kind, as a scene stores it) that holds the same red band as
    ``band_field``: its tri-plane channel 0 is the band's footprint on each plane, so the mean over the
    planes is 1 only inside the slab; the decoder turns that into high density, b = 1 and red."""
    y, z_min, half_width = BAND_Y, BAND_Z_MIN, BAND_HALF_WIDTH
    ood = OODField(n_frames, resolution=resolution).requires_grad_(False)
    c = ((torch.arange(resolution) + 0.5) / resolution * 2 - 1) * ood.box_warp / 2  # pixel centres
    rows, cols = torch.meshgrid(c, c, indexing="ij")  # plane row = v, column = u
    footprints = [
        ((rows > y[0]) & (rows < y[1]) & (cols.abs() < half_width)),  # plane (x, y): u = x, v = y
        ((rows > z_min) & (cols.abs() < half_width)),  # plane (x, z): u = x, v = z
        ((cols > z_min) & (rows.abs() < half_width)),  # plane (z, x): u = z, v = x
    ]
    ood.triplanes.zero_()
    for i, footprint in enumerate(footprints):
        ood.triplanes[0, i, 0] = footprint.float()
    first, last = ood.decoder.net[0], ood.decoder.net[2]
    for layer in (first, last):
        layer.weight.zero_()
        layer.bias.zero_()
    first.weight[0, 0] = sharpness / first.weight_gain  # hidden 0 = softplus(a (f0 - 0.83))
    first.bias[0] = -0.83 * sharpness / first.bias_gain
    last.weight[0, 0], last.bias[0] = 6 / last.weight_gain, -30 / last.bias_gain  # density
    last.bias[1], last.bias[2], last.bias[3] = 10.0, -10.0, -10.0  # red
    last.weight[33, 0], last.bias[33] = 2 / last.weight_gain, -5 / last.bias_gain  # blend
    return ood


@dataclass
class SyntheticVideo:
    clean: torch.Tensor  # [F, 3, R, R] the face alone
    composite: torch.Tensor  # [F, 3, R, R] face + OOD band
    ood_mask: torch.Tensor  # [F, 1, R, R] bool
    cameras: torch.Tensor  # [F, 25]
    ws: torch.Tensor  # [F, 14, 512] the true latents

    def fit_data(self, *, with_masks: bool = False) -> FitData:
        key = f"synthetic-{hash_tensor(self.composite)}"
        return FitData(
            targets=self.composite,
            cameras=self.cameras,
            key=key,
            ood_masks=self.ood_mask.float() if with_masks else None,
        )


def hash_tensor(x: torch.Tensor) -> str:
    import hashlib

    return hashlib.sha256(x.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


@torch.no_grad()
def make_synthetic_video(
    G: TriPlaneGenerator,
    n_frames: int = 4,
    *,
    seed: int = 7,
    yaw_range: float = 0.3,
    residual_strength: float = 0.3,
    resolution: int | None = None,
) -> SyntheticVideo:
    """Frames of one identity (w_cano from one z, small per-frame residuals) seen along a yaw sweep."""
    generator = torch.Generator().manual_seed(seed)
    res = resolution or G.neural_rendering_resolution
    z = torch.randn(1, G.z_dim, generator=generator)
    w_cano = G.mapping(z, frontal_label(INO_FOCAL))
    spread = G.mapping(torch.randn(64, G.z_dim, generator=generator), frontal_label(INO_FOCAL).expand(64, -1))
    residual = torch.randn(n_frames, 1, G.w_dim, generator=generator) * spread[:, 0].std(dim=0)
    ws = w_cano + residual_strength * residual  # the same offset on every layer: a W-space motion
    angles = torch.linspace(-yaw_range, yaw_range, n_frames) if n_frames > 1 else torch.zeros(1)
    cameras = torch.cat(
        [orbit_label(math.pi / 2 + float(a), math.pi / 2 - 0.05 * float(a), focal=FFHQ_FOCAL) for a in angles]
    )
    clean, composite, masks = [], [], []
    band = band_field()
    for t in range(n_frames):
        planes = G.synthesize_planes(ws[t : t + 1])
        origins, dirs = camera_rays(cameras[t : t + 1], res)
        out = render_rays([G.face_field(planes), band], origins, dirs, G.rendering, deterministic=True)
        eg3d = G.render_planes(planes, cameras[t : t + 1], resolution=res, deterministic=True)
        composite.append(out.image_raw)
        masks.append(out.ood_opacity > 0.5)
        clean.append(eg3d.image_raw)
    return SyntheticVideo(
        clean=torch.cat(clean).clamp(-1, 1),
        composite=torch.cat(composite).clamp(-1, 1),
        ood_mask=torch.cat(masks),
        cameras=cameras,
        ws=ws,
    )


@dataclass
class FitScores:
    """Scores of a fitted scene against a synthetic video (all at the neural rendering resolution)."""

    psnr: float  # reconstruction of the composite video
    lpips: float
    psnr_ood: float  # reconstruction inside the true OOD mask
    mask_iou: float | None  # IoU of (predicted OOD opacity > 0.5) with the true mask; None without an OOD field
    removal_psnr: float | None  # OOD-removed render vs the clean video
    composite_vs_clean_psnr: float  # the target composite vs the clean video (what removal must beat)

    def row(self) -> dict[str, float | None]:
        return dict(self.__dict__)


@torch.no_grad()
def render_scene_raw(scene, frames: torch.Tensor, *, remove_ood: bool = False, resolution: int | None = None):
    """Neural renders [N, 3, R, R] and OOD opacity [N, 1, R, R] (zeros without an OOD field) of a fitted
    scene (``SceneData``) at its own cameras, with the deterministic sample protocol."""
    from ..fit.joint import face_planes
    from ..scene.composite import render_composite

    G = scene.generator
    res = resolution or G.neural_rendering_resolution
    frames = frames.to(scene.ws.device)
    ws = scene.ws[frames]
    planes = face_planes(G, ws)
    cameras = scene.cameras[frames]
    if scene.ood is None:
        render = G.render_planes(planes, cameras, resolution=res, deterministic=True)
        return render.image_raw, torch.zeros_like(render.weight_image)
    out = render_composite(
        G, planes, scene.ood, frames, cameras, resolution=res, deterministic=True,
        blend_scale=0.0 if remove_ood else 1.0,
    )
    return out.image_raw, out.ood_opacity


def _psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    err = (a.clamp(-1, 1) - b.clamp(-1, 1)).square() / 4  # in [0, 1] units
    if mask is not None:
        m = mask.float().expand_as(err)
        value = (err * m).sum() / m.sum().clamp_min(1)
    else:
        value = err.mean()
    return float(10 * torch.log10(1 / value.clamp_min(1e-10)))


def score_fit(scene, video: SyntheticVideo) -> FitScores:
    from ..metrics.perceptual import get_lpips

    frames = torch.arange(len(video.composite))
    image, opacity = render_scene_raw(scene, frames)
    image, opacity = image.cpu(), opacity.cpu()
    lpips = float(get_lpips("alex")(image.clamp(-1, 1), video.composite).mean())
    has_ood = scene.ood is not None
    iou = removal = None
    if has_ood:
        predicted = opacity > 0.5
        union = (predicted | video.ood_mask).sum()
        iou = float((predicted & video.ood_mask).sum() / union.clamp_min(1))
        removed, _ = render_scene_raw(scene, frames, remove_ood=True)
        removal = _psnr(removed.cpu(), video.clean)
    return FitScores(
        psnr=_psnr(image, video.composite),
        lpips=lpips,
        psnr_ood=_psnr(image, video.composite, video.ood_mask),
        mask_iou=iou,
        removal_psnr=removal,
        composite_vs_clean_psnr=_psnr(video.composite, video.clean),
    )
