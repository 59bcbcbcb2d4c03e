from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("INNOUT_SHARED", REPO_ROOT.parent / "shared"))
# The device of the tests that take the `device` fixture (marked `device` automatically):
# INNOUT_TEST_DEVICE=cuda python -m pytest -m device  runs them on a GPU (the device check does).
TEST_DEVICE = os.environ.get("INNOUT_TEST_DEVICE", "cpu")


def requires(*modules: str):
    """Skip a test when an optional package it needs is not installed (the GPU machine, for one, has no
    mediapipe and no imageio-ffmpeg); the core's own tests never need them."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)} (requirements.txt)")


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


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "device" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.device)


@pytest.fixture(scope="session")
def device() -> torch.device:
    """Where device-aware tests run: the CPU, or INNOUT_TEST_DEVICE (skipped when it is not there)."""
    dev = torch.device(TEST_DEVICE)
    if dev.type == "cuda" and not torch.cuda.is_available():
        pytest.skip(f"INNOUT_TEST_DEVICE={TEST_DEVICE} but CUDA is not available")
    return dev


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def tiny_generator():
    """A randomly initialised generator with the tiny fixture's architecture (no files needed): random
    biases and noise strengths and a positive density bias, so scenes have opaque regions and empty space."""
    from innout.eg3d import GeneratorConfig
    from innout.eg3d.random import synthetic_generator

    return synthetic_generator(GeneratorConfig.tiny(), seed=1234, contrast=1.0, grey=False)


@pytest.fixture(scope="session")
def device_generator(tiny_generator, device):
    """``tiny_generator`` on the test device (a copy, so the CPU fixture stays where it is)."""
    import copy

    return tiny_generator if device.type == "cpu" else copy.deepcopy(tiny_generator).to(device)
