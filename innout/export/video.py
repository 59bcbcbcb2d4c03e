"""Video export: render every fitted frame, paste it back into the original footage, keep the audio.

One output frame per fitted frame. When the fit kept every source frame, the video has the source's
frame rate and frame count; when it kept every k-th frame, the rate is divided by k, so the audio (the
source's, over the same span of time) stays in sync. A variable-frame-rate source plays at its mean rate
(frames / duration), so the video lasts as long as the source and its audio. Outside the soft face mask
the pasted frame is the original frame, pixel for pixel (before the encoder's compression).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import storage
from ..edit.smoothing import SuperresolutionHistory
from ..frames import IMAGE_SUFFIXES, FramesError, iter_frames
from ..numbers import Range
from ..preprocess.pasteback import outline_mask, paste_back
from ..progress import Progress
from ..scene import RenderRequest, Scene

if TYPE_CHECKING:
    from ..preprocess.media import SourceTiming

log = logging.getLogger(__name__)

EXPORT_DEFAULTS = RenderRequest(quality="full", smoothing="causal")
"""What an export renders every frame with unless told otherwise: full quality, causal smoothing."""

FPS = Range(0, 240, lo_open=True, unit="frames per second")  # a chosen rate (camera paths)
ANY_FPS = Range(0, None, lo_open=True, unit="frames per second")  # a source's own rate (slow motion: 960)
ENCODER_QUALITY = Range(0, 10, unit="imageio-ffmpeg's quality scale")
MAX_VIEWS = 1000


def default_face_mask(size: int = 512) -> np.ndarray:
    """A feathered ellipse over the face of an EG3D crop, for scenes whose landmarks are not at hand."""
    import cv2

    mask = np.zeros((size, size), np.float32)
    centre, axes = (size // 2, int(0.54 * size)), (int(0.3 * size), int(0.4 * size))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1.0, -1)
    return np.clip(cv2.GaussianBlur(mask, (0, 0), 0.03 * size), 0, 1)


def scene_face_masks(scene: Scene) -> list[np.ndarray]:
    """The paste-back mask of every fitted frame, from the face outlines the scene file keeps (scenes
    written before version 2 have none: they get the default ellipse, with a warning)."""
    outlines = scene.data.source.face_outlines
    if outlines is not None:
        return [outline_mask(o) for o in outlines.cpu().numpy()]
    log.warning("this scene file keeps no face outlines (written by an older version): default face mask")
    return [default_face_mask()] * scene.n_frames


def is_video(path: Path) -> bool:
    """A video file, as opposed to a photo or a folder of frames (which have no frame rate or audio)."""
    return path.is_file() and path.suffix.lower() not in IMAGE_SUFFIXES


def source_frames(path: Path, indices: list[int]):
    """The frames of the source at ``indices`` (ascending), read in one pass."""
    wanted, it = iter(indices), iter_frames(path)
    target = next(wanted, None)
    for i, frame in enumerate(it):
        if target is None:
            break
        if i == target:
            yield frame
            target = next(wanted, None)
    if target is not None:
        raise FramesError(f"{path}: the video ended before frame {target}; is it the video the scene was fitted on?")


def source_timing(path: Path) -> SourceTiming:
    """When each frame of the source is shown: a video's own frame times (a steady clip: its header's
    rate); photos and folders of frames play at the default rate."""
    from ..preprocess.media import DEFAULT_FPS, SourceTiming, video_timing

    if not is_video(path):
        return SourceTiming(np.zeros(0), DEFAULT_FPS, False)
    return video_timing(path)


def video_fps(path: Path) -> float:
    """Source frames per second: the header's rate, or frames / duration for a variable-rate video."""
    return source_timing(path).fps


class VideoWriter:
    """H.264 mp4 through imageio-ffmpeg; odd sizes are padded by one pixel (yuv420p needs even sizes).
    ``lossless`` writes RGB H.264 at qp 0 (exact pixels; large files, not every player reads it)."""

    def __init__(
        self, path: Path, size: tuple[int, int], fps: float, quality: float = 8.0, lossless: bool = False
    ) -> None:
        import imageio_ffmpeg

        fps = ANY_FPS.check(fps, "the video's frame rate", FramesError)
        quality = ENCODER_QUALITY.check(quality, "the video quality", FramesError)
        self.width, self.height = size
        even = (self.width + self.width % 2, self.height + self.height % 2)
        if lossless:
            codec, pix_fmt, extra, quality = "libx264rgb", "rgb24", ["-qp", "0"], None
        else:
            codec, pix_fmt, extra = "libx264", "yuv420p", []
        self.path = Path(path)
        with storage.writing("the video", self.path):
            self.writer = imageio_ffmpeg.write_frames(
                str(path), even, fps=fps, codec=codec, quality=quality, macro_block_size=1, pix_fmt_out=pix_fmt,
                output_params=extra,
            )  # fmt: skip
            self.writer.send(None)
        self.even = even

    def send(self, frame: np.ndarray) -> None:
        if frame.shape[1] != self.even[0] or frame.shape[0] != self.even[1]:
            pad = ((0, self.even[1] - frame.shape[0]), (0, self.even[0] - frame.shape[1]), (0, 0))
            frame = np.pad(frame, pad, "edge")
        with storage.writing("the video", self.path):
            self.writer.send(np.ascontiguousarray(frame))

    def close(self) -> None:
        """Finish the file and check that it is complete: ffmpeg may end 'successfully' on a full disk and leave
        a file without its index, which no player reads."""
        with storage.writing("the video", self.path):
            self.writer.close()
        check_complete(self.path)


