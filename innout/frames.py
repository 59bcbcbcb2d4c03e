"""Reading frames: a video file, a folder of images, or one image -> RGB uint8 arrays.

Videos are decoded as a stream, one frame at a time, with every frame as the file has it: ffmpeg's
default for a pipe output is a constant rate, which duplicates or drops frames of a variable-rate clip
(46 frames over 6.3 s came out as 204). ``video_timestamps`` gives the time of each decoded frame.
Images of any bit depth or layout (16-bit, palette, 1-bit, float, CMYK, with alpha) become 8-bit RGB;
an image or video whose header declares more than ``MAX_FRAME_PIXELS`` is refused before decoding.
"""

from __future__ import annotations

import functools
import math
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import UserError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
MAX_FRAME_PIXELS = 100_000_000
"""The largest frame read (100 megapixels: 300 MB as 8-bit RGB); a larger one is refused before decoding."""
_PILLOW_TO_RGB = {"CMYK", "YCbCr", "LAB", "HSV"}  # colour spaces whose channels are not R, G, B: Pillow converts
_PILLOW_ONLY = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}  # what Pillow cannot open here, nothing else reads


class FramesError(UserError, ValueError):
    """The input cannot be read as frames; the message says why."""


# --- images ---------------------------------------------------------------------------------------


def _too_large(path: Path, width: int, height: int) -> FramesError:
    return FramesError(
        f"{path}: the image is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels); "
        f"the limit is {MAX_FRAME_PIXELS / 1e6:.0f} megapixels: scale it down first"
    )


