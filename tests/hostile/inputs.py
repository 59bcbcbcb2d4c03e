"""Robustness cases: inputs (see tests/hostile/cases.py).

Media a user may hand to ``prepare`` (the command line, the app, the API): a variable-frame-rate clip,
images of every bit depth and layout, broken or fake files, image headers declaring 144 megapixels (over
the project's limit) and 10 gigapixels (over Pillow's),
out-of-range frame selections and options. All are made at run time from the face clip the repository
ships (assets/examples), so no case needs the shared data folder.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from innout.bench.processes import EXAMPLE_CLIP, ffmpeg, peak_rss_mb

from .cases import Case, CaseFailed, run_cli


def vfr_clip(path: Path, *, size: int = 256, burst: int = 6, every: int = 9, frames: int = 90) -> list[float]:
    """A variable-frame-rate face clip from the example (30 fps): its first ``burst`` frames, then every
    ``every``-th one of its first ``frames``, each keeping its time. Returns those times (seconds); ffmpeg's
    default constant-rate reading turns such a clip into many duplicated frames."""
    kept = [n for n in range(frames) if n < burst or (n - burst) % every == 0]
    select = f"lt(n\\,{burst})+gte(n\\,{burst})*lt(n\\,{frames})*not(mod(n-{burst}\\,{every}))"
    ffmpeg(
        "-i", EXAMPLE_CLIP, "-vf", f"select='{select}',scale={size}:{size}", "-fps_mode", "vfr", "-an",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", path,
    )  # fmt: skip
    return [n / 30 for n in kept]


def face_frame(size: int = 480) -> np.ndarray:
    """The first frame of the example clip (a face), as 8-bit RGB."""
    import cv2

    from innout.frames import iter_video

    frame = next(iter_video(EXAMPLE_CLIP))
    return frame if frame.shape[0] == size else cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header declares ``width`` x ``height`` RGB pixels (its data is a few bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def prepare_cli(folder: Path, source: Path, *options: object, preview: bool = False) -> str:
    argv = ["prepare", source, folder / "out", "--cache-dir", folder / "cache", *options]
    return run_cli(argv if preview else [*argv, "--no-preview"])


# --- variable frame rate ----------------------------------------------------------------------------------
def vfr_keeps_frames_and_times(folder: Path) -> str:
    import imageio_ffmpeg

    from innout.preprocess import prepare

    times = vfr_clip(folder / "vfr.mp4")
    prepare_cli(folder, folder / "vfr.mp4", preview=True)
    labels = json.loads((folder / "out" / "dataset.json").read_text())["labels"]
    fps = json.loads((folder / "out" / "prepare.json").read_text())["fps"]
    _, duration = imageio_ffmpeg.count_frames_and_secs(str(folder / "vfr.mp4"))  # ffmpeg's own count
    if len(labels) != len(times):
        raise CaseFailed(f"{len(labels)} frames prepared, the clip has {len(times)}")
    if abs(len(times) / fps - duration) > 0.05:
        raise CaseFailed(
            f"{len(times)} frames at {fps:.3f} fps last {len(times) / fps:.2f} s, the clip {duration:.2f} s"
        )
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(folder / "out" / "preview.mp4"))
    if frames != len(times) or abs(seconds - duration) > 0.2:
        raise CaseFailed(
            f"the preview has {frames} frames over {seconds:.2f} s; the clip {len(times)}, {duration:.2f} s"
        )
    pv = prepare(folder / "vfr.mp4", cache_dir=folder / "cache", progress=False)  # the cached entry
    if pv.timestamps is None or np.abs(np.asarray(pv.timestamps) - times).max() > 1e-3:
        raise CaseFailed(f"frame times {pv.timestamps} are not the clip's {times}")
    return f"{len(labels)} frames at {fps:.2f} fps over {len(labels) / fps:.2f} s, each at its source time"


# --- images of every kind ---------------------------------------------------------------------------------
def gray16_matches_gray8(folder: Path) -> str:
    import cv2

    from innout.frames import read_frames

    gray = cv2.cvtColor(face_frame(), cv2.COLOR_RGB2GRAY)
    cv2.imwrite(str(folder / "gray8.png"), gray)
    cv2.imwrite(str(folder / "gray16.png"), gray.astype(np.uint16) * 257)
    if not np.array_equal(read_frames(folder / "gray16.png")[0], read_frames(folder / "gray8.png")[0]):
        raise CaseFailed("the 16-bit image reads differently from its 8-bit original")
    prepare_cli(folder, folder / "gray16.png")
    crop16 = cv2.imread(str(folder / "out" / "frames" / "img00000000.png"))
    (folder / "cache").rename(folder / "cache16")
    prepare_cli(folder, folder / "gray8.png")
    crop8 = cv2.imread(str(folder / "out" / "frames" / "img00000000.png"))
    if crop16 is None or not np.array_equal(crop16, crop8):
        raise CaseFailed("the 16-bit image's crop differs from the 8-bit one's")
    return "prepared; the crop is the 8-bit image's, pixel for pixel"


def image_kind(name: str, write: Callable[[Path, np.ndarray], Path], expected: Callable[[np.ndarray], np.ndarray],
               tolerance: int = 0) -> Case:  # fmt: skip
    """Write the face frame as ``name``; the loader must give ``expected(frame)`` (within ``tolerance``)."""

    def run(folder: Path) -> str:
        from innout.frames import read_frames

        frame = face_frame(256)
        path = write(folder, frame)
        got = read_frames(path)[0]
        want = expected(frame)
        if got.shape != want.shape or got.dtype != np.uint8:
            raise CaseFailed(f"read as {got.dtype} {got.shape}, expected uint8 {want.shape}")
        error = int(np.abs(got.astype(int) - want).max())
        if error > tolerance:
            raise CaseFailed(f"pixels differ by up to {error} from the expected 8-bit RGB")
        return f"read as 8-bit RGB {got.shape[1]}x{got.shape[0]} (largest difference {error})"

    return Case(f"inputs/{name}", "ok", run)


def _cv2_write(name: str, convert: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path, np.ndarray], Path]:
    def write(folder: Path, frame: np.ndarray) -> Path:
        import cv2

        cv2.imwrite(str(folder / name), convert(frame))
        return folder / name

    return write


def _pil_write(name: str, mode: str) -> Callable[[Path, np.ndarray], Path]:
    def write(folder: Path, frame: np.ndarray) -> Path:
        from PIL import Image

        Image.fromarray(frame).convert(mode).save(folder / name)
        return folder / name

    return write


def _pil_expected(mode: str) -> Callable[[np.ndarray], np.ndarray]:
    def expected(frame: np.ndarray) -> np.ndarray:
        from PIL import Image

        return np.asarray(Image.fromarray(frame).convert(mode).convert("RGB"))

    return expected


def _float_tiff(folder: Path, frame: np.ndarray) -> Path:
    import tifffile

    tifffile.imwrite(folder / "float.tif", frame.astype(np.float32) / 255)
    return folder / "float.tif"


def _float_gray_expected(frame: np.ndarray) -> np.ndarray:
    """Pillow's float luminance (0..255) rounded, as grey RGB."""
    from PIL import Image

    grey = np.asarray(Image.fromarray(frame).convert("F")).clip(0, 255).round().astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


