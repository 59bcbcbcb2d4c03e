"""Helpers the benchmarks share for measuring in other processes: peak memory of a fresh Python process, and
media made at run time by ffmpeg (nothing large is committed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_CLIP = REPO / "assets" / "examples" / "lp_d19_eyeglasses_talking.mp4"


class MeasurementError(RuntimeError):
    """A measurement could not be made: the measured process died (a crash, or killed for memory), or ffmpeg failed."""


def peak_rss_mb(code: str, timeout: float = 300) -> tuple[float, str]:
    """Run ``code`` in a fresh Python process; returns its peak resident memory (MB) and its last output line.
    The process prints its own peak (``innout.runtime.peak_memory_mb``: VmHWM, not ``ru_maxrss``, which a child
    inherits from its parent) at exit, so the figure covers that process alone."""
    wrapper = (
        "import atexit, sys\n"
        "from innout.runtime import peak_memory_mb\n"
        "atexit.register(lambda: print(f'__peak_mb__ {peak_memory_mb()}', file=sys.stderr))\n" + code
    )
    result = subprocess.run(
        [sys.executable, "-c", wrapper], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    peak = [line for line in result.stderr.splitlines() if line.startswith("__peak_mb__")]
    if not peak:
        raise MeasurementError(f"the process died (status {result.returncode}): {result.stderr[-500:]}")
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line and not line.startswith("__peak")]
    return float(peak[-1].split()[1]), lines[-1] if lines else ""


def ffmpeg(*args: object) -> None:
    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-y", "-v", "error", *map(str, args)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode:
        raise MeasurementError(f"ffmpeg could not make the input: {result.stderr.strip()[-300:]}")
