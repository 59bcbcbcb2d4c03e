from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("INNOUT_SHARED", REPO_ROOT.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """A file under ../shared, or skip the test saying what is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the shared fixtures/data folder beside the repository)")
    return path


def write_test_clip(path: Path, seconds: int, size: int) -> Path:
    """A 1 fps ffmpeg test-pattern video of ``seconds`` (for the too-long-input checks)."""
    import subprocess

    import imageio_ffmpeg

    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i",
         f"testsrc=size={size}x{size}:rate=1:duration={seconds}", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    return path


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def tiny_generator():
    """A randomly initialised generator with the tiny fixture's architecture (no files needed): random
    biases and noise strengths and a positive density bias, so scenes have opaque regions and empty space."""
    from innout.eg3d import GeneratorConfig
    from innout.fit.synthetic import synthetic_generator

    return synthetic_generator(GeneratorConfig.tiny(), seed=1234, contrast=1.0, grey=False)
