"""Mapping network, tri-plane backbone and super-resolution module of EG3D (docs/method.md, the prior)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import FeatureBlend, FullyConnectedLayer, SynthesisBlock


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class MappingNetwork(nn.Module):
    """z (+ camera label c) -> w, broadcast to ``num_ws`` rows, with truncation towards ``w_avg``."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int, num_layers: int = 2) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers = num_layers
        embed_features = w_dim if c_dim > 0 else 0
        features = [z_dim + embed_features] + [w_dim] * num_layers
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(features[idx], features[idx + 1], activation="lrelu", lr_multiplier=0.01)
            setattr(self, f"fc{idx}", layer)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
    ) -> torch.Tensor:
        parts = []
        if self.z_dim > 0:
            parts.append(normalize_2nd_moment(z.float()))
        if self.c_dim > 0:
            parts.append(normalize_2nd_moment(self.embed(c.float())))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            head = self.w_avg.lerp(ws[:, :cutoff], truncation_psi)
            ws = torch.cat([head, ws[:, cutoff:]], dim=1)
        return ws


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    return min(channel_base // resolution, channel_max)


class SynthesisNetwork(nn.Module):
    """StyleGAN2 'skip' synthesis from 4x4 to ``img_resolution``; EG3D uses it to make the tri-planes."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        *,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        log2 = img_resolution.bit_length() - 1
        if 2**log2 != img_resolution or img_resolution < 4:
            raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        for res in self.block_resolutions:
            in_ch = channels_at(res // 2, channel_base, channel_max) if res > 4 else 0
            out_ch = channels_at(res, channel_base, channel_max)
            block = SynthesisBlock(
                in_ch,
                out_ch,
                w_dim,
                res,
                img_channels,
                is_last=res == img_resolution,
                use_fp16=res >= fp16_resolution,
                conv_clamp=conv_clamp,
            )
            self.num_ws += block.num_conv
            if res == img_resolution:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)

    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", allow_fp16: bool = False) -> torch.Tensor:
        x = img = None
        w_idx = 0
        for block in self.blocks():
            block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            x, img = block(x, img, block_ws, noise_mode=noise_mode, allow_fp16=allow_fp16)
            w_idx += block.num_conv
        return img


class StyleGAN2Backbone(nn.Module):
    """Holds ``synthesis`` and ``mapping`` under the official names (backbone.synthesis.*, backbone.mapping.*)."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        *,
        mapping_layers: int,
        channel_base: int,
        channel_max: int,
        num_fp16_res: int,
        conv_clamp: float | None,
    ) -> None:
        super().__init__()
        self.synthesis = SynthesisNetwork(
            w_dim,
            img_resolution,
            img_channels,
            channel_base=channel_base,
            channel_max=channel_max,
            num_fp16_res=num_fp16_res,
            conv_clamp=conv_clamp,
        )
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.synthesis.num_ws, mapping_layers)


class SuperresolutionHybrid8XDC(nn.Module):
    """128x128 raw render (+32 feature channels) -> 512x512 image, the module of the FFHQ 512 models."""

    input_resolution = 128

    def __init__(self, channels: int, img_resolution: int, sr_num_fp16_res: int, sr_antialias: bool, w_dim: int = 512):
        super().__init__()
        if img_resolution != 512:
            raise ValueError("SuperresolutionHybrid8XDC produces 512x512 images")
        use_fp16 = sr_num_fp16_res > 0
        clamp = 256 if use_fp16 else None
        self.sr_antialias = sr_antialias
        self.block0 = SynthesisBlock(channels, 256, w_dim, 256, 3, is_last=False, use_fp16=use_fp16, conv_clamp=clamp)
        self.block1 = SynthesisBlock(256, 128, w_dim, 512, 3, is_last=True, use_fp16=use_fp16, conv_clamp=clamp)

    def forward(
        self,
        rgb: torch.Tensor,
        features: torch.Tensor,
        ws: torch.Tensor,
        noise_mode: str = "none",
        allow_fp16: bool = False,
        block0_blend: FeatureBlend | None = None,
    ) -> torch.Tensor:
        """``block0_blend``: see ``SynthesisBlock.forward`` (temporal smoothing of a video's frames)."""
        ws_sr = ws[:, -1:, :].expand(-1, 3, -1)
        if features.shape[-1] != self.input_resolution:
            size = (self.input_resolution, self.input_resolution)
            features = F.interpolate(
                features, size=size, mode="bilinear", align_corners=False, antialias=self.sr_antialias
            )
            rgb = F.interpolate(rgb, size=size, mode="bilinear", align_corners=False, antialias=self.sr_antialias)
        x, img = self.block0(features, rgb, ws_sr, noise_mode=noise_mode, allow_fp16=allow_fp16, blend=block0_blend)
        _, img = self.block1(x, img, ws_sr, noise_mode=noise_mode, allow_fp16=allow_fp16)
        return img


class SuperresolutionBilinear(nn.Module):
    """No learned super-resolution: the raw render's RGB upsampled bilinearly to the output size. Not an
    EG3D module; small priors trained here (innout.world) use it, whose renders are smooth."""

    def __init__(self, channels: int, img_resolution: int, sr_num_fp16_res: int, sr_antialias: bool, w_dim: int = 512):
        super().__init__()
        self.img_resolution = img_resolution

    def forward(
        self, rgb, features, ws, noise_mode: str = "none", allow_fp16: bool = False, block0_blend=None
    ) -> torch.Tensor:
        """``block0_blend`` is accepted and unused: there is no block to smooth."""
        size = (self.img_resolution, self.img_resolution)
        return F.interpolate(rgb, size=size, mode="bilinear", align_corners=False)


SUPERRESOLUTION_MODULES = {
    "SuperresolutionHybrid8XDC": SuperresolutionHybrid8XDC,
    "SuperresolutionBilinear": SuperresolutionBilinear,
}
