"""A fitted scene: render any frame, from any camera, with edits, with or without the OOD object.

This is what the CLI (``python -m innout render``) and the app call. Edits move the in-distribution
latents only (linear directions, StyleCLIP mappers); the OOD field is never touched, so an edit leaves
the pixels the OOD object covers as they are. The face tri-planes of each (frame, edits, smoothing)
are cached: orbiting the camera or toggling removal re-renders without running the StyleGAN backbone.

Dragging a slider (``approximate_edits=True``) must not wait for the backbone either: each edit's
tri-planes are computed once at a few strengths ("knots" across the slider's range) and the planes in
between are interpolated linearly, the edits adding up. Exact at the knots, approximate between them;
a release renders exactly.

Removal: ``removal='global'`` renders with b = 0 everywhere, which is exactly EG3D's render of the
same latents. ``removal='mask'`` is the official mask-guided variant (facts E7): b = 0 on rays inside
a dilated OOD mask, b x ``outside_scale`` elsewhere (the official code uses 1.2, which can push b
above 1; the default here is 1, which keeps what lies outside the mask exactly as fitted). The mask is
the user's (crop-sized, 1 = OOD) or, by default, where this view's own OOD opacity exceeds one half.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .edit.directions import Direction, apply_directions, latent_space_digest
from .edit.mapper import LevelsMapper
from .edit.smoothing import smooth
from .eg3d.cameras import FRONTAL_PITCH, FRONTAL_YAW, orbit_angles, orbit_label
from .eg3d.generator import NeuralRender
from .fit.composite import render_composite_image
from .fit.scene_file import SceneData, load_scene
from .images import to_uint8

Camera = None | tuple[float, float] | torch.Tensor


class RenderError(ValueError):
    """A render request the scene cannot serve (frame out of range, unknown edit, bad option)."""

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


@dataclass
class SceneRender:
    image: np.ndarray  # [H, W, 3] uint8 at the generator's output size (512)
    raw: torch.Tensor  # [3, R, R] the neural render's RGB in [-1, 1]
    depth: np.ndarray | None = None  # [R, R] expected ray depth
    ood_opacity: np.ndarray | None = None  # [R, R] share of each pixel's colour from the OOD field


def dilate(mask: torch.Tensor, kernel: int) -> torch.Tensor:
    return F.max_pool2d(mask.float(), kernel, stride=1, padding=kernel // 2) > 0.5


class Scene:
    def __init__(self, data: SceneData, *, cache_size: int = 8, knots: int = 5) -> None:
        self.data = data
        self.G = data.generator.eval().requires_grad_(False)
        self.device = data.ws.device
        self.latent_space = latent_space_digest(self.G)
        self.directions: dict[str, Direction] = {}
        self.mappers: dict[str, LevelsMapper] = {}
        self.cache_size = cache_size
        self._planes: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self.knots = knots  # strengths per edit at which drag previews are exact (odd: 0 is one of them)
        self._knot_planes: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._smoothed: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}
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
        return sorted([*self.directions, *self.mappers])

    def add_direction(self, direction: Direction) -> None:
        """Make a direction available to ``edits``; it must belong to this scene's latent space."""
        direction.check_space(self.latent_space)
        self.directions[direction.name] = direction

    def add_mapper(self, mapper: LevelsMapper) -> None:
        self.mappers[mapper.name] = mapper.to(self.device)

    def load_directions(self, paths: list[str | os.PathLike]) -> list[str]:
        """Add the directions found in files/folders that belong to this scene's latent space; returns
        a note for each one left out (learned for another generator)."""
        from .edit.directions import DirectionMismatchError, load_directions

        skipped = []
        for direction in load_directions([p for p in paths if Path(p).exists()]).values():
            try:
                self.add_direction(direction)
            except DirectionMismatchError as exc:
                skipped.append(str(exc))
        return skipped

    def frame_angles(self, frame: int) -> tuple[float, float]:
        """(yaw, pitch) of the frame's own camera as offsets from frontal, radians."""
        yaw, pitch = orbit_angles(self.data.cameras[self._check_frame(frame)].cpu())
        return yaw - FRONTAL_YAW, pitch - FRONTAL_PITCH

    def camera(self, frame: int, camera: Camera = None) -> torch.Tensor:
        """The camera label [1, 25]: the frame's own, a (yaw, pitch) offset from frontal on EG3D's orbit
        (radius 2.7, the frame's focal length), or an explicit label."""
        own = self.data.cameras[self._check_frame(frame)][None]
        if camera is None:
            return own
        if isinstance(camera, torch.Tensor):
            return camera.reshape(1, 25).to(own)
        yaw, pitch = camera
        focal = float(own[0, 16])
        return orbit_label(FRONTAL_YAW + yaw, FRONTAL_PITCH + pitch, focal=focal).to(own)

    def _check_frame(self, frame: int) -> int:
        if not 0 <= frame < self.n_frames:
            raise RenderError(f"frame {frame} is out of range: the scene has frames 0-{self.n_frames - 1}")
        return int(frame)

    # --- latents, edits and the tri-plane cache ----------------------------------------------------
    def _sequence(self, smoothing: str | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        key = smoothing or "none"
        if key not in self._smoothed:
            codes = self.data.ood.codes.detach() if self.has_ood else None
            self._smoothed[key] = (smooth(self.data.ws, key), None if codes is None else smooth(codes, key))
        return self._smoothed[key]

    def check_edits(self, edits: dict[str, float] | None) -> None:
        """Raise ``RenderError`` naming the edits this scene has no direction or mapper for."""
        unknown = [k for k in edits or {} if k not in self.directions and k not in self.mappers]
        if unknown:
            known = ", ".join(self.edit_names) or "none loaded (learn one with `python -m innout directions learn`)"
            raise RenderError(f"unknown edit(s) {', '.join(unknown)}; available: {known}")

    def frame_ws(
        self,
        frame: int,
        edits: dict[str, float] | None = None,
        *,
        smoothing: str | None = None,
        conditional: list[str] | None = None,
    ) -> torch.Tensor:
        """ws [1, 14, 512] of a frame after smoothing and edits (directions first, then mappers)."""
        ws = self._sequence(smoothing)[0][self._check_frame(frame)][None]
        self.check_edits(edits)
        edits = {k: float(v) for k, v in (edits or {}).items() if float(v) != 0}
        linear = {k: v for k, v in edits.items() if k in self.directions}
        if linear:
            ws = apply_directions(ws, linear, self.directions, conditional=conditional)
        for name, strength in edits.items():
            if name in self.mappers:
                ws = self.mappers[name].edit(ws, strength)
        return ws

    @staticmethod
    def _key(frame: int, edits, smoothing, conditional) -> tuple:
        return (
            int(frame),
            smoothing or "none",
            tuple(sorted((k, round(float(v), 6)) for k, v in (edits or {}).items() if float(v) != 0)),
            tuple(conditional or ()),
        )

    def _synthesised(self, cache: OrderedDict, limit: int, key: tuple, ws: torch.Tensor) -> torch.Tensor:
        """The tri-planes of ``ws`` from the LRU ``cache`` (at most ``limit`` entries), synthesised on a miss."""
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        with torch.no_grad():
            planes = self.G.synthesize_planes(ws, noise_mode="const")
        self.backbone_runs += 1
        cache[key] = planes
        while len(cache) > limit:
            cache.popitem(last=False)
        return planes

    def planes(self, frame: int, edits=None, *, smoothing=None, conditional=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(tri-planes [1, 3, 32, H, W], ws) for a frame, from the cache when possible."""
        ws = self.frame_ws(frame, edits, smoothing=smoothing, conditional=conditional)
        key = self._key(frame, edits, smoothing, conditional)
        return self._synthesised(self._planes, self.cache_size, key, ws), ws

    def clear_cache(self) -> None:
        self._planes.clear()
        self._knot_planes.clear()

    def edit_range(self, name: str) -> tuple[float, float]:
        """The slider range of an edit (a direction's own; mappers: 0 to 2, the official strengths)."""
        self.check_edits({name: 1.0})
        if name in self.directions:
            lo, hi = self.directions[name].value_range
            return float(lo), float(hi)
        return 0.0, 2.0

    def edit_knots(self, name: str) -> list[float]:
        """The strengths at which the drag preview of ``name`` is exact; 0 is always one of them."""
        lo, hi = self.edit_range(name)
        values = {round(float(v), 6) for v in np.linspace(lo, hi, self.knots)} | {0.0}
        return sorted(values)

    def _knot(self, frame: int, name: str, strength: float, smoothing, conditional) -> torch.Tensor:
        if strength == 0:
            return self.planes(frame, None, smoothing=smoothing)[0]
        edit = {name: strength}
        ws = self.frame_ws(frame, edit, smoothing=smoothing, conditional=conditional)
        limit = max(self.cache_size, 4 * self.knots)  # a cache of its own: knots must not evict the exact planes
        return self._synthesised(self._knot_planes, limit, self._key(frame, edit, smoothing, conditional), ws)

    def warm_edit_knots(self, frame: int, names: list[str] | None = None, *, smoothing=None, conditional=None) -> int:
        """Compute the knot planes of ``names`` (default: every edit) for a frame ahead of a drag; returns
        how many backbone runs it took (0 when they were cached)."""
        before = self.backbone_runs
        for name in names if names is not None else self.edit_names:
            for k in self.edit_knots(name):
                self._knot(frame, name, k, smoothing, conditional)
        return self.backbone_runs - before

    def interpolated_planes(self, frame: int, edits=None, *, smoothing=None, conditional=None) -> torch.Tensor:
        """Tri-planes for ``edits`` from the knot planes: per edit, linear between the two knots around
        its strength (clamped to the range); several edits add their changes to the unedited planes."""
        self.check_edits(edits)
        base = self.planes(frame, None, smoothing=smoothing)[0]
        planes = base
        for name, value in sorted((edits or {}).items()):
            if float(value) == 0:
                continue
            knots = self.edit_knots(name)
            s = min(max(float(value), knots[0]), knots[-1])
            i = max(1, min(int(np.searchsorted(knots, s)), len(knots) - 1))
            a, b = knots[i - 1], knots[i]
            t = (s - a) / (b - a)
            lower = self._knot(frame, name, a, smoothing, conditional)
            upper = self._knot(frame, name, b, smoothing, conditional)
            planes = planes + torch.lerp(lower, upper, t) - base
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
    def render(
        self,
        frame: int,
        camera: Camera = None,
        edits: dict[str, float] | None = None,
        *,
        remove_ood: bool = False,
        quality: str = "preview",
        removal: str = "global",
        removal_mask: np.ndarray | None = None,
        outside_scale: float = 1.0,
        smoothing: str | None = None,
        conditional: list[str] | None = None,
        with_depth: bool = False,
        with_blend: bool = False,
        approximate_edits: bool = False,
    ) -> SceneRender:
        """Render ``frame`` (0-based, of the fitted frames) with the deterministic sample protocol, so the
        same call always gives the same image. See the module docstring for removal and for
        ``approximate_edits`` (the slider-drag preview: interpolated edit planes, no backbone run once the
        knots are cached; the super-resolution, when asked for, uses the exact edited ws)."""
        if removal not in REMOVAL_MODES:
            raise RenderError(f"removal must be one of {REMOVAL_MODES}, got {removal!r}")
        res, samples = self._settings(quality)
        if approximate_edits and any(float(v) != 0 for v in (edits or {}).values()):
            planes = self.interpolated_planes(frame, edits, smoothing=smoothing, conditional=conditional)
            ws = self.frame_ws(frame, edits, smoothing=smoothing, conditional=conditional)
        else:
            planes, ws = self.planes(frame, edits, smoothing=smoothing, conditional=conditional)
        c = self.camera(frame, camera)
        if not self.has_ood:
            out = self.G.render_planes(planes, c, resolution=res, deterministic=True, **samples)
            render, opacity = out, torch.zeros_like(out.weight_image)
        else:
            codes = self._sequence(smoothing)[1][frame][None]
            frames = torch.tensor([frame], device=self.device)

            def composite(scale):
                return render_composite_image(
                    self.G, planes, self.data.ood, frames, c, resolution=res, deterministic=True,
                    blend_scale=scale, ood_codes=codes, **samples,
                )  # fmt: skip

            scale: float | torch.Tensor = 1.0
            if remove_ood and removal == "global":
                scale = 0.0
            elif remove_ood:
                scale = self._removal_scale(composite, removal_mask, res, outside_scale)
            out = composite(scale)
            render = NeuralRender(out.feature_image, out.depth_image, out.weight_image)
            opacity = out.ood_opacity
        if QUALITIES[quality].super_resolution:
            image = self.G.super_resolve(render, ws, noise_mode="const")[0]
        else:
            size = self.G.img_resolution
            image = F.interpolate(render.image_raw, size=(size, size), mode="bilinear", align_corners=False)[0]
        return SceneRender(
            image=to_uint8(image),
            raw=render.image_raw[0],
            depth=render.depth_image[0, 0].cpu().numpy() if with_depth else None,
            ood_opacity=opacity[0, 0].clamp(0, 1).cpu().numpy() if with_blend else None,
        )

    def _removal_scale(self, composite, mask: np.ndarray | None, res: int, outside_scale: float) -> torch.Tensor:
        if mask is None:
            ood = composite(1.0).ood_opacity > 0.5
        else:
            m = torch.as_tensor(np.asarray(mask, dtype=np.float32), device=self.device)
            if m.ndim == 3:
                m = m[..., 0] if m.shape[-1] in (1, 3) else m[0]
            ood = F.interpolate(m[None, None], size=(res, res), mode="nearest") > 0.5
        kernel = max(3, int(round(5 * res / 128)) | 1)  # the official 5x5 at 128, scaled with the resolution
        inside = dilate(ood, kernel)
        return torch.where(inside, 0.0, float(outside_scale)).float()
