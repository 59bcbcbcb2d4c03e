"""Untrained generators with random weights: fixtures for tests and benchmarks, and a way to try the flow where
no EG3D weights are at hand (their images are noise, not faces)."""

from __future__ import annotations

import torch

from .config import GeneratorConfig
from .generator import TriPlaneGenerator


def synthetic_generator(
    config: GeneratorConfig | None = None, seed: int = 1234, contrast: float = 4.0, grey: bool = True
) -> TriPlaneGenerator:
    """A random generator whose scenes have opaque regions and empty space (random biases and noise
    strengths, a positive density bias), as a trained one has. ``contrast`` scales the decoder's
    colour outputs (a random decoder gives nearly flat images). With ``grey`` its RGB channels are tied,
    so it can only make grey images: a coloured object is then truly out of its distribution, as
    face paint is for EG3D, instead of something a random W+ code can imitate."""
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        G = TriPlaneGenerator(config or GeneratorConfig.tiny()).eval().requires_grad_(False)
        with torch.no_grad():
            for name, p in G.named_parameters():
                if name.endswith("noise_strength") or name.endswith(".bias"):
                    p.copy_(torch.randn_like(p) * 0.1)
            G.decoder.net[2].bias[0] = 2.0
            G.decoder.net[2].weight[1:] *= contrast
            if grey:  # output 0 is density, 1-3 the RGB features
                G.decoder.net[2].weight[2:4] = G.decoder.net[2].weight[1]
                G.decoder.net[2].bias[2:4] = G.decoder.net[2].bias[1]
    finally:
        torch.random.set_rng_state(state)
    return G


RANDOM_GENERATORS = ("tiny", "ffhq")


def random_generator(kind: str, seed: int = 0) -> TriPlaneGenerator:
    """An untrained generator (random weights) for trying the flow without EG3D weights: 'tiny' is the
    fixture architecture, 'ffhq' the full FFHQ 512-128 one. Its faces are noise, not faces."""
    if kind not in RANDOM_GENERATORS:
        raise ValueError(f"random generator must be one of {RANDOM_GENERATORS}, got {kind!r}")
    config = GeneratorConfig.tiny() if kind == "tiny" else GeneratorConfig.ffhq512()
    return synthetic_generator(config, seed=seed, contrast=1.0, grey=False)
