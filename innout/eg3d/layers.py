"""StyleGAN2 layers as EG3D uses them (docs/method.md, the prior), written for inference speed on CPU and GPU.

Names of parameters and buffers match the official modules exactly, so official state dicts load
with ``strict=True``. The maths follows NVlabs' reference ops; where two evaluation orders are
algebraically identical (fused vs. non-fused modulated convolution) we pick the faster one.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

LRELU_GAIN = math.sqrt(2.0)
LRELU_SLOPE = 0.2
NOISE_MODES = ("const", "random", "none")


def fir_filter_1331() -> torch.Tensor:
    """The 4x4 resampling filter outer([1,3,3,1])^2 / 64 that every up-sampling uses."""
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    return torch.outer(f, f) / f.sum() ** 2


def _needs_grad(*tensors: torch.Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def bias_act(
    x: torch.Tensor,
    bias: torch.Tensor,
    *,
    lrelu: bool,
    gain: float = 1.0,
    clamp: float | None = None,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """(x + noise + bias) -> optional leaky ReLU(0.2) -> * gain -> optional clamp.

    Half inputs are computed in fp32 and cast back, as the official CUDA kernel does. Without
    autograd the work happens in place on ``x`` (a fresh convolution output), which on channels-last
    tensors costs a few milliseconds instead of a copy per step.
    """
    dtype = x.dtype
    b = bias.reshape(1, -1, 1, 1)
    if dtype == torch.float16:
        x = x.float()
    if not _needs_grad(x, bias, noise):
        if noise is not None:
            x.add_(noise)
        x.add_(b)
        if lrelu:
            F.leaky_relu_(x, LRELU_SLOPE)
        if gain != 1:
            x.mul_(gain)
        if clamp is not None:
            x.clamp_(-clamp, clamp)
        return x.to(dtype)
    if noise is not None:
        x = x + noise
    x = x + b
    if lrelu:
        x = F.leaky_relu(x, LRELU_SLOPE)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x.to(dtype)


def upsample2d(img: torch.Tensor, fir: torch.Tensor) -> torch.Tensor:
    """2x up-sampling of the skip image: zero insertion + the 4x4 FIR with gain 4 (as EG3D)."""
    channels = img.shape[1]
    kernel = (fir * 4).to(img.dtype).expand(channels, 1, 4, 4)
    return F.conv_transpose2d(img, kernel, stride=2, padding=1, groups=channels)


def conv3x3_up2(x: torch.Tensor, weight: torch.Tensor, fir: torch.Tensor, groups: int) -> torch.Tensor:
    """3x3 convolution with 2x up-sampling, exactly as the official ``conv2d_resample`` (as EG3D).

    Transposed convolution (stride 2, weight not flipped) gives 2H+1; the 4x4 FIR with 1 pixel of
    zero padding brings it to 2H.
    """
    out_ch, in_per_group, kh, kw = weight.shape
    if groups == 1:
        w_t = weight.transpose(0, 1)
    else:
        w_t = weight.reshape(groups, out_ch // groups, in_per_group, kh, kw).transpose(1, 2)
        w_t = w_t.reshape(groups * in_per_group, out_ch // groups, kh, kw)
    x = F.conv_transpose2d(x, w_t, stride=2, groups=groups)
    channels = x.shape[1]
    kernel = (fir * 4).to(x.dtype).expand(channels, 1, 4, 4)
    return F.conv2d(x, kernel, padding=1, groups=channels)


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    *,
    demodulate: bool,
    up: int = 1,
    fir: torch.Tensor | None = None,
) -> torch.Tensor:
    """StyleGAN2 modulated convolution (as EG3D).

    Batch 1 folds the styles into the weights (the official 'fused' path, cheapest there); larger
    batches scale the activations around one shared convolution (the 'non-fused' path), which keeps a
    single dense convolution instead of a grouped one. Both are the same function. When a gradient must
    reach the styles (the fit's latents), batch 1 takes the non-fused path too: the fused one differentiates a
    per-sample weight, a second convolution-sized product in every backward pass, where the non-fused one
    only needs the gradient of the activations (the weights are the generator's, frozen): the inversion's
    step 1.5x and the joint step 1.3x faster on a 2-core CPU (docs/speed.md).
    """
    batch = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    styles = styles.float()
    weight = weight.float()
    if x.dtype == torch.float16 and demodulate:
        # Pre-normalisation against fp16 overflow (official behaviour; invariant under demodulation).
        weight = weight * (1 / math.sqrt(in_ch * kh * kw) / weight.abs().amax(dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.abs().amax(dim=1, keepdim=True)

    padding = kh // 2
    if batch == 1 and not (torch.is_grad_enabled() and styles.requires_grad):
        w = weight.unsqueeze(0) * styles.reshape(batch, 1, -1, 1, 1)
        if demodulate:
            dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
            w = w * dcoefs.reshape(batch, -1, 1, 1, 1)
        w = w.reshape(-1, in_ch, kh, kw).to(x.dtype)
        if up == 2:
            x = conv3x3_up2(x, w, fir, groups=1)
        else:
            x = F.conv2d(x, w, padding=padding)
        return x

    x = x * styles.to(x.dtype).reshape(batch, -1, 1, 1)
    w = weight.to(x.dtype)
    x = conv3x3_up2(x, w, fir, groups=1) if up == 2 else F.conv2d(x, w, padding=padding)
    if demodulate:
        dcoefs = (weight.unsqueeze(0) * styles.reshape(batch, 1, -1, 1, 1)).square().sum(dim=[2, 3, 4])
        x = x * (dcoefs + 1e-8).rsqrt().to(x.dtype).reshape(batch, -1, 1, 1)
    return x


class FullyConnectedLayer(nn.Module):
    """Equalised-learning-rate linear layer (as EG3D)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        if activation not in ("linear", "lrelu"):
            raise ValueError(f"unsupported activation {activation!r}")
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init)))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def effective_weight_and_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.weight * self.weight_gain, self.bias * self.bias_gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self.effective_weight_and_bias()
        if self.activation == "linear":
            return torch.addmm(b.unsqueeze(0), x, w.t()) if x.ndim == 2 else F.linear(x, w, b)
        return F.leaky_relu(F.linear(x, w, b), LRELU_SLOPE) * LRELU_GAIN

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, activation={self.activation}"


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv + noise + bias + lrelu (as EG3D)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        *,
        up: int = 1,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.resolution, self.up, self.conv_clamp = resolution, up, conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.register_buffer("resample_filter", fir_filter_1331())
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        styles = self.affine(w)
        noise = None
        if noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device) * self.noise_strength
        elif noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        elif noise_mode != "none":
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        x = modulated_conv2d(x, self.weight, styles, demodulate=True, up=self.up, fir=self.resample_filter)
        clamp = self.conv_clamp * LRELU_GAIN if self.conv_clamp is not None else None
        return bias_act(x, self.bias, lrelu=True, gain=LRELU_GAIN, clamp=clamp, noise=noise)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv without demodulation (as EG3D)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, *, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False)
        return bias_act(x, self.bias, lrelu=False, clamp=self.conv_clamp)


