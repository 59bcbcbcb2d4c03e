"""Configuration of an EG3D generator: plain dataclasses, one place for every number (EG3D's init kwargs)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RenderingConfig:
    """Volume-rendering options (EG3D's ``rendering_kwargs``; FFHQ values by default)."""

    depth_resolution: int = 48
    depth_resolution_importance: int = 48
    ray_start: float = 2.25
    ray_end: float = 3.3
    box_warp: float = 1.0
    clamp_mode: str = "softplus"
    disparity_space_sampling: bool = False
    white_back: bool = False
    density_noise: float = 0.0
    c_scale: float = 1.0
    c_gen_conditioning_zero: bool = False
    superresolution_noise_mode: str = "none"
    sr_antialias: bool = True
    decoder_lr_mul: float = 1.0
    avg_camera_radius: float = 2.7
    avg_camera_pivot: tuple[float, float, float] = (0.0, 0.0, 0.2)

    @classmethod
    def from_official(cls, rendering_kwargs: dict[str, Any]) -> RenderingConfig:
        """Read EG3D's ``rendering_kwargs``; a missing ``c_scale`` means 0, as in the official code."""
        kw = dict(rendering_kwargs)
        if kw.get("ray_start") == "auto" or kw.get("ray_end") == "auto":
            raise ValueError("ray_start/ray_end 'auto' (ShapeNet-style scenes) is not supported")
        if kw.get("clamp_mode", "softplus") != "softplus":
            raise ValueError(f"only clamp_mode 'softplus' exists in EG3D's ray marcher, got {kw['clamp_mode']!r}")
        sr_module = kw.get("superresolution_module", "")
        return cls(
            depth_resolution=int(kw["depth_resolution"]),
            depth_resolution_importance=int(kw.get("depth_resolution_importance", 0)),
            ray_start=float(kw["ray_start"]),
            ray_end=float(kw["ray_end"]),
            box_warp=float(kw["box_warp"]),
            clamp_mode="softplus",
            disparity_space_sampling=bool(kw.get("disparity_space_sampling", False)),
            white_back=bool(kw.get("white_back", False)),
            density_noise=float(kw.get("density_noise", 0.0)),
            c_scale=float(kw.get("c_scale", 0.0)),
            c_gen_conditioning_zero=bool(kw.get("c_gen_conditioning_zero", False)),
            superresolution_noise_mode=str(kw.get("superresolution_noise_mode", "none")),
            sr_antialias=bool(kw.get("sr_antialias", True)) if sr_module else True,
            decoder_lr_mul=float(kw.get("decoder_lr_mul", 1.0)),
            avg_camera_radius=float(kw.get("avg_camera_radius", 2.7)),
            avg_camera_pivot=tuple(float(v) for v in kw.get("avg_camera_pivot", (0.0, 0.0, 0.2))),
        )


@dataclass(frozen=True)
class GeneratorConfig:
    """Architecture of a tri-plane generator. ``GeneratorConfig()`` is EG3D FFHQ 512-128."""

    z_dim: int = 512
    c_dim: int = 25
    w_dim: int = 512
    img_resolution: int = 512
    img_channels: int = 3
    channel_base: int = 32768
    channel_max: int = 512
    mapping_layers: int = 2
    num_fp16_res: int = 0
    conv_clamp: float | None = None
    sr_num_fp16_res: int = 4
    superresolution_module: str = "SuperresolutionHybrid8XDC"
    neural_rendering_resolution: int = 128
    triplane_resolution: int = 256
    triplane_channels: int = 32
    rendering: RenderingConfig = field(default_factory=RenderingConfig)

    @classmethod
    def ffhq512(cls) -> GeneratorConfig:
        return cls()

    @classmethod
    def tiny(cls) -> GeneratorConfig:
        """The configuration of ``fixtures/eg3d_tiny``: full pipeline, few channels, 32x32 rendering."""
        return cls(
            channel_base=2048,
            channel_max=32,
            neural_rendering_resolution=32,
            rendering=RenderingConfig(depth_resolution=12, depth_resolution_importance=12),
        )

    def official_rendering_kwargs(self) -> dict[str, Any]:
        """EG3D's ``rendering_kwargs`` for this configuration (what ``RenderingConfig.from_official`` reads;
        ``white_back`` and ``density_noise`` only when set, as in EG3D's FFHQ settings); training-only keys
        (regularisers) are not ours to set."""
        r = self.rendering
        kwargs: dict[str, Any] = {
            "image_resolution": self.img_resolution,
            "disparity_space_sampling": r.disparity_space_sampling,
            "clamp_mode": r.clamp_mode,
            "superresolution_module": f"training.superresolution.{self.superresolution_module}",
            "c_gen_conditioning_zero": r.c_gen_conditioning_zero,
            "c_scale": r.c_scale,
            "superresolution_noise_mode": r.superresolution_noise_mode,
            "decoder_lr_mul": r.decoder_lr_mul,
            "sr_antialias": r.sr_antialias,
            "depth_resolution": r.depth_resolution,
            "depth_resolution_importance": r.depth_resolution_importance,
            "ray_start": r.ray_start,
            "ray_end": r.ray_end,
            "box_warp": r.box_warp,
            "avg_camera_radius": r.avg_camera_radius,
            "avg_camera_pivot": list(r.avg_camera_pivot),
        }
        if r.white_back:
            kwargs["white_back"] = True
        if r.density_noise:
            kwargs["density_noise"] = r.density_noise
        return kwargs

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneratorConfig:
        data = dict(data)
        rendering = dict(data.pop("rendering", {}))
        if "avg_camera_pivot" in rendering:
            rendering["avg_camera_pivot"] = tuple(rendering["avg_camera_pivot"])
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown generator config keys: {sorted(unknown)}")
        return cls(**data, rendering=RenderingConfig(**rendering))
