"""Reading frames: a video file, a folder of images, or one image -> RGB uint8 arrays."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .errors import UserError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


class FramesError(UserError, ValueError):
    """The input cannot be read as frames; the message says why."""


def _image(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    try:
        array = iio.imread(path)
    except Exception as exc:
        raise FramesError(f"{path}: not a readable image ({exc})") from exc
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    return np.ascontiguousarray(array[..., :3].astype(np.uint8))


def iter_video(path: Path) -> Iterator[np.ndarray]:
    import imageio_ffmpeg

    try:
        reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
        meta = next(reader)
    except (OSError, RuntimeError, StopIteration) as exc:
        raise FramesError(f"{path}: not a readable video ({str(exc).splitlines()[0] if str(exc) else exc})") from exc
    width, height = meta["size"]
    for raw in reader:
        yield np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3).copy()


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def read_frames(path: str | os.PathLike) -> list[np.ndarray]:
    """All frames of a video, the sorted images of a folder, or a single image."""
    path = Path(path)
    if path.is_dir():
        images = list_images(path)
        if not images:
            raise FramesError(f"{path}: the folder has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return [_image(p) for p in images]
    if not path.is_file():
        raise FramesError(f"{path}: no such file or folder")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return [_image(path)]
    frames = list(iter_video(path))
    if not frames:
        raise FramesError(f"{path}: the video has no frames")
    return frames
