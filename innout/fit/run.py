"""The fit's one public entry point: from a video, photo or prepared video to a scene file.

``fit_video`` is what the CLI (``python -m innout fit``) and the app call: prepare (or take the prepared
video the caller already holds), pick the frames, resolve the OOD masks, run the cached pipeline, and
write a self-contained scene file. The stage caches live in ``workdir`` (default:
``$INNOUT_CACHE_DIR/fit`` or ``~/.cache/innout/fit``); the same input, generator and settings return the
cached scene at once, and an interrupted fit resumes where it stopped.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..eg3d.generator import TriPlaneGenerator
from ..places import fit_cache_dir
from ..preprocess import PreparedVideo, PrepareOptions, prepare
from ..progress import Progress
from ..scene.file import SceneSource
from .config import FitConfig
from .data import FitData, evenly_spaced
from .mask_warp import PROPAGATIONS, check_propagation, mask_propagator
from .masks import resolve_masks
from .pipeline import FitPipeline


def scene_source(prepared: PreparedVideo, keep: list[int]) -> SceneSource:
    """The source of the fitted frames ``keep`` (indices into the prepared video): source frame numbers,
    crop transforms and face outlines, so the scene exports without the preprocessing cache."""
    return SceneSource(
        frames=[prepared.frame_indices[i] for i in keep],
        transforms=torch.as_tensor(np.asarray(prepared.transforms)[keep], dtype=torch.float64),
        face_outlines=torch.as_tensor(prepared.face_outlines()[keep]),
        input=str(Path(prepared.source).resolve()) if prepared.source else None,
        fps=prepared.fps,
        frame_size=tuple(prepared.frame_size),
    )


def fit_video(
    input: str | os.PathLike | PreparedVideo,
    G: TriPlaneGenerator,
    config: FitConfig,
    *,
    method: str = "innout",
    mask: str | os.PathLike | np.ndarray | None = None,
    mask_propagation: str = PROPAGATIONS[0],
    output: str | os.PathLike | None = None,
    workdir: str | os.PathLike | None = None,
    prepare_options: PrepareOptions | None = None,
    progress: Progress | None = None,
    log=print,
    device: str | torch.device = "cpu",
) -> Path:
    """Fit ``input`` (a path, prepared with ``prepare_options``, or a ``PreparedVideo`` already at hand) and
    return the scene file's path. ``mask``: the OOD object on the first frame (an image or a [H, W] array,
    propagated), one per prepared frame (a folder or a [T, H, W] array), or None (unsupervised).
    ``mask_propagation``: how a first-frame mask reaches the other frames (``innout.fit.mask_warp.PROPAGATIONS``)."""
    config.validate()  # every setting, before any work
    check_propagation(mask_propagation)
    if isinstance(input, PreparedVideo):
        prepared = input
    else:
        prepared = prepare(input, prepare_options, progress=progress is not None)
    keep = evenly_spaced(len(prepared), config.max_frames)
    masks = None
    if mask is not None:  # the head's geometry only where the fit looks: the kept frames
        cameras = torch.as_tensor(np.asarray(prepared.cameras))
        masks = resolve_masks(mask, prepared.crops, mask_propagator(mask_propagation, G, cameras, frames=keep))
    # the key of a prepared video is the hash of its frames' and cameras' files (checked when they were
    # read) and the frames kept; without one (a PreparedVideo built in memory) the arrays are hashed
    key = f"{prepared.content_digest[:24]}-{','.join(map(str, keep))}" if prepared.content_digest else None
    data = FitData.from_arrays(
        np.asarray(prepared.crops)[keep], np.asarray(prepared.cameras)[keep], key=key,
        ood_masks=None if masks is None else masks[keep],
    ).to(device)  # fmt: skip
    pipeline = FitPipeline(
        G.to(device), data, config, workdir or fit_cache_dir(), progress=progress,
        source=scene_source(prepared, keep), log=log,
    )  # fmt: skip
    return pipeline.run(method, output)
