"""The tri-plane generator: EG3D's ``G_ema`` call surface on the project's own modules (docs/method.md)."""

from __future__ import annotations

import torch
from torch import nn

from ..render import Render, render_rays
from .cameras import camera_rays
from .config import GeneratorConfig
from .layers import NOISE_MODES, FeatureBlend
from .networks import SUPERRESOLUTION_MODULES, StyleGAN2Backbone
from .renderer import TriPlaneDecoder, triplane_field


class TriPlaneGenerator(nn.Module):
    """EG3D generator. ``mapping`` and ``synthesis`` behave like the official ``G_ema``.

    The pieces of ``synthesis`` are public so later stages can cache and reuse them:
    ``synthesize_planes`` (w -> tri-planes), ``render_planes`` (tri-planes + camera -> neural render)
    and ``super_resolve`` (neural render -> 512 image). Nothing is cached inside the module.
    """

    def __init__(self, config: GeneratorConfig | None = None) -> None:
        super().__init__()
        cfg = config or GeneratorConfig()
        if cfg.superresolution_module not in SUPERRESOLUTION_MODULES:
            raise ValueError(
                f"super-resolution module {cfg.superresolution_module!r} is not implemented "
                f"(available: {sorted(SUPERRESOLUTION_MODULES)})"
            )
        self.config = cfg
        self.z_dim, self.c_dim, self.w_dim = cfg.z_dim, cfg.c_dim, cfg.w_dim
        self.img_resolution = cfg.img_resolution
        self.neural_rendering_resolution = cfg.neural_rendering_resolution
        self.backbone = StyleGAN2Backbone(
            cfg.z_dim,
            cfg.c_dim,
            cfg.w_dim,
            cfg.triplane_resolution,
            3 * cfg.triplane_channels,
            mapping_layers=cfg.mapping_layers,
            channel_base=cfg.channel_base,
            channel_max=cfg.channel_max,
            num_fp16_res=cfg.num_fp16_res,
            conv_clamp=cfg.conv_clamp,
        )
        self.superresolution = SUPERRESOLUTION_MODULES[cfg.superresolution_module](
            channels=cfg.triplane_channels,
            img_resolution=cfg.img_resolution,
            sr_num_fp16_res=cfg.sr_num_fp16_res,
            sr_antialias=cfg.rendering.sr_antialias,
            w_dim=cfg.w_dim,
        )
        self.decoder = TriPlaneDecoder(cfg.triplane_channels, lr_multiplier=cfg.rendering.decoder_lr_mul)
        self.num_ws = self.backbone.mapping.num_ws

    @property
    def rendering(self):
        return self.config.rendering

    def mapping(
        self,
        z: torch.Tensor,
        c: torch.Tensor,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
    ) -> torch.Tensor:
        """z [N, 512], conditioning camera c [N, 25] -> ws [N, 14, 512]."""
        if self.rendering.c_gen_conditioning_zero:
            c = torch.zeros_like(c)
        return self.backbone.mapping(z, c * self.rendering.c_scale, truncation_psi, truncation_cutoff)

    def synthesize_planes(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        """ws [N, 14, 512] -> tri-planes [N, 3, 32, 256, 256] (channels 0-31 plane 0, 32-63 plane 1, ...)."""
        _check_noise_mode(noise_mode)
        planes = self.backbone.synthesis(ws, noise_mode=noise_mode)
        n, _, h, w = planes.shape
        return planes.view(n, 3, self.config.triplane_channels, h, w)

    def render_planes(
        self,
        planes: torch.Tensor,
        c: torch.Tensor,
        *,
        resolution: int | None = None,
        depth_resolution: int | None = None,
        depth_resolution_importance: int | None = None,
        deterministic: bool = False,
        sampler: str = "auto",
    ) -> Render:
        """Volume-render tri-planes from cameras c [N, 25] at ``resolution`` (default: the model's, 128):
        the marcher with the face field alone."""
        res = resolution or self.neural_rendering_resolution
        origins, directions = camera_rays(c.to(planes.device), res)
        return render_rays(
            [self.face_field(planes, sampler)],
            origins,
            directions,
            self.rendering,
            depth_resolution=depth_resolution,
            depth_resolution_importance=depth_resolution_importance,
            deterministic=deterministic,
        )

    def face_field(self, planes: torch.Tensor, sampler: str = "auto"):
        """The face as a field over points [N, P, 3]: these tri-planes through the decoder."""
        return triplane_field(planes, self.decoder, self.rendering.box_warp, sampler)

    def super_resolve(
        self,
        render: Render,
        ws: torch.Tensor,
        *,
        noise_mode: str | None = None,
        fp16: bool | None = None,
        block0_blend: FeatureBlend | None = None,
    ) -> torch.Tensor:
        """Neural render -> [N, 3, 512, 512]. ``noise_mode`` defaults to the model's ('none' for EG3D;
        In-N-Out uses 'const'). ``fp16`` (default: only on CUDA) runs the SR blocks in half precision
        the way the official code does on GPUs; the official code never does it on CPU. ``block0_blend``:
        temporal smoothing of the first SR block (``innout.edit.smoothing.SuperresolutionHistory``)."""
        mode = noise_mode or self.rendering.superresolution_noise_mode
        _check_noise_mode(mode)
        allow_fp16 = ws.device.type == "cuda" if fp16 is None else fp16
        return self.superresolution(
            render.image_raw, render.feature_image, ws, noise_mode=mode, allow_fp16=allow_fp16,
            block0_blend=block0_blend,
        )  # fmt: skip

    def synthesis(
        self,
        ws: torch.Tensor,
        c: torch.Tensor,
        noise_mode: str = "const",
        neural_rendering_resolution: int | None = None,
        deterministic: bool = False,
        sr_noise_mode: str | None = None,
        sr_fp16: bool | None = None,
    ) -> dict[str, torch.Tensor]:
        """ws [N, 14, 512], rendering cameras c [N, 25] -> dict of ``image`` [N, 3, 512, 512],
        ``image_raw`` [N, 3, R, R], ``image_depth`` [N, 1, R, R], plus ``image_feature`` [N, 32, R, R],
        ``image_weight`` (opacity) [N, 1, R, R] and ``planes``.

        ``noise_mode`` is the backbone's ('const', 'random' as in EG3D's gen_samples, or 'none').
        ``deterministic`` replaces the random depth jitter and importance draws by the fixed protocol
        of ``fixtures/eg3d_tiny``.
        """
        planes = self.synthesize_planes(ws, noise_mode)
        render = self.render_planes(planes, c, resolution=neural_rendering_resolution, deterministic=deterministic)
        image = self.super_resolve(render, ws, noise_mode=sr_noise_mode, fp16=sr_fp16)
        return {
            "image": image,
            "image_raw": render.image_raw,
            "image_depth": render.depth_image,
            "image_feature": render.feature_image,
            "image_weight": render.weight_image,
            "planes": planes,
        }

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        **synthesis_kwargs,
    ) -> dict[str, torch.Tensor]:
        ws = self.mapping(z, c, truncation_psi, truncation_cutoff)
        return self.synthesis(ws, c, **synthesis_kwargs)


def _check_noise_mode(mode: str) -> None:
    if mode not in NOISE_MODES:
        raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {mode!r}")