def _pillow_mode(path: Path) -> str | None:
    """The image's Pillow mode after checking the size its header declares (nothing is decoded yet);
    None when Pillow does not know the format (imageio's other plugins may)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
            mode = image.mode
    except Image.DecompressionBombError as exc:
        numbers = [int(n) for n in re.findall(r"\d+", str(exc))]
        pixels = numbers[0] if numbers else 0
        raise FramesError(
            f"{path}: the image declares {pixels / 1e6:.0f} megapixels; the limit is "
            f"{MAX_FRAME_PIXELS / 1e6:.0f} megapixels: scale it down first"
        ) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
    if width * height > MAX_FRAME_PIXELS:
        raise _too_large(path, width, height)
    return mode


def _check_declared_shape(path: Path) -> None:
    """For formats Pillow does not read: the shape imageio's plugin declares, before decoding."""
    import imageio.v3 as iio

    if path.stat().st_size == 0:
        raise FramesError(f"{path}: not a readable image (the file is empty)")
    try:
        shape = tuple(iio.improps(path).shape)
    except Exception as exc:
        reason = _first_line(exc)
        if "Could not find a backend" in reason:
            reason = f"not an image format this reads ({', '.join(sorted(IMAGE_SUFFIXES))}), or a damaged file"
        raise FramesError(f"{path}: not a readable image ({reason})") from exc
    spatial = shape[-3:-1] if len(shape) >= 3 and shape[-1] <= 4 else shape[-2:]
    if len(spatial) == 2 and spatial[0] * spatial[1] > MAX_FRAME_PIXELS:
        raise _too_large(path, spatial[1], spatial[0])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Any sample type as 0..255: 16-bit keeps its high byte (65535 -> 255, 257 * v -> v), other integers
    are scaled from their largest value, floats from 0..1 (or 0..255, or their maximum), booleans to 0/255."""
    if values.dtype == np.uint8:
        return values
    if values.dtype == np.bool_:
        return values.astype(np.uint8) * np.uint8(255)
    if values.dtype == np.uint16:
        return (values >> 8).astype(np.uint8)
    if np.issubdtype(values.dtype, np.integer):
        wide = np.clip(values.astype(np.int64), 0, None)
        top = int(wide.max(initial=0))
        if top <= 255:
            return wide.astype(np.uint8)
        bits = max(top.bit_length(), 8)  # e.g. 16-bit samples held in int32 (Pillow's mode 'I')
        return (wide >> (bits - 8)).astype(np.uint8)
    real = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    top = float(real.max(initial=0.0))
    scale = 255.0 if top <= 1.0 else (1.0 if top <= 255.0 else 255.0 / top)
    return np.clip(np.rint(real * scale), 0, 255).astype(np.uint8)


def to_rgb(array: np.ndarray, where: str | os.PathLike = "image") -> np.ndarray:
    """An image array of any layout (HxW, HxWx1..4, a stack of pages) as contiguous HxWx3 uint8 RGB;
    alpha is dropped, as it always was."""
    array = np.asarray(array)
    while array.ndim > 3 or (array.ndim == 3 and array.shape[-1] > 4):
        array = array[0]  # a stack of pages (or of grey pages): the first
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4) or min(array.shape[:2]) < 1:
        raise FramesError(f"{where}: not an image layout this reads (array of shape {tuple(array.shape)})")
    colour = np.repeat(array[..., :1], 3, axis=2) if array.shape[-1] <= 2 else array[..., :3]
    return np.ascontiguousarray(to_uint8(colour))


def read_image(path: Path) -> np.ndarray:
    """One image file as HxWx3 uint8 RGB, whatever its bit depth or layout; refused when too large."""
    import imageio.v3 as iio

    mode = _pillow_mode(path)
    if mode is None and path.suffix.lower() in _PILLOW_ONLY:
        reason = "the file is empty" if path.stat().st_size == 0 else "not a valid image file, or a damaged one"
        raise FramesError(f"{path}: not a readable image ({reason})")
    if mode is None:
        _check_declared_shape(path)
    try:
        if mode in _PILLOW_TO_RGB:
            from PIL import Image

            with Image.open(path) as image:
                array = np.asarray(image.convert("RGB"))
        else:
            array = iio.imread(path)
    except Exception as exc:
        raise FramesError(f"{path}: not a readable image ({_first_line(exc)})") from exc
    return to_rgb(array, path)


_image = read_image  # the name it had


# --- videos ---------------------------------------------------------------------------------------


@functools.cache
def _ffmpeg_version() -> tuple[int, int]:
    """(major, minor) of the ffmpeg imageio-ffmpeg runs; a development build counts as new."""
    import imageio_ffmpeg

    match = re.match(r"n?(\d+)\.(\d+)", imageio_ffmpeg.get_ffmpeg_version() or "")
    return (int(match[1]), int(match[2])) if match else (99, 0)


def passthrough_options() -> list[str]:
    """The first real video stream (not cover art), every frame as decoded, none duplicated or dropped."""
    sync = ["-fps_mode", "passthrough"] if _ffmpeg_version() >= (5, 1) else ["-vsync", "passthrough"]
    return ["-map", "0:V:0", *sync]


def _video_error(path: Path, exc: BaseException) -> FramesError:
    """ffmpeg's complaint in words: not a video, no video stream, or its own last line."""
    text = str(exc)
    if "matches no streams" in text:
        return FramesError(f"{path}: not a readable video (it has no video stream; audio only?)")
    for marker, meaning in (
        ("moov atom not found", "no video index: an empty, truncated or non-video file"),
        ("Invalid data found when processing input", "not a video format ffmpeg knows, or a damaged file"),
        ("No such file or directory", "no such file"),
    ):
        if marker in text:
            return FramesError(f"{path}: not a readable video ({meaning})")
    lines = [line.strip() for line in text.splitlines() if line.strip() and "===" not in line]
    return FramesError(f"{path}: not a readable video ({lines[-1] if lines else type(exc).__name__})")


