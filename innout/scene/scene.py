"""A fitted scene: render any frame, from any camera, with edits, with or without the OOD object.

This is what the CLI (``python -m innout render``), the exports and the app call, with one typed
``RenderRequest``. The face tri-planes of each (frame, edits, smoothing) are cached, so orbiting the
camera or toggling removal re-renders without running the StyleGAN backbone.

Dragging a slider (``approximate_edits``) must not wait for the backbone either: each edit's tri-planes
are computed once at a few strengths ("knots" across the slider's range) and the planes in between are
interpolated linearly, the edits adding up. Exact at the knots, approximate between them; a release
renders exactly.

Removal: ``removal='global'`` renders with b = 0 everywhere, which is exactly EG3D's render of the same
latents. ``removal='mask'`` is the official mask-guided variant: b = 0 on rays inside a dilated OOD mask,
b x ``outside_scale`` elsewhere (the official code uses 1.2, which can push b above 1; the default here
is 1, which keeps what lies outside the mask exactly as fitted). The mask is the user's (crop-sized,
1 = OOD) or, by default, where this view's own OOD opacity exceeds one half.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..edit.directions import Direction
from ..edit.mapper import LevelsMapper
from ..edit.smoothing import SMOOTHING_MODES, SuperresolutionHistory
from ..eg3d.cameras import FRONTAL_PITCH, FRONTAL_YAW, orbit_angles, orbit_label
from ..images import to_uint8
from ..numbers import Range
from ..render import Render
from .cache import PlaneCache, plane_key
from .composite import render_composite
from .edits import RenderError, SceneEdits, check_strengths
from .file import SceneData, load_scene

Camera = None | tuple[float, float] | torch.Tensor
REMOVAL_MODES = ("global", "mask")


@dataclass(frozen=True)
class Quality:
    """``resolution`` / ``samples`` cap the neural render (None: the generator's own); without the
    super-resolution the raw render is upsampled to the output size."""

    resolution: int | None
    samples: tuple[int, int] | None
    super_resolution: bool


QUALITIES = {
    "preview": Quality(resolution=64, samples=(24, 24), super_resolution=False),
    "full": Quality(resolution=None, samples=None, super_resolution=True),
}


@dataclass(frozen=True)
class RenderRequest:
    """One render of a scene.

    ``frame``: 0-based fitted frame. ``camera``: None (the frame's own), a (yaw, pitch) offset from frontal
    in radians on EG3D's orbit (radius 2.7, the frame's focal length), or a 25-d label. ``edits``:
    {name: strength}; ``conditional``: directions projected out of each edit. ``smoothing``: None,
    'causal' or 'zero-lag' (of latents and OOD codes over time). ``remove_ood`` with ``removal``
    ('global' or 'mask', with an optional crop-sized ``removal_mask`` and ``outside_scale``); without removal,
    ``ood_weight`` (0 to 1) scales b everywhere: the object faded. ``quality``: 'preview' or 'full'.
    ``approximate_edits``: the slider-drag preview. ``with_depth`` / ``with_blend``: also return the depth and the
    OOD opacity maps.

    Every field is checked when the request is made (``check_request``), so a NaN or an absurd number is a
    ``RenderError`` naming it, never a black image: frame >= 0 (and below the scene's count at render
    time), camera yaw within +-2 pi and pitch within +-pi/2 radians (a label: 25 finite numbers), edit
    strengths finite within +-50, ``outside_scale`` 0 to 4, ``ood_weight`` 0 to 1, known smoothing, removal and
    quality names."""

    frame: int = 0
    camera: Camera = None
    edits: dict[str, float] = field(default_factory=dict)
    conditional: tuple[str, ...] = ()
    smoothing: str | None = None
    remove_ood: bool = False
    removal: str = "global"
    removal_mask: np.ndarray | None = None
    outside_scale: float = 1.0
    ood_weight: float = 1.0  # b multiplied by this everywhere: 1 the fitted object, 0.5 faded, 0 gone (global removal)
    quality: str = "preview"
    approximate_edits: bool = False
    with_depth: bool = False
    with_blend: bool = False

    def __post_init__(self) -> None:
        check_request(self)

    def at(self, frame: int, camera: Camera = None) -> RenderRequest:
        """The same request for another frame (and camera)."""
        return dataclasses.replace(self, frame=frame, camera=camera)


FRAME = Range(0, None, integer=True)  # the upper end is the scene's: checked when rendering
CAMERA_YAW = Range(-2 * np.pi, 2 * np.pi, unit="radians from frontal: one turn either way")
CAMERA_PITCH = Range(-np.pi / 2, np.pi / 2, unit="radians from frontal: up to straight above or below")
OUTSIDE_SCALE = Range(0, 4)  # b outside the removal mask is multiplied by this (official code: 1.2)
OOD_WEIGHT = Range(0, 1)  # the blend as a weight: the OOD object faded (beyond the paper: an editing control)


def check_request(r: RenderRequest) -> None:
    """Refuse a request whose numbers a render cannot use (NaN, infinity, out of range, unknown option)
    with a ``RenderError`` naming the field, before any work; store the checked values as plain numbers."""

    def keep(name: str, value) -> None:
        object.__setattr__(r, name, value)

    keep("frame", FRAME.check(r.frame, "frame", RenderError))
    keep("edits", check_strengths(r.edits))
    keep("outside_scale", OUTSIDE_SCALE.check(r.outside_scale, "outside_scale", RenderError))
    keep("ood_weight", OOD_WEIGHT.check(r.ood_weight, "ood_weight", RenderError))
    keep("camera", _checked_camera(r.camera))
    if isinstance(r.conditional, str) or not all(isinstance(c, str) for c in r.conditional):
        raise RenderError(f"conditional must be a list of edit names, got {r.conditional!r}")
    keep("conditional", tuple(r.conditional))
    for name, value, allowed in (
        ("smoothing", r.smoothing, (None, *SMOOTHING_MODES)), ("removal", r.removal, REMOVAL_MODES),
        ("quality", r.quality, tuple(QUALITIES)),
    ):  # fmt: skip
        if value not in allowed:
            raise RenderError(f"{name} must be one of {list(allowed)}, got {value!r}")
    if r.removal_mask is not None:
        mask = np.asarray(r.removal_mask)
        if mask.ndim not in (2, 3) or mask.size == 0 or mask.dtype.kind not in "biuf":
            raise RenderError(f"removal_mask must be an image ([H, W] or [H, W, C]), got shape {mask.shape}")
        if not np.isfinite(mask).all():
            raise RenderError("removal_mask holds NaN or infinite values")


def _checked_camera(camera: Camera) -> Camera:
    if camera is None:
        return None
    if isinstance(camera, torch.Tensor):
        if camera.numel() != 25 or not bool(torch.isfinite(camera).all()):
            raise RenderError(f"a camera label must be 25 finite numbers, got shape {tuple(camera.shape)}")
        return camera
    if not isinstance(camera, (tuple, list)) or len(camera) != 2:
        raise RenderError(f"camera must be None, (yaw, pitch) in radians or a 25-number label, got {camera!r}")
    yaw = CAMERA_YAW.check(camera[0], "camera yaw", RenderError)
    pitch = CAMERA_PITCH.check(camera[1], "camera pitch", RenderError)
    return yaw, pitch


@dataclass
class SceneRender:
    image: np.ndarray  # [H, W, 3] uint8 at the generator's output size (512)
    raw: torch.Tensor  # [3, R, R] the neural render's RGB in [-1, 1]
    depth: np.ndarray | None = None  # [R, R] expected ray depth
    ood_opacity: np.ndarray | None = None  # [R, R] share of each pixel's colour from the OOD field


def dilate(mask: torch.Tensor, kernel: int) -> torch.Tensor:
    return F.max_pool2d(mask.float(), kernel, stride=1, padding=kernel // 2) > 0.5


class Scene:
    """A fitted scene (``SceneData``) ready to render: its edits (``innout.scene.edits``), its tri-plane
    caches (the exact planes, and the knot planes of drag previews) and ``render(RenderRequest)``."""

    def __init__(self, data: SceneData, *, cache_size: int = 8, knots: int = 5) -> None:
        self.data = data
        self.G = data.generator.eval().requires_grad_(False)
        self.device = data.ws.device
        self.edits = SceneEdits(self.G, data.ws, data.ood.codes.detach() if data.ood is not None else None)
        self.knots = knots  # strengths per edit at which drag previews are exact (odd: 0 is one of them)
        self._planes = PlaneCache(cache_size)
        self._knot_planes = PlaneCache(max(cache_size, 4 * knots))  # knots must not evict the exact planes
        self.backbone_runs = 0  # how many times tri-planes were synthesised (for tests and benchmarks)
        self.path: Path | None = None

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu", *, cache_size: int = 8) -> Scene:
        scene = cls(load_scene(path, device), cache_size=cache_size)
        scene.path = Path(path)
        return scene

    # --- what the scene holds -------------------------------------------------------------------
    @property
    def n_frames(self) -> int:
        return self.data.n_frames

    @property
    def has_ood(self) -> bool:
        return self.data.ood is not None

    @property
    def edit_names(self) -> list[str]:
        return self.edits.names

    # an edit replaced under the same name (a direction learned again) makes every cached plane computed with
    # its old numbers stale: the caches are keyed by edit name and strength, so they are emptied
    def add_direction(self, direction: Direction) -> None:
        if self.edits.add_direction(direction):
            self.clear_cache()

    def add_mapper(self, mapper: LevelsMapper) -> None:
        if self.edits.add_mapper(mapper):
            self.clear_cache()

    def load_directions(self, paths: list[str | os.PathLike]) -> list[str]:
        notes, replaced = self.edits.load_directions(paths)
        if replaced:
            self.clear_cache()
        return notes

    def frame_angles(self, frame: int) -> tuple[float, float]:
        """(yaw, pitch) of the frame's own camera as offsets from frontal, radians."""
        yaw, pitch = orbit_angles(self.data.cameras[self._check_frame(frame)].cpu())
        return yaw - FRONTAL_YAW, pitch - FRONTAL_PITCH

    def camera(self, frame: int, camera: Camera = None) -> torch.Tensor:
        """The camera label [1, 25] of a request's ``camera`` at ``frame``."""
        own = self.data.cameras[self._check_frame(frame)][None]
        if camera is None:
            return own
        if isinstance(camera, torch.Tensor):
            return camera.reshape(1, 25).to(own)
        yaw, pitch = camera
        return orbit_label(FRONTAL_YAW + yaw, FRONTAL_PITCH + pitch, focal=float(own[0, 16])).to(own)

    def _check_frame(self, frame: int) -> int:
        last = Range(0, self.n_frames - 1, integer=True)
        try:
            return last.check(frame, "frame", RenderError)
        except RenderError:
            raise RenderError(f"frame {frame} is out of range: the scene has frames 0-{self.n_frames - 1}") from None

    # --- tri-planes -------------------------------------------------------------------------------
    def _synthesise(self, ws: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            planes = self.G.synthesize_planes(ws, noise_mode="const")
        self.backbone_runs += 1
        return planes

    def frame_ws(self, frame: int, edits=None, *, smoothing=None, conditional=()) -> torch.Tensor:
        """ws [1, 14, 512] of a frame after smoothing and edits."""
        return self.edits.frame_ws(self._check_frame(frame), edits, smoothing=smoothing, conditional=conditional)

    def planes(self, frame: int, edits=None, *, smoothing=None, conditional=()) -> tuple[torch.Tensor, torch.Tensor]:
        """(tri-planes [1, 3, 32, H, W], ws) of a frame, from the cache when possible."""
        ws = self.frame_ws(frame, edits, smoothing=smoothing, conditional=conditional)
        key = plane_key(frame, edits, smoothing, conditional)
        return self._planes.get(key, lambda: self._synthesise(ws)), ws

    def clear_cache(self) -> None:
        self._planes.clear()
        self._knot_planes.clear()

    def edit_range(self, name: str) -> tuple[float, float]:
        return self.edits.range(name)

    def edit_knots(self, name: str) -> list[float]:
        """The strengths at which the drag preview of ``name`` is exact; 0 is always one of them."""
        return self.edits.knots(name, self.knots)

    def _knot(self, frame: int, name: str, strength: float, smoothing, conditional) -> torch.Tensor:
        if strength == 0:
            return self.planes(frame, None, smoothing=smoothing)[0]
        edit = {name: strength}
        ws = self.frame_ws(frame, edit, smoothing=smoothing, conditional=conditional)
        return self._knot_planes.get(plane_key(frame, edit, smoothing, conditional), lambda: self._synthesise(ws))

    def warm_edit_knots(self, frame: int, names: list[str] | None = None, *, smoothing=None, conditional=()) -> int:
        """Compute the knot planes of ``names`` (default: every edit) for a frame ahead of a drag; returns
        how many backbone runs it took (0 when they were cached)."""
        before = self.backbone_runs
        for name in names if names is not None else self.edit_names:
            for k in self.edit_knots(name):
                self._knot(frame, name, k, smoothing, conditional)
        return self.backbone_runs - before

    def interpolated_planes(self, frame: int, edits=None, *, smoothing=None, conditional=()) -> torch.Tensor:
        """Tri-planes for ``edits`` from the knot planes: per edit, linear between the two knots around
        its strength (clamped to the range); several edits add their changes to the unedited planes."""
        self.edits.check(edits)
        base = self.planes(frame, None, smoothing=smoothing)[0]
        planes = base
        for name, value in sorted((edits or {}).items()):
            if float(value) == 0:
                continue
            knots = self.edit_knots(name)
            s = min(max(float(value), knots[0]), knots[-1])
            i = max(1, min(int(np.searchsorted(knots, s)), len(knots) - 1))
            a, b = knots[i - 1], knots[i]
            lower = self._knot(frame, name, a, smoothing, conditional)
            upper = self._knot(frame, name, b, smoothing, conditional)
            planes = planes + torch.lerp(lower, upper, (s - a) / (b - a)) - base
        return planes

    # --- rendering -------------------------------------------------------------------------------
    def _settings(self, quality: str) -> tuple[int, dict]:
        if quality not in QUALITIES:
            raise RenderError(f"quality must be one of {list(QUALITIES)}, got {quality!r}")
        q, G = QUALITIES[quality], self.G
        res = min(q.resolution, G.neural_rendering_resolution) if q.resolution else G.neural_rendering_resolution
        if q.samples is None:
            return res, {}
        cfg = G.rendering
        return res, {
            "depth_resolution": min(q.samples[0], cfg.depth_resolution),
            "depth_resolution_importance": min(q.samples[1], cfg.depth_resolution_importance),
        }

    @torch.no_grad()
    def render(self, request: RenderRequest, *, sr_history: SuperresolutionHistory | None = None) -> SceneRender:
        """Render with the deterministic sample protocol, so the same request always gives the same image.
        The super-resolution, when the quality has it, uses the exact edited ws (drag previews included).
        ``sr_history``: for frames rendered in order (a video), the official smoothing inside the
        super-resolution's first block; it needs the previous frames, so a single view never has it."""
        r = request
        if r.removal not in REMOVAL_MODES:
            raise RenderError(f"removal must be one of {REMOVAL_MODES}, got {r.removal!r}")
        frame = self._check_frame(r.frame)
        res, samples = self._settings(r.quality)
        options = {"smoothing": r.smoothing, "conditional": r.conditional}
        if r.approximate_edits and any(float(v) != 0 for v in r.edits.values()):
            planes = self.interpolated_planes(frame, r.edits, **options)
            ws = self.frame_ws(frame, r.edits, **options)
        else:
            planes, ws = self.planes(frame, r.edits, **options)
        c = self.camera(frame, r.camera)
        if not self.has_ood:
            render = self.G.render_planes(planes, c, resolution=res, deterministic=True, **samples)
            opacity = torch.zeros_like(render.weight_image)
        else:
            codes = self.edits.sequence(r.smoothing)[1][frame][None]
            frames = torch.tensor([frame], device=self.device)

            def composite(scale) -> Render:
                return render_composite(
                    self.G, planes, self.data.ood, frames, c, resolution=res, deterministic=True,
                    blend_scale=scale, ood_codes=codes, **samples,
                )  # fmt: skip

            scale: float | torch.Tensor = float(r.ood_weight)
            if r.remove_ood:
                scale = 0.0 if r.removal == "global" else self._removal_scale(composite, r, res)
            render = composite(scale)
            opacity = render.ood_opacity
        if QUALITIES[r.quality].super_resolution:
            image = self.G.super_resolve(render, ws, noise_mode="const", block0_blend=sr_history)[0]
        else:
            size = self.G.img_resolution
            image = F.interpolate(render.image_raw, size=(size, size), mode="bilinear", align_corners=False)[0]
        if not (bool(torch.isfinite(image).all()) and bool(torch.isfinite(render.image_raw).all())):
            raise RenderError(_non_finite_cause(frame, ws, planes, c))
        return SceneRender(
            image=to_uint8(image),
            raw=render.image_raw[0],
            depth=render.depth_image[0, 0].cpu().numpy() if r.with_depth else None,
            ood_opacity=opacity[0, 0].clamp(0, 1).cpu().numpy() if r.with_blend else None,
        )

    def _removal_scale(self, composite, request: RenderRequest, res: int) -> torch.Tensor:
        if request.removal_mask is None:
            ood = composite(1.0).ood_opacity > 0.5
        else:
            m = torch.as_tensor(np.asarray(request.removal_mask, dtype=np.float32), device=self.device)
            if m.ndim == 3:
                m = m[..., 0] if m.shape[-1] in (1, 3) else m[0]
            ood = F.interpolate(m[None, None], size=(res, res), mode="nearest") > 0.5
        kernel = max(3, int(round(5 * res / 128)) | 1)  # the official 5x5 at 128, scaled with the resolution
        inside = dilate(ood, kernel)
        return torch.where(inside, 0.0, float(request.outside_scale)).float()


def _non_finite_cause(frame: int, ws: torch.Tensor, planes: torch.Tensor, camera: torch.Tensor) -> str:
    """What made a render's pixels NaN or infinite, as far as the inputs of the render tell."""
    if not bool(torch.isfinite(camera).all()):
        cause = "its camera is not finite"
    elif not bool(torch.isfinite(ws).all()):
        cause = "its edited latents are not finite (an edit's direction or mapper holds NaN or infinity)"
    elif not bool(torch.isfinite(planes).all()):
        cause = "its tri-planes are not finite (the generator's weights hold NaN or infinity)"
    else:
        cause = "the generator's or the OOD field's weights hold NaN or infinity"
    return f"the render of frame {frame} has NaN or infinite pixels: {cause}; refused rather than returned black"
