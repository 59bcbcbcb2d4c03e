"""Importing a clip already in EG3D's dataset layout (``frames/`` + ``dataset.json`` with camera labels): it is
taken as prepared, with its own cameras and no face detection (the synthetic world's clips are such folders).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .media import InputError
from .prepared import PreparedVideo


def is_eg3d_dataset(path: Path) -> bool:
    return path.is_dir() and (path / "dataset.json").is_file()


def load_eg3d_dataset(folder: str | os.PathLike, fps: float = 25.0) -> PreparedVideo:
    """A folder already in EG3D's dataset layout (``dataset.json`` with ``{"labels": [[name, 25 numbers], ...]}``
    and the aligned crops, beside it or in ``frames/``), taken as it is: no face detection, its own cameras,
    the crop being the frame. This is how synthetic clips with known cameras are fitted."""
    import cv2

    folder = Path(folder)
    try:
        labels = json.loads((folder / "dataset.json").read_text())["labels"]
        names = [str(name) for name, _ in labels]
        cameras = np.asarray([label for _, label in labels], dtype=np.float32)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{folder}/dataset.json: not EG3D's labels format ({exc})") from exc
    if cameras.ndim != 2 or cameras.shape[1] != 25 or not np.isfinite(cameras).all():
        raise InputError(f"{folder}/dataset.json: every label must be 25 finite numbers")
    frames_dir = folder / "frames" if (folder / "frames").is_dir() else folder
    crops = []
    for name in names:
        image = cv2.imread(str(frames_dir / name), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"{frames_dir / name}: listed in dataset.json but not a readable image")
        if image.shape[:2] != (512, 512):
            image = cv2.resize(image, (512, 512), interpolation=cv2.INTER_CUBIC)
        crops.append(image[..., ::-1])
    h, w = cv2.imread(str(frames_dir / names[0])).shape[:2] if names else (512, 512)
    scale = np.array([[w / 512, 0, 0], [0, h / 512, 0]], np.float64)
    return PreparedVideo(
        crops=np.stack(crops), cameras=cameras, transforms=np.repeat(scale[None], len(names), axis=0),
        landmarks=None, frame_indices=list(range(len(names))), status=["given"] * len(names), dropped=[],
        fps=fps, frame_size=(h, w), source=str(frames_dir),
    )  # fmt: skip


