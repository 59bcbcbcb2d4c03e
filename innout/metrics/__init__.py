"""Perceptual loss and evaluation metrics, on weights installed from the package registry."""

from .evaluate import EvalReport, evaluate_frames
from .identity import ArcFaceOnnxEmbedder, IdentityModelError, SFaceEmbedder, make_embedder
from .image import mse, psnr, ssim
from .perceptual import LPIPS, LPIPSWeightsError, get_lpips, lpips

__all__ = [
    "LPIPS",
    "ArcFaceOnnxEmbedder",
    "EvalReport",
    "IdentityModelError",
    "LPIPSWeightsError",
    "SFaceEmbedder",
    "evaluate_frames",
    "get_lpips",
    "lpips",
    "make_embedder",
    "mse",
    "psnr",
    "ssim",
]