FeatureBlend = Callable[[torch.Tensor, "torch.Tensor | None"], "tuple[torch.Tensor, torch.Tensor | None]"]
"""(conv1 output, up-sampled skip image) -> the same, e.g. blended with earlier frames'."""


class SynthesisBlock(nn.Module):
    """One resolution of a 'skip' StyleGAN2 synthesis network (as EG3D).

    ``use_fp16`` marks blocks that the official code runs in half precision on CUDA; whether that
    happens is decided per call (``allow_fp16``; the generator enables it on CUDA only by default).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        *,
        is_last: bool,
        use_fp16: bool = False,
        conv_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.resolution, self.is_last, self.use_fp16 = resolution, is_last, use_fp16
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        self.register_buffer("resample_filter", fir_filter_1331())
        if in_channels != 0:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2, conv_clamp=conv_clamp)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, conv_clamp=conv_clamp)
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.num_conv = 1 if in_channels == 0 else 2
        self.num_torgb = 1

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        ws: torch.Tensor,
        noise_mode: str = "const",
        allow_fp16: bool = False,
        blend: FeatureBlend | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """ws: [N, num_conv + num_torgb, w_dim]. Returns (features, fp32 skip image). ``blend`` may replace
        the conv1 output and the up-sampled skip image before torgb (In-N-Out's temporal smoothing of the
        super-resolution's first block)."""
        dtype = torch.float16 if self.use_fp16 and allow_fp16 else torch.float32
        w_iter = iter(ws.unbind(dim=1))
        if self.in_channels == 0:
            x = self.const.to(dtype).unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        else:
            x = self.conv0(x.to(dtype, memory_format=torch.channels_last), next(w_iter), noise_mode)
        x = self.conv1(x.contiguous(memory_format=torch.channels_last), next(w_iter), noise_mode)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if blend is not None:
            x, img = blend(x, img)
        y = self.torgb(x, next(w_iter)).float()
        img = y if img is None else img.add_(y) if not _needs_grad(img, y) else img + y
        return x, img
