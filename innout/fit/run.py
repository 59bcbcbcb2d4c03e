"""From a video (or photo) to a fitted scene file: prepare, pick frames, fit, save.

``fit_video`` is what the CLI (``python -m innout fit``) and the app call. The stage caches live in
``workdir`` (default: ``$INNOUT_CACHE_DIR/fit`` or ``~/.cache/innout/fit``); the same input, generator
and settings return the cached scene at once, and an interrupted fit resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import torch

from ..eg3d.config import GeneratorConfig
from ..eg3d.generator import TriPlaneGenerator
from ..preprocess.pipeline import PrepareOptions, default_cache_dir, prepare
from .config import FitConfig
from .data import FitData
from .loop import Progress
from .masks import load_masks
from .pipeline import FitPipeline

RANDOM_GENERATORS = ("tiny", "ffhq")


def random_generator(kind: str, seed: int = 0) -> TriPlaneGenerator:
    """An untrained generator (random weights) for trying the flow without EG3D weights: 'tiny' is the
    fixture architecture, 'ffhq' the full FFHQ 512-128 one. Its faces are noise, not faces."""
    from .synthetic import synthetic_generator

    if kind not in RANDOM_GENERATORS:
        raise ValueError(f"random generator must be one of {RANDOM_GENERATORS}, got {kind!r}")
    config = GeneratorConfig.tiny() if kind == "tiny" else GeneratorConfig.ffhq512()
    return synthetic_generator(config, seed=seed, contrast=1.0, grey=False)


def default_workdir() -> Path:
    return Path(default_cache_dir()).parent / "fit"


def fit_video(
    path: str | os.PathLike,
    G: TriPlaneGenerator,
    config: FitConfig,
    *,
    method: str = "innout",
    mask: str | os.PathLike | None = None,
    output: str | os.PathLike | None = None,
    workdir: str | os.PathLike | None = None,
    prepare_options: PrepareOptions | None = None,
    progress: Progress | None = None,
    log=print,
    device: str | torch.device = "cpu",
) -> Path:
    """Fit ``path`` and return the scene file's path."""
    prepared = prepare(path, prepare_options, progress=progress is not None)
    masks = load_masks(mask, prepared.crops) if mask is not None else None  # propagated over every frame
    # the key of a prepared video is its cache entry's name: input content + preprocessing options
    key = Path(prepared.cache_dir).name if prepared.cache_dir else None
    data = FitData.from_arrays(
        prepared.crops, prepared.cameras, key=key, ood_masks=masks, max_frames=config.max_frames
    )
    keep = data.frame_indices  # indices into the prepared video; the scene keeps source frame numbers
    data = dataclasses.replace(data, frame_indices=[prepared.frame_indices[i] for i in keep]).to(device)
    source = {
        "input": str(Path(path).resolve()),
        "prepared": prepared.cache_dir,
        "fps": prepared.fps,
        "frame_size": list(prepared.frame_size),
        "audio": prepared.audio_path,
        "prepared_frames": keep,
    }
    pipeline = FitPipeline(
        G.to(device),
        data,
        config,
        workdir or default_workdir(),
        progress=progress,
        source=source,
        transforms=torch.as_tensor(np.asarray(prepared.transforms)[keep]),
        log=log,
    )
    return pipeline.run(method, output)
