"""``python -m innout.bench memory``: peak memory of reading and preparing a long high-resolution clip.

Makes a clip at run time (default 60 s of 1920x1080 at 30 fps, the app's longest input: the example face
clip of assets/examples looped and scaled by ffmpeg), then measures in fresh processes, one line each:

- ``memory/decode``: streaming every frame of the clip (``open_media(...).frames()``), nothing kept;
- ``memory/prepare``: ``prepare`` with an empty cache (landmarks pass, crops pass into the cache entry).

Each line gives the Python process's peak resident memory (VmHWM, which counts the pages of the
memory-mapped crops it reads) and, apart, the largest ffmpeg child's; the frames held whole would take
``frames x height x width x 3`` bytes (printed as ``whole``). ``--decode-only`` skips the prepare run
(about 1 s a frame on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from .processes import EXAMPLE_CLIP, ffmpeg, peak_rss_mb

REPORT = (  # the measured code ends with report(frames, started): its figures go to a file (logs can follow)
    "import json, resource, sys, time\n"
    "def report(count, started):\n"
    "    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
    "    figures = {{'frames': count, 'seconds': time.perf_counter() - started, 'child_mb': kids}}\n"
    "    open({path!r}, 'w').write(json.dumps(figures))\n"
)


def make_clip(path: Path, seconds: float, width: int, height: int, fps: int) -> Path:
    """The example face clip looped to ``seconds``, scaled and cropped to ``width`` x ``height``."""
    scale = f"scale={width}:{height}:force_original_aspect_ratio=increase,crop={width}:{height}"
    ffmpeg(
        "-stream_loop", "-1", "-i", EXAMPLE_CLIP, "-t", seconds, "-vf", scale, "-r", fps, "-an",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", path,
    )  # fmt: skip
    return path


def measure(name: str, code: str, folder: Path, whole_mb: float, config: str, timeout: float) -> None:
    figures_file = folder / f"{name}.json"
    peak, last = peak_rss_mb(REPORT.format(path=str(figures_file)) + code, timeout=timeout)
    if not figures_file.is_file():
        raise RuntimeError(f"the {name} run ended without its figures: {last}")
    figures = json.loads(figures_file.read_text())
    print(
        f"memory/{name}: peak_rss={peak:.0f}MB ffmpeg_child_peak={figures['child_mb']:.0f}MB "
        f"frames={figures['frames']} whole={whole_mb:.0f}MB time={figures['seconds']:.0f}s | {config}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m innout.bench memory", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="clip length (default: 60)")
    parser.add_argument("--size", default="1920x1080", help="clip frame size WxH (default: 1920x1080)")
    parser.add_argument("--fps", type=int, default=30, help="clip frame rate (default: 30)")
    parser.add_argument("--clip", type=Path, default=None, help="measure this video instead of making one")
    parser.add_argument("--decode-only", action="store_true", help="skip the (slow) prepare run")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="innout-memory-") as folder:
        clip = args.clip or make_clip(Path(folder) / "long.mp4", args.seconds, width, height, args.fps)
        from ..preprocess.media import open_media

        media = open_media(clip)
        frames = media.expected_count() or 0
        height, width = next(media.frames())[1].shape[:2]
        whole = frames * width * height * 3 / 2**20
        config = (
            f"clip={clip.name if args.clip else 'example looped'} {width}x{height} {frames} frames "
            f"{media.timing.duration if media.timing else 0:.0f}s {media.fps:g}fps "
            f"machine={platform.machine()} {__import__('os').cpu_count()} cores"
        )
        stream = (
            "from innout.preprocess.media import open_media\n"
            f"started = time.perf_counter()\nmedia = open_media({str(clip)!r})\n"
            "report(sum(1 for _ in media.frames()), started)\n"
        )
        measure("decode", stream, Path(folder), whole, config, timeout=3600)
        if not args.decode_only:
            prepare = (
                "from innout.preprocess import prepare\n"
                f"started = time.perf_counter()\n"
                f"pv = prepare({str(clip)!r}, cache_dir={str(Path(folder) / 'cache')!r}, progress=False)\n"
                "report(len(pv) + len(pv.dropped), started)\n"
            )
            measure("prepare", prepare, Path(folder), whole, config, timeout=4 * 3600)
    print(f"# {time.strftime('%Y-%m-%d')}")
    return 0
