"""Temporal smoothing of per-frame codes (latents ws, OOD codes phi) for rendering a video.

``causal`` is the official In-N-Out ``smooth_out`` filter (docs/method.md, editing): from the third frame on, each
frame becomes 0.125 x (t-2) + 0.375 x (t-1) + 0.5 x t; the first two frames are left as they are. It only looks
back, so it lags motion by about half a frame. The official code also smooths inside the super-resolution's first
block (its conv1 output and up-sampled skip image) with the same filter over the frames rendered so far:
``SuperresolutionHistory``, which needs the frames rendered in order (a video export). ``zero-lag`` is a centred
filter with the same weights mirrored around the current frame, [0.25, 0.5, 0.25] (edges replicated): as smooth
without the lag, for offline export where every frame is known in advance.
"""

from __future__ import annotations

import torch

CAUSAL_WEIGHTS = (0.125, 0.375, 0.5)  # oldest -> current
ZERO_LAG_WEIGHTS = (0.25, 0.5, 0.25)  # previous, current, next
SMOOTHING_MODES = ("none", "causal", "zero-lag")


def causal_smooth(x: torch.Tensor) -> torch.Tensor:
    """The official causal filter along dim 0 (frames)."""
    if len(x) < 3:
        return x.clone()
    out = x.clone()
    a, b, c = CAUSAL_WEIGHTS
    out[2:] = a * x[:-2] + b * x[1:-1] + c * x[2:]
    return out


def zero_lag_smooth(x: torch.Tensor) -> torch.Tensor:
    """Centred [0.25, 0.5, 0.25] filter along dim 0, edges replicated."""
    if len(x) < 2:
        return x.clone()
    padded = torch.cat([x[:1], x, x[-1:]])
    a, b, c = ZERO_LAG_WEIGHTS
    return a * padded[:-2] + b * padded[1:-1] + c * padded[2:]


def smooth(x: torch.Tensor, mode: str | None) -> torch.Tensor:
    """Smooth per-frame codes [F, ...] with ``mode`` in ``SMOOTHING_MODES`` (None = 'none')."""
    if mode in (None, "none"):
        return x
    if mode == "causal":
        return causal_smooth(x)
    if mode == "zero-lag":
        return zero_lag_smooth(x)
    raise ValueError(f"smoothing must be one of {SMOOTHING_MODES}, got {mode!r}")


class SuperresolutionHistory:
    """The official ``smooth_out`` inside the super-resolution's first block, for frames rendered in order.

    Passed as ``block0_blend`` to the generator's ``super_resolve``, once per frame: from the third frame on, the
    block's conv1 output and up-sampled skip image become ``CAUSAL_WEIGHTS`` over the last three frames' own
    (unsmoothed) values, as ``causal_smooth`` does with the latents. The first two frames pass unchanged.
    """

    def __init__(self) -> None:
        self._past: list[tuple[torch.Tensor, torch.Tensor | None]] = []

    def __len__(self) -> int:
        return len(self._past)

    def __call__(
        self, features: torch.Tensor, skip: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self._past and self._past[-1][0].shape != features.shape:
            raise ValueError(
                f"the super-resolution's features changed shape between frames ({tuple(self._past[-1][0].shape)} -> "
                f"{tuple(features.shape)}): smooth one video at one resolution"
            )
        current = (features.detach().clone(), None if skip is None else skip.detach().clone())
        self._past = [*self._past[-2:], current]
        if len(self._past) < 3:
            return features, skip
        (x0, s0), (x1, s1), (x2, s2) = self._past
        a, b, c = CAUSAL_WEIGHTS
        x = (a * x0.float() + b * x1.float() + c * x2.float()).to(features.dtype)
        s = None if skip is None else a * s0 + b * s1 + c * s2
        return x, s