def check_complete(path: Path) -> None:
    """A ``StorageError`` when ``path`` is not a readable video (the disk filled up while it was written)."""
    import imageio_ffmpeg

    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        next(reader)
        reader.close()
    except (OSError, RuntimeError, StopIteration) as exc:
        raise storage.StorageError(
            f"could not write the video at {storage.shown_path(path)}: the file is incomplete "
            f"({storage.why_incomplete(path, exc)})"
        ) from None


def mux_audio(video: Path, audio_source: Path, output: Path, start: float, duration: float) -> bool:
    """Copy ``video`` to ``output`` with the audio of ``audio_source`` from ``start`` for ``duration``
    seconds (AAC), or until the source's audio ends. False, and the video alone, when it has no audio."""
    import imageio_ffmpeg

    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", "-i", str(video),
        "-ss", f"{start:.6f}", "-t", f"{duration:.6f}", "-i", str(audio_source),
        "-map", "0:v:0", "-map", "1:a:0?", "-c:v", "copy", "-c:a", "aac", str(output),
    ]  # fmt: skip  (no -shortest: where the source's audio ends early it must not cut the video)
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        log.warning("could not add the audio (%s); writing the video without it", result.stderr.strip()[-300:])
        shutil.copyfile(video, output)
        return False
    return True


def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress("export", done, total, {})


def frame_spacing(frames: list[int]) -> int:
    """Source frames from one fitted frame to the next (the median step, at least 1): the video of the fitted
    frames alone plays at the source rate divided by this, so that it lasts as long as its audio."""
    return max(int(np.median(np.diff(frames))), 1) if len(frames) > 1 else 1


def export_video(
    scene: Scene,
    output: str | os.PathLike,
    request: RenderRequest = EXPORT_DEFAULTS,
    *,
    paste: bool = True,
    audio: bool = True,
    source: str | os.PathLike | None = None,
    quality: float = 8.0,
    lossless: bool = False,
    progress: Progress | None = None,
) -> Path:
    """Render all fitted frames with ``request`` (its frame and camera are set per frame) and write an mp4.
    With ``paste`` each crop goes back into its source frame (``source``: the video the scene was fitted
    on; default: the path in the scene)."""
    output = Path(output)
    origin = scene.data.source
    indices = list(origin.frames)
    src = Path(source or origin.input or "")
    can_paste = paste and origin.transforms is not None and src.exists()
    if paste and not can_paste:
        raise FramesError(
            f"cannot paste back: the source {src} is missing or the scene has no crop transforms; "
            "pass the source video, or export the crops alone (paste=False / --no-paste)"
        )
    timing = source_timing(src) if src.exists() else None
    src_fps = timing.fps if timing is not None else float(origin.fps or 25.0)
    spacing = frame_spacing(indices)
    if len(indices) > 1 and len(set(np.diff(indices).tolist())) > 1:
        log.warning("the fitted frames are not evenly spaced; the video plays them at a constant rate")
    fps = src_fps / spacing
    masks = scene_face_masks(scene) if can_paste else None
    originals = source_frames(src, indices) if can_paste else None

    with storage.writing("the video", output):
        output.parent.mkdir(parents=True, exist_ok=True)
    with (
        storage.writing("the video", output, only_write_failures=True),  # the source is read in there too
        tempfile.TemporaryDirectory(dir=output.parent) as tmp,
    ):
        silent = Path(tmp) / "video.mp4"
        writer = None
        history = SuperresolutionHistory() if request.smoothing == "causal" else None
        for i in range(scene.n_frames):
            crop = scene.render(request.at(i), sr_history=history).image
            frame = crop
            if can_paste:
                frame = paste_back(next(originals), crop, origin.transforms[i].cpu().numpy(), masks[i])
            if writer is None:
                writer = VideoWriter(silent, (frame.shape[1], frame.shape[0]), fps, quality, lossless)
            writer.send(frame)
            _report(progress, i + 1, scene.n_frames)
        writer.close()
        final = Path(tmp) / "final.mp4"
        if audio and is_video(src):
            start = timing.time_of(indices[0]) if timing is not None else indices[0] / src_fps
            mux_audio(silent, src, final, start, scene.n_frames * spacing / src_fps)
        else:
            shutil.copyfile(silent, final)
        check_complete(final)
        os.replace(final, output)
    return output


def export_camera_path(
    scene: Scene,
    output: str | os.PathLike,
    frame: int,
    views: list[tuple[float, float]],
    request: RenderRequest = EXPORT_DEFAULTS,
    *,
    fps: float = 25.0,
    quality: float = 8.0,
    progress: Progress | None = None,
) -> Path:
    """A novel-view video of one frame along ``views`` ((yaw, pitch) offsets in radians; see ``camera_path``).
    The face tri-planes are computed once and reused for every view."""
    fps = FPS.check(fps, "fps", FramesError)
    ENCODER_QUALITY.check(quality, "quality", FramesError)
    if not 1 <= len(views) <= MAX_VIEWS:
        raise FramesError(f"a camera path needs 1 to {MAX_VIEWS} views, got {len(views)}")
    requests = [request.at(frame, view) for view in views]  # every view checked before the first render
    output = Path(output)
    with storage.writing("the video", output):
        output.parent.mkdir(parents=True, exist_ok=True)
    partial = storage.partial_name(output)  # the output appears only when complete
    try:
        writer = None
        for i, view_request in enumerate(requests):
            image = scene.render(view_request).image
            if writer is None:
                writer = VideoWriter(partial, (image.shape[1], image.shape[0]), fps, quality)
            writer.send(image)
            _report(progress, i + 1, len(views))
        writer.close()
        with storage.writing("the video", output):
            os.replace(partial, output)
    finally:
        storage.remove_quietly(partial)
    return output
