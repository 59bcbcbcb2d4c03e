"""Decide each propagated mask pixel by the object's colours on frame 0, with the warp as the prior.

A warped first-frame mask is only as good as the motion it followed: the mean face puts a protruding clown nose
on the cheek after a head turn (parallax), optical flow drifts, and nothing geometric follows a card that moves on
its own. The user's frame-0 mask, though, also says what the object looks like. So every pixel of frame t gets a
Bayesian decision (a GrabCut-like colour model, one shot, no iterations):

    odds(object | colour, warp) = prior / (1 - prior) * p(colour | object) / p(colour | not object)

- the colour densities are frame 0's two colour histograms (``BINS`` per RGB channel, smoothed over neighbouring
  bins so that shading does not fall between them), mixed with a uniform share ``UNIFORM`` so that a colour frame 0
  never showed says nothing either way;
- the prior is the warped mask blurred by ``BLUR`` of the crop's width (the warp is least sure at its edges),
  held within [``FLOOR``, 1 - ``FLOOR``]: far from the warp a pixel needs a colour 1/``FLOOR`` - 1 times likelier on
  the object than off it, inside the warp its colour must be as unlikely on the object to leave it.
- specks: connected parts smaller than ``SPECK`` of frame 0's object (and than 4 pixels) are dropped.

It helps where the object's colours differ from the rest of frame 0 (a red nose, face paint, a yellow card, a
surgical mask) and can do little where they do not (skin-coloured prosthetics, mirrored lenses reflecting the
room): there the prior decides, which is the warp's mask. Measured with ``python -m innout.bench masks``
(docs/method.md).
"""

from __future__ import annotations

import cv2
import numpy as np

from .masks import MaskError

BINS = 16  # histogram bins per RGB channel
UNIFORM = 0.1  # share of a uniform density in each colour model
FLOOR = 0.05  # the prior's least and (1 - FLOOR) its largest value
BLUR = 0.04  # the prior's Gaussian blur, as a share of the crop's width
SPECK = 0.02  # connected parts below this share of frame 0's object area are dropped


def colour_index(pixels: np.ndarray, bins: int = BINS) -> np.ndarray:
    """uint8 RGB [..., 3] -> the flat histogram bin of every pixel [...]."""
    q = pixels.astype(np.int64) * bins // 256
    return (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]


def colour_density(pixels: np.ndarray, bins: int = BINS, uniform: float = UNIFORM) -> np.ndarray:
    """Density over the ``bins ** 3`` colour bins of uint8 RGB ``pixels`` [N, 3]: the histogram averaged over
    each bin's 3x3x3 neighbourhood (zeros beyond the cube), normalised, mixed with a uniform share ``uniform``."""
    count = bins**3
    hist = np.bincount(colour_index(pixels, bins), minlength=count).astype(np.float64).reshape(bins, bins, bins)
    smooth = np.zeros_like(hist)
    padded = np.pad(hist, 1)
    for dr in range(3):
        for dg in range(3):
            for db in range(3):
                smooth += padded[dr : dr + bins, dg : dg + bins, db : db + bins]
    total = smooth.sum()
    density = smooth.ravel() / total if total > 0 else np.full(count, 1.0 / count)
    return (1 - uniform) * density + uniform / count


def drop_specks(mask: np.ndarray, least: int) -> np.ndarray:
    """``mask`` without its 8-connected parts of fewer than ``least`` pixels."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, dtype=bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= least
    return keep[labels]


def refine_by_colour(
    crops: np.ndarray, first: np.ndarray, masks: np.ndarray, *, floor: float = FLOOR, blur: float = BLUR,
) -> np.ndarray:  # fmt: skip
    """bool masks [F, H, W]: frame 0's ``first`` [H, W] as given, every other frame's pixel decided by its colour
    in uint8 ``crops`` [F, H, W, 3] against frame 0's object and background colours, with the propagated
    ``masks`` [F, H, W] as the prior (module docstring)."""
    if crops.ndim != 4 or crops.shape[3] != 3 or crops.dtype != np.uint8:
        raise MaskError(f"colour refinement needs uint8 RGB crops [F, H, W, 3], got {crops.dtype} {crops.shape}")
    if first.shape != crops.shape[1:3] or masks.shape != crops.shape[:3]:
        raise MaskError(f"masks {first.shape} / {masks.shape} do not match the crops {crops.shape[:3]}")
    if not 0 < floor < 0.5:
        raise MaskError(f"the prior's floor must be in (0, 0.5), got {floor}")
    first = first.astype(bool)
    if not first.any() or first.all():
        return masks.astype(bool)  # nothing to learn the object's (or the rest's) colours from
    log_ratio = np.log(colour_density(crops[0][first])) - np.log(colour_density(crops[0][~first]))
    least = max(4, int(np.ceil(SPECK * first.sum())))
    sigma = blur * crops.shape[2]
    out = np.empty(masks.shape, dtype=bool)
    out[0] = first
    for t in range(1, len(crops)):
        prior = cv2.GaussianBlur(masks[t].astype(np.float32), (0, 0), sigma) if sigma > 0 else masks[t] * 1.0
        prior = np.clip(prior, floor, 1 - floor)
        log_odds = np.log(prior) - np.log1p(-prior) + log_ratio[colour_index(crops[t])]
        out[t] = drop_specks(log_odds > 0, least)
    return out
