"""Input media: a video file, a folder of frames or one image -> a stream of RGB frames, their times, audio.

Nothing here holds more than one decoded frame: ``open_media`` reads headers and frame times only, and
``MediaSource.frames`` decodes the kept frames one at a time, again on every call (preprocessing makes
two passes: landmarks first, then crops). ``load_media`` gathers the frames in a list, for short inputs.
Frame times are the source's own: a variable-rate video keeps its frame count and duration.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..frames import (
    IMAGE_SUFFIXES,
    FramesError,
    iter_video,
    list_images,
    open_video,
    read_image,
    video_timestamps,
)
from ..numbers import Range

log = logging.getLogger(__name__)

DEFAULT_FPS = 25.0
STRIDE = Range(1, integer=True)
MAX_FRAMES = Range(1, integer=True, optional=True)


class InputError(FramesError):
    """The input cannot be used; the message says what is wrong."""


def check_selection(stride: object, max_frames: object) -> tuple[int, int | None]:
    """``stride`` (keep every n-th frame) and ``max_frames`` (a cap, or None) as ints, or ``InputError``:
    0 or -1 used to keep one frame without a word."""
    return STRIDE.check(stride, "stride", InputError), MAX_FRAMES.check(max_frames, "max_frames", InputError)


@dataclass(frozen=True)
class SourceTiming:
    """When each frame of a video is shown. A steady clip keeps its header's rate and a uniform grid (what
    players assume); a variable-rate one keeps its own times and counts frames / duration as its rate."""

    times: np.ndarray  # [N] seconds from the first frame, of every source frame
    fps: float  # source frames per second
    variable: bool

    @property
    def duration(self) -> float:
        return len(self.times) / self.fps if len(self.times) else 0.0

    def time_of(self, index: int) -> float:
        """Seconds from the first frame to source frame ``index`` (past the known times: the mean rate)."""
        return float(self.times[index]) if 0 <= index < len(self.times) else index / self.fps


def timing_from_timestamps(
    stamps: np.ndarray | None, nominal_fps: float, ends: tuple[float | None, ...] = ()
) -> SourceTiming:
    """The timing of a video whose frames are shown at ``stamps`` (seconds; None when unknown) and whose
    header says ``nominal_fps``. Steady: every frame within half a frame of the header's grid. Otherwise
    the clip lasts until the first of ``ends`` (e.g. ffmpeg's count, the header's duration) that leaves the
    last frame a plausible time on screen (no longer than the longest gap between frames, or two typical
    ones: a longer audio track makes a header's duration longer), else one typical frame past the last."""
    nominal = nominal_fps if nominal_fps and np.isfinite(nominal_fps) and nominal_fps > 0 else 0.0
    if stamps is None or len(stamps) < 2:
        fps = nominal or DEFAULT_FPS
        count = 0 if stamps is None else len(stamps)
        return SourceTiming(np.arange(count) / fps, fps, False)
    times = np.asarray(stamps, np.float64) - float(stamps[0])
    grid = np.arange(len(times)) / nominal if nominal else None
    if grid is not None and np.abs(times - grid).max() <= 0.5 / nominal:
        return SourceTiming(grid, nominal, False)
    steps = np.diff(times)
    step = float(np.median(steps[steps > 0])) if (steps > 0).any() else 1.0 / (nominal or DEFAULT_FPS)
    last = float(times.max())
    longest = max(float(steps.max()), 2 * step)
    plausible = [end - float(stamps[0]) for end in ends if end is not None]
    plausible = [end for end in plausible if last < end <= last + longest]
    duration = plausible[0] if plausible else last + step
    return SourceTiming(times, len(times) / duration, True)


def video_timing(path: Path, meta: dict | None = None) -> SourceTiming:
    """The timing of the video at ``path`` (one decode that copies no pixels); ``meta``: its header
    information when already read (``probe_video``)."""
    meta = probe_video(path) if meta is None else meta
    declared = float(meta.get("duration") or 0.0) or None
    times = video_timestamps(path)
    stamps, counted = (times.stamps, times.end) if times is not None else (None, None)
    return timing_from_timestamps(stamps, float(meta.get("fps") or 0.0), (counted, declared))


@dataclass
class MediaSource:
    """An input opened for streaming: what it is and which of its frames are kept. ``frames()`` decodes
    the kept frames one at a time, every time it is called."""

    source: Path
    kind: str  # 'video', 'folder' or 'image'
    fps: float  # of the kept frames: the source's rate / stride
    stride: int = 1
    max_frames: int | None = None
    audio_codec: str | None = None
    timing: SourceTiming | None = None  # videos
    images: list[Path] | None = None  # folders

    def expected_count(self) -> int | None:
        """How many frames ``frames()`` will give, when the headers tell (for progress bars)."""
        total = len(self.images) if self.images is not None else None
        if self.kind == "image":
            total = 1
        elif self.timing is not None and len(self.timing.times):
            total = len(self.timing.times)
        if total is None:
            return None
        kept = -(-total // self.stride)
        return kept if self.max_frames is None else min(kept, self.max_frames)

    def _all_frames(self) -> Iterator[np.ndarray]:
        try:
            if self.kind == "image":
                yield read_image(self.source)
            elif self.kind == "folder":
                yield from (read_image(p) for p in self.images or [])
            else:
                yield from iter_video(self.source)
        except InputError:
            raise
        except FramesError as exc:
            raise InputError(str(exc)) from exc

    def frames(self) -> Iterator[tuple[int, np.ndarray]]:
        """(index in the source, RGB uint8 frame) of every kept frame; decoding stops after the last one."""
        kept = 0
        for index, frame in enumerate(self._all_frames()):
            if index % self.stride:
                continue
            kept += 1
            yield index, frame
            if self.max_frames is not None and kept >= self.max_frames:
                return
        if kept == 0:
            raise InputError(f"{self.source.name}: the video has no frames (an empty or truncated file)")

    def times(self, indices: list[int]) -> list[float] | None:
        """Seconds from the source's first frame to each of the source frames ``indices`` (videos)."""
        if self.timing is None:
            return None
        return [round(self.timing.time_of(i), 6) for i in indices]


@dataclass
class MediaInput:
    frames: list[np.ndarray]  # RGB uint8 HxWx3
    fps: float
    source: Path
    kind: str  # 'video', 'folder' or 'image'
    frame_indices: list[int]  # index of each kept frame in the source
    audio_codec: str | None = None
    timestamps: list[float] | None = None  # seconds from the source's first frame, per kept frame (videos)


def probe_video(path: Path) -> dict:
    """ffmpeg's header information of a video (size, fps, duration, audio codec) without decoding it."""
    try:
        meta, reader = open_video(path)
    except FramesError as exc:
        raise InputError(str(exc)) from exc
    reader.close()
    return meta


def open_media(path: str | os.PathLike, *, stride: int = 1, max_frames: int | None = None) -> MediaSource:
    """Open the input for streaming, keeping every ``stride``-th frame and at most ``max_frames`` of them:
    its kind, rate and audio from the headers, a video's frame times from a pass that copies no pixels."""
    stride, max_frames = check_selection(stride, max_frames)
    path = Path(path)
    if path.is_dir():
        files = list_images(path)
        if not files:
            raise InputError(f"{path}: the folder has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return MediaSource(path, "folder", DEFAULT_FPS / stride, stride, max_frames, images=files)
    if not path.is_file():
        raise InputError(f"{path}: no such file or folder")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return MediaSource(path, "image", DEFAULT_FPS, 1, 1)
    if path.stat().st_size == 0:
        raise InputError(f"{path.name}: not a readable video (the file is empty)")
    meta = probe_video(path)
    timing = video_timing(path, meta)
    declared = float(meta.get("duration") or 0.0)
    if len(timing.times) and declared > timing.duration + max(1.0, 0.1 * declared):
        log.warning(
            "%s: its header says %.1f s but its frames last %.1f s (a truncated file, or a longer audio track?); "
            "preparing the frames there are", path.name, declared, timing.duration,
        )  # fmt: skip
    return MediaSource(
        path, "video", timing.fps / stride, stride, max_frames, meta.get("audio_codec"), timing=timing
    )  # fmt: skip


def load_media(path: str | os.PathLike, *, stride: int = 1, max_frames: int | None = None) -> MediaInput:
    """Read the input, keeping every ``stride``-th frame and at most ``max_frames`` of them, all in memory
    (preprocessing streams with ``open_media`` instead)."""
    media = open_media(path, stride=stride, max_frames=max_frames)
    indices, frames = [], []
    for index, frame in media.frames():
        indices.append(index)
        frames.append(frame)
    return MediaInput(frames, media.fps, media.source, media.kind, indices, media.audio_codec, media.times(indices))


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