def open_video(path: Path) -> tuple[dict, Iterator[bytes]]:
    """ffmpeg's header information and the raw RGB24 frames of ``path``, every frame as decoded."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24", output_params=passthrough_options())
    try:
        meta = next(reader)
    except (OSError, RuntimeError, StopIteration, ValueError, KeyError, IndexError) as exc:
        reader.close()
        raise _video_error(path, exc) from exc
    width, height = meta.get("size") or (0, 0)
    if width * height > MAX_FRAME_PIXELS:
        reader.close()
        raise FramesError(
            f"{path}: the video is {width}x{height} pixels per frame; the limit is "
            f"{MAX_FRAME_PIXELS / 1e6:.0f} megapixels: scale it down first"
        )
    return meta, reader


def iter_video(path: Path) -> Iterator[np.ndarray]:
    """The frames of a video one at a time (only the current one is held)."""
    meta, reader = open_video(Path(path))
    width, height = meta["size"]
    count = 0
    try:
        for raw in reader:
            yield np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3).copy()
            count += 1
    except (OSError, RuntimeError) as exc:
        raise FramesError(f"{path}: the video could not be decoded after {count} frames ({_first_line(exc)})") from exc
    finally:
        reader.close()


@dataclass(frozen=True)
class FrameTimes:
    stamps: np.ndarray  # [N] seconds at which each frame is shown
    end: float | None  # when the last frame stops being shown, by ffmpeg's count (None: not reported)


def video_timestamps(path: Path) -> FrameTimes | None:
    """The presentation time of every frame ``iter_video`` gives and the end of the last one, read by a
    decode that copies no pixels; None when ffmpeg cannot tell (the caller falls back to the header)."""
    import imageio_ffmpeg

    time_base = ["-enc_time_base:v", "demux" if _ffmpeg_version() >= (7, 0) else "-1"]
    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-stats", "-i", str(path),
        *passthrough_options(), "-c:v", "wrapped_avframe", *time_base, "-f", "framecrc", "-",
    ]  # fmt: skip
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    except (OSError, subprocess.TimeoutExpired):
        return None
    stamps = _parse_framecrc(result.stdout) if result.returncode == 0 else None
    if stamps is None:
        return None
    ends = re.findall(r"time=\s*(\d+):(\d+):(\d+(?:\.\d+)?)", result.stderr)
    end = 3600 * int(ends[-1][0]) + 60 * int(ends[-1][1]) + float(ends[-1][2]) if ends else None
    return FrameTimes(stamps, end)


def _parse_framecrc(text: str) -> np.ndarray | None:
    """Seconds of each frame from ffmpeg's framecrc listing ('#tb 0: 1/15360', then 'stream, dts, pts, ...')."""
    tb, pts = None, []
    for line in text.splitlines():
        if line.startswith("#tb 0:"):
            num, _, den = line.split(":", 1)[1].strip().partition("/")
            tb = int(num) / int(den or 1)
        elif line and not line.startswith("#"):
            fields = [f.strip() for f in line.split(",")]
            if len(fields) < 3 or not re.fullmatch(r"-?\d+", fields[2]):
                return None  # a frame without a timestamp
            pts.append(int(fields[2]))
    if tb is None or not pts or not math.isfinite(tb) or tb <= 0:
        return None
    return np.asarray(pts, np.float64) * tb


# --- any input ------------------------------------------------------------------------------------


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def iter_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """The frames of a video, the sorted images of a folder, or a single image, one at a time."""
    path = Path(path)
    if path.is_dir():
        images = list_images(path)
        if not images:
            raise FramesError(f"{path}: the folder has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        yield from (read_image(p) for p in images)
        return
    if not path.is_file():
        raise FramesError(f"{path}: no such file or folder")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        yield read_image(path)
        return
    count = 0
    for frame in iter_video(path):
        count += 1
        yield frame
    if not count:
        raise FramesError(f"{path}: the video has no frames")


def read_frames(path: str | os.PathLike) -> list[np.ndarray]:
    """All frames of a video, the sorted images of a folder, or a single image (all held: short inputs only;
    ``iter_frames`` streams)."""
    return list(iter_frames(path))
