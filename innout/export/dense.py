"""Every source frame of a fit that kept only some: the frames in between get latents and OOD codes
interpolated from the fitted frames around them, and their own camera, crop transform and face outline from
the prepared clip.

A fit keeps every k-th frame to save time (the app's preview fits 12); its video would otherwise be a
slideshow at the source rate divided by k. The latents W+ vary smoothly between neighbouring frames (the
paper smooths them over time for the same reason), so a linear blend in source-frame time is a fair guess
of the frames not fitted; the camera and the paste-back need no guess: preprocessing measured them on
every frame.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from ..errors import UserError
from ..fit import scene_source
from ..preprocess import PreparedVideo
from ..scene import Scene, SceneData


class DenseError(UserError, ValueError):
    """The prepared clip is not the one the scene was fitted on."""


def in_between(fitted: list[int], wanted: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each wanted source frame (within the fitted span): the index of the fitted frame at or before it,
    of the one at or after it, and the weight of the latter (0 on a fitted frame)."""
    fitted_arr, wanted_arr = np.asarray(fitted), np.asarray(wanted)
    after = np.searchsorted(fitted_arr, wanted_arr, side="left").clip(0, len(fitted) - 1)
    exact = fitted_arr[after] == wanted_arr
    before = np.where(exact, after, (after - 1).clip(0))
    span = (fitted_arr[after] - fitted_arr[before]).astype(np.float64)
    weight = np.where(span > 0, (wanted_arr - fitted_arr[before]) / np.where(span > 0, span, 1), 0.0)
    return before, after, weight


def every_source_frame(scene: Scene, prepared: PreparedVideo) -> Scene:
    """A scene with one frame per prepared frame from the first fitted frame to the last (``scene`` itself when
    it already has them all). Edits loaded on ``scene`` are carried over."""
    fitted = list(scene.data.source.frames)
    position = {frame: i for i, frame in enumerate(prepared.frame_indices)}
    missing = [f for f in fitted if f not in position]
    if missing or fitted != sorted(fitted):
        raise DenseError(
            f"the prepared clip lacks the fitted source frames {missing[:5]}: it is not the clip this scene was "
            "fitted on"
        )
    keep = [i for i, frame in enumerate(prepared.frame_indices) if fitted[0] <= frame <= fitted[-1]]
    wanted = [prepared.frame_indices[i] for i in keep]
    if wanted == fitted:
        return scene
    before, after, weight = in_between(fitted, wanted)
    data = scene.data
    w = torch.as_tensor(weight, dtype=data.ws.dtype, device=data.ws.device)
    ws = torch.lerp(data.ws[before], data.ws[after], w[:, None, None])
    ood = None
    if data.ood is not None:
        codes = data.ood.codes.detach()
        ood = copy.deepcopy(data.ood)
        ood.codes = torch.nn.Parameter(torch.lerp(codes[before], codes[after], w.to(codes.dtype)[:, None]))
        if data.ood.offsets is not None:  # a moving object moves on between the fitted frames
            offsets = data.ood.offsets.detach()
            ood.offsets = torch.nn.Parameter(torch.lerp(offsets[before], offsets[after], w.to(offsets.dtype)[:, None]))
    cameras = torch.as_tensor(np.asarray(prepared.cameras)[keep], dtype=data.cameras.dtype, device=data.cameras.device)
    source = scene_source(prepared, keep)  # what the fit records for its own frames, for every frame
    dense = Scene(SceneData(data.generator, ws, cameras, ood, source, data.method, data.fit_config, data.history))
    for direction in scene.edits.directions.values():
        dense.add_direction(direction)
    for mapper in scene.edits.mappers.values():
        dense.add_mapper(mapper)
    return dense