IMAGE_CASES = [
    image_kind("png-16bit-rgb", _cv2_write("rgb16.png", lambda f: f[..., ::-1].astype(np.uint16) * 257), lambda f: f),
    image_kind("png-16bit-rgba", _cv2_write(
        "rgba16.png", lambda f: np.dstack([f[..., ::-1], f[..., :1]]).astype(np.uint16) * 257), lambda f: f),
    image_kind("png-rgba", _pil_write("rgba.png", "RGBA"), lambda f: f),
    image_kind("png-gray-alpha", _pil_write("la.png", "LA"), _pil_expected("L")),
    image_kind("png-palette", _pil_write("palette.png", "P"), _pil_expected("P")),
    image_kind("png-1bit", _pil_write("bw.png", "1"), _pil_expected("1")),
    image_kind("tiff-float-rgb", _float_tiff, lambda f: f),
    image_kind("tiff-float-gray", _pil_write("gray.tif", "F"), _float_gray_expected),
    image_kind("jpeg-cmyk", _pil_write("cmyk.jpg", "CMYK"), lambda f: f, tolerance=60),
]  # fmt: skip


# --- broken, fake and hostile files -----------------------------------------------------------------------
def made_by(make: Callable[[Path], Path], *options: object) -> Callable[[Path], str]:
    """Run ``prepare`` on what ``make(folder)`` writes."""

    def run(folder: Path) -> str:
        return prepare_cli(folder, make(folder), *options)

    return run


