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


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def tiny_generator():
    """A randomly initialised generator with the tiny fixture's architecture (no files needed)."""
    from innout.eg3d import GeneratorConfig, TriPlaneGenerator

    torch.manual_seed(1234)
    G = TriPlaneGenerator(GeneratorConfig.tiny()).eval().requires_grad_(False)
    with torch.no_grad():  # give noise and biases non-trivial values, as a trained model has
        for name, p in G.named_parameters():
            if name.endswith("noise_strength") or name.endswith(".bias"):
                p.copy_(torch.randn_like(p) * 0.1)
        # make the scene have opaque regions and empty space, like the fixture
        G.decoder.net[2].bias[0] = 2.0
    return G
