"""Temporal filtering of per-frame quantities (landmarks, rotations): gap filling and zero-lag smoothing.

Preprocessing sees the whole clip, so the filter can be centred (non-causal): a Gaussian kernel run over
past and future frames smooths jitter without the lag a causal moving average adds.
"""

from __future__ import annotations

import numpy as np


def find_gaps(valid: np.ndarray) -> list[tuple[int, int]]:
    """Runs of invalid frames as (start, end) half-open intervals."""
    gaps, start = [], None
    for i, ok in enumerate(valid):
        if not ok and start is None:
            start = i
        elif ok and start is not None:
            gaps.append((start, i))
            start = None
    if start is not None:
        gaps.append((start, len(valid)))
    return gaps


def fill_gaps(values: np.ndarray, valid: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Linearly interpolate runs of at most ``max_gap`` missing frames between found ones (edges: hold
    the nearest found value). Returns (values, still-invalid mask, indices that were filled)."""
    values = values.copy()
    valid = valid.copy()
    filled = []
    for start, end in find_gaps(valid):
        if end - start > max_gap or (start == 0 and end == len(valid)):
            continue
        before = start - 1 if start > 0 else None
        after = end if end < len(valid) else None
        for i in range(start, end):
            if before is None:
                values[i] = values[after]
            elif after is None:
                values[i] = values[before]
            else:
                t = (i - before) / (after - before)
                values[i] = (1 - t) * values[before] + t * values[after]
            valid[i] = True
            filled.append(i)
    return values, ~valid, filled


def gaussian_smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """Centred Gaussian filter along axis 0 (edges reflected); sigma in frames, 0 = unchanged."""
    if sigma <= 0 or len(values) < 2:
        return values.copy()
    radius = max(1, int(round(3 * sigma)))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(values, [(radius, radius)] + [(0, 0)] * (values.ndim - 1), mode="reflect")
    out = np.zeros_like(values, dtype=np.float64)
    for k, weight in zip(offsets, kernel, strict=True):
        out += weight * padded[radius + k : radius + k + len(values)]
    return out