def empty_file(name: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        (folder / name).write_bytes(b"")
        return folder / name

    return make


def text_file(name: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        (folder / name).write_text("this is a text file, not media\n" * 20)
        return folder / name

    return make


def truncated_clip(fraction: float, faststart: bool = False) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        source = EXAMPLE_CLIP
        if faststart:
            ffmpeg("-i", EXAMPLE_CLIP, "-c", "copy", "-movflags", "faststart", folder / "fast.mp4")
            source = folder / "fast.mp4"
        data = source.read_bytes()
        (folder / "cut.mp4").write_bytes(data[: int(len(data) * fraction)])
        return folder / "cut.mp4"

    return make


def truncated_keeps_what_is_there(folder: Path) -> str:
    """A clip cut short after its index (moov first): the frames that are there, with a warning."""
    from innout.preprocess import open_media

    media = open_media(truncated_clip(0.6, faststart=True)(folder))
    count = sum(1 for _ in media.frames())
    known = len(media.timing.times) if media.timing else -1
    if not 0 < count < 250 or count != known:
        raise CaseFailed(f"{count} frames decoded of the 250 the index lists ({known} timed)")
    return f"{count} of the 250 frames the index lists are there and were read ({media.timing.duration:.1f} s)"


def audio_only(folder: Path) -> Path:
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", folder / "song.mp4")
    return folder / "song.mp4"


def huge_png(folder: Path) -> Path:
    """A header of 12000 x 12000 (144 megapixels): over the project's 100-megapixel limit (``frames.py``)
    and under the size at which Pillow refuses by itself (twice its ``MAX_IMAGE_PIXELS``, 179 megapixels;
    it only warns), so the project's own check is what refuses it."""
    return png_claiming(folder / "huge.png", 12_000, 12_000)


def giant_png(folder: Path) -> Path:
    """A header of 100000 x 100000 (10 gigapixels): Pillow's ``DecompressionBombError``, in the project's words."""
    return png_claiming(folder / "giant.png", 100_000, 100_000)


def folder_of(*makers: Callable[[Path], Path]) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        frames = folder / "frames"
        frames.mkdir()
        for make_one in makers:
            make_one(frames)
        return frames

    return make


def face_png(name: str, size: int) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        import cv2

        cv2.imwrite(str(folder / name), face_frame(size)[..., ::-1])
        return folder / name

    return make


def huge_png_refused_without_memory(folder: Path) -> str:
    """The refusal comes from the header, before any pixel buffer: a fresh process stays small."""
    path = huge_png(folder)
    code = (  # the outcome is printed last on stderr, after Pillow's DecompressionBombWarning
        "import sys\nfrom innout.frames import read_frames\n"
        f"try:\n    read_frames({str(path)!r})\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc, file=sys.stderr)\n"
    )
    from innout.frames import FramesError

    peak, last = peak_rss_mb(code, timeout=120)
    if not last.startswith("FramesError"):
        raise CaseFailed(f"not refused: {last}")
    if peak > 1000:
        raise CaseFailed(f"refusing took {peak:.0f} MB")
    raise FramesError(f"{last.split(' ', 1)[1]} (in a fresh process, peak memory {peak:.0f} MB)")


def stream_stays_small(folder: Path) -> str:
    """Decoding a 720p clip frame by frame holds one frame: memory must not grow with the clip."""
    frames, width, height = 150, 1280, 720
    clip = folder / "long.mp4"
    ffmpeg("-f", "lavfi", "-i", f"testsrc=size={width}x{height}:rate=30", "-frames:v", frames,
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", clip)  # fmt: skip
    code = (
        "from innout.runtime import peak_memory_mb\n"
        "from innout.preprocess.media import open_media\n"
        "media = open_media(" + repr(str(clip)) + ")\n"
        "before = peak_memory_mb()\n"
        "count = sum(1 for _ in media.frames())\n"
        "after = peak_memory_mb()\n"
        "print(count, round(after - before))\n"
    )
    _, last = peak_rss_mb(code, timeout=300)
    count, grown = (int(v) for v in last.split())
    whole = frames * width * height * 3 / 2**20
    if count != frames or grown > 0.1 * whole:
        raise CaseFailed(f"{count} frames decoded; memory grew {grown} MB (the whole clip is {whole:.0f} MB)")
    return f"{count} frames of {width}x{height} decoded; memory grew {grown} MB (whole clip: {whole:.0f} MB)"


# --- frame selection and options --------------------------------------------------------------------------
def options_api(**options: object) -> Callable[[Path], str]:
    """``PrepareOptions`` made by the API itself (the app and ``fit_video`` take them so)."""

    def run(folder: Path) -> str:
        from innout.preprocess import PrepareOptions, prepare

        path = face_png("face.png", 128)(folder)
        return str(prepare(path, PrepareOptions(**options), cache_dir=folder / "cache", progress=False))

    return run


def load_media_api(**selection: object) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        from innout.preprocess import load_media

        media = load_media(face_png("face.png", 64)(folder), **selection)
        return f"{len(media.frames)} frames"

    return run


PHOTO = face_png("face.png", 256)

SEE = r"not a readable {} \({}"  # the reader's refusal and its reason, e.g. SEE.format("video", "the file is")
MEGAPIXELS = r"the image is \d+x\d+ pixels \(\d+ megapixels\); the limit is 100 megapixels"  # frames._too_large
ARG = r"argument {}: must be "  # an option's own range check (argparse)


def refused(name: str, run: Callable[[Path], str], match: str) -> Case:
    """``match``: a regular expression of the refusal's message that names the check the case is about."""
    return Case(f"inputs/{name}", "refused", run, match=match)


CASES: list[Case] = [
    Case("inputs/vfr-clip", "ok", vfr_keeps_frames_and_times),
    Case("inputs/png-16bit-gray", "ok", gray16_matches_gray8),
    *IMAGE_CASES,
    refused("video-empty-file", made_by(empty_file("empty.mp4")), SEE.format("video", r"the file is empty\)")),
    refused("video-text-file", made_by(text_file("notes.mp4")), SEE.format("video", "no video index")),
    refused("video-truncated", made_by(truncated_clip(0.5)), SEE.format("video", "no video index")),
    refused("video-truncated-header", made_by(truncated_clip(0.01, faststart=True)),
            SEE.format("video", ".*End of file")),
    Case("inputs/video-truncated-after-index", "ok", truncated_keeps_what_is_there),
    refused("video-audio-only", made_by(audio_only), SEE.format("video", "it has no video stream")),
    refused("png-zero-bytes", made_by(empty_file("face.png")), SEE.format("image", r"the file is empty\)")),
    refused("png-text-file", made_by(text_file("face.png")), SEE.format("image", "not a valid image file")),
    refused("png-huge-header", made_by(huge_png), r"huge\.png: " + MEGAPIXELS),
    refused("png-huge-header-memory", huge_png_refused_without_memory, r"huge\.png: " + MEGAPIXELS),
    refused("png-header-beyond-pillow-limit", made_by(giant_png),
            r"giant\.png: the image declares \d+ megapixels; the limit is 100 megapixels"),
    refused("folder-empty", made_by(folder_of()), r"frames: the folder has no images"),
    refused("folder-mixed-sizes", made_by(folder_of(face_png("a.png", 128), face_png("b.png", 96))),
            r"b\.png in frames is 96x96 pixels but the first frame is 128x128: every frame must have the same size"),
    refused("folder-broken-image", made_by(folder_of(face_png("a.png", 128), empty_file("b.png"))),
            r"b\.png: " + SEE.format("image", r"the file is empty\)")),
    refused("missing-file", made_by(lambda folder: folder / "nowhere.mp4"), r"nowhere\.mp4: no such file or folder"),
    Case("inputs/video-decoded-as-a-stream", "ok", stream_stays_small),
    refused("max-frames-0", made_by(PHOTO, "--max-frames", 0), ARG.format("--max-frames") + "an integer >= 1"),
    refused("max-frames-negative", made_by(PHOTO, "--max-frames", -1), ARG.format("--max-frames") + "an integer >= 1"),
    refused("stride-0", made_by(PHOTO, "--stride", 0), ARG.format("--stride") + "an integer >= 1"),
    refused("stride-negative", made_by(PHOTO, "--stride", -3), ARG.format("--stride") + "an integer >= 1"),
    refused("landmark-smoothing-nan", made_by(PHOTO, "--landmark-smoothing", "nan"),
            ARG.format("--landmark-smoothing") + "a finite number"),
    refused("camera-smoothing-negative", made_by(PHOTO, "--camera-smoothing", -1),
            ARG.format("--camera-smoothing") + "a finite number >= 0"),
    refused("crop-offset-smoothing-inf", made_by(PHOTO, "--crop-offset-smoothing", "inf"),
            ARG.format("--crop-offset-smoothing") + "a finite number"),
    refused("max-gap-negative", made_by(PHOTO, "--max-gap", -1), ARG.format("--max-gap") + "an integer >= 0"),
    refused("api-max-frames-0", options_api(max_frames=0), r"^max_frames must be an integer >= 1, or none, got 0"),
    refused("api-stride-fraction", options_api(stride=1.5), r"^stride must be an integer >= 1, got 1\.5"),
    refused("api-min-face-fraction-0", options_api(min_face_fraction=0.0),
            r"^min_face_fraction must be a finite number > 0 and <= 1, got 0\.0"),
    refused("api-min-face-fraction-above-1", options_api(min_face_fraction=1.5),
            r"^min_face_fraction must be a finite number > 0 and <= 1, got 1\.5"),
    refused("api-max-faces-0", options_api(max_faces=0), r"^max_faces must be an integer >= 1"),
    refused("api-smoothing-huge", options_api(landmark_smoothing=1e12),
            r"^landmark_smoothing must be a finite number >= 0 and <= 1000"),
    refused("load-media-max-frames-0", load_media_api(max_frames=0),
            r"^max_frames must be an integer >= 1, or none, got 0"),
    refused("load-media-stride-negative", load_media_api(stride=-1), r"^stride must be an integer >= 1, got -1"),
]  # fmt: skip
