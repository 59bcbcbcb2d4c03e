"""Pixel metrics on image batches [N, 3, H, W] in [-1, 1] (the project's convention).

Every metric is computed on images mapped to [0, 1], as in the paper's table (its L2 = MSE on [0, 1]).
SSIM is Wang et al.'s with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, per channel,
averaged over the positions where the window fits (scikit-image's ``structural_similarity`` with
``gaussian_weights=True, use_sample_covariance=False, data_range=1``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def to_unit(x: torch.Tensor) -> torch.Tensor:
    return (x.float() + 1) / 2


def _check(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(
            f"expected two [N, C, H, W] batches of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image [N], on [0, 1] (the paper's 'L2')."""
    _check(a, b)
    return (to_unit(a) - to_unit(b)).square().mean(dim=(1, 2, 3))


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio per image [N] in dB, peak 1 on [0, 1]; identical images give inf."""
    return 10 * torch.log10(1.0 / mse(a, b))


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Structural similarity per image [N] on [0, 1]."""
    _check(a, b)
    x, y = to_unit(a), to_unit(b)
    channels = x.shape[1]
    g = gaussian_window(window, sigma).to(x.device, x.dtype)
    kx = g.reshape(1, 1, 1, -1).expand(channels, 1, 1, window)
    ky = g.reshape(1, 1, -1, 1).expand(channels, 1, window, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, kx, groups=channels), ky, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x.square()
    var_y = blur(y * y) - mu_y.square()
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x.square() + mu_y.square() + c1) * (var_x + var_y + c2))
    return s.mean(dim=(1, 2, 3))


def psnr_from_mse(value: float) -> float:
    return math.inf if value == 0 else 10 * math.log10(1.0 / value)
