"""Input media: a video file, a folder of frames or one image -> RGB frames, frame rate and audio."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..frames import IMAGE_SUFFIXES, FramesError, iter_video, list_images, read_frames

DEFAULT_FPS = 25.0


class InputError(FramesError):
    """The input cannot be used; the message says what is wrong."""


@dataclass
class MediaInput:
    frames: list[np.ndarray]  # RGB uint8 HxWx3
    fps: float
    source: Path
    kind: str  # 'video', 'folder' or 'image'
    frame_indices: list[int]  # index of each kept frame in the source
    audio_codec: str | None = None


def probe_video(path: Path) -> dict:
    import imageio_ffmpeg

    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
        reader.close()
    except (OSError, RuntimeError, StopIteration) as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path.name}: not a readable video ({first})") from exc
    return meta


def load_media(path: str | os.PathLike, *, stride: int = 1, max_frames: int | None = None) -> MediaInput:
    """Read the input, keeping every ``stride``-th frame and at most ``max_frames`` of them."""
    path = Path(path)
    if stride < 1:
        raise ValueError("stride must be >= 1")
    if path.is_dir():
        files = list_images(path)
        if not files:
            raise InputError(f"{path}: the folder has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        keep = list(range(0, len(files), stride))[:max_frames]
        frames = [read_frames(files[i])[0] for i in keep]
        return MediaInput(frames, DEFAULT_FPS / stride, path, "folder", keep)
    if not path.is_file():
        raise InputError(f"{path}: no such file or folder")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return MediaInput(read_frames(path), DEFAULT_FPS, path, "image", [0])
    meta = probe_video(path)
    frames, indices = [], []
    try:
        for i, frame in enumerate(iter_video(path)):
            if i % stride == 0:
                frames.append(frame)
                indices.append(i)
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except (OSError, RuntimeError) as exc:
        raise InputError(f"{path.name}: the video could not be decoded after {len(frames)} frames ({exc})") from exc
    if not frames:
        raise InputError(f"{path.name}: the video has no frames (empty or truncated file)")
    fps = float(meta.get("fps") or DEFAULT_FPS) / stride
    return MediaInput(frames, fps, path, "video", indices, meta.get("audio_codec"))


def extract_audio(video: Path, destination: Path) -> bool:
    """Copy the audio track of ``video`` into ``destination`` (Matroska audio, no re-encoding)."""
    import imageio_ffmpeg

    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-y",
        "-v",
        "error",
        "-i",
        str(video),
        "-vn",
        "-c:a",
        "copy",
        str(destination),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    return result.returncode == 0 and destination.is_file() and destination.stat().st_size > 0
