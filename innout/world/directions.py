"""Edit directions of the world's prior, learned from the known attributes of its latents.

The labels are exact (each z's attributes are known: ``prior.attributes_of``), so no image needs scoring:
``AttributeSource`` hands ``learn_direction`` the attribute itself in place of an image. Each direction
also records how much its attribute changes per unit of strength (``attribute_per_strength``: the slope
of the attribute against the latents' position along the direction, times the direction's scale), which is
what the benchmark's edit-fidelity check compares the world against.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from ..edit.directions import Direction, DirectionError, latent_space_digest, save_direction
from ..edit.learn import learn_direction
from ..edit.plan import DemoPlan, register_demo_plan
from ..eg3d.cameras import frontal_label
from ..eg3d.generator import TriPlaneGenerator
from .heads import ATTRIBUTES
from .prior import WORLD_VERSION, Z_DIM, attributes_of

ASSET_DIR = Path(__file__).resolve().parents[2] / "assets" / "world_directions"
DEFAULT_EDITS = ("smile", "mouth_open", "age", "hair_colour", "eye_size")


class AttributeSource:
    """Latents of the prior, each 'rendered' as its known attribute value (an array of one number)."""

    def __init__(self, G: TriPlaneGenerator, attribute: str) -> None:
        if attribute not in ATTRIBUTES:
            raise ValueError(f"unknown attribute {attribute!r} (known: {', '.join(ATTRIBUTES)})")
        self.G, self.attribute = G.eval().requires_grad_(False), attribute
        self.num_ws, self.latent_space = G.num_ws, latent_space_digest(G)
        self.pairs: list[tuple[np.ndarray, float]] = []  # (w, attribute) of every sample, for the slope
        self._last: list[float] = []

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn(n, Z_DIM, generator=generator)
        ws = self.G.mapping(z, frontal_label().expand(n, -1))
        self._last = [float(getattr(a, self.attribute)) for a in attributes_of(z)]
        self.pairs += [(w[0].double().numpy(), v) for w, v in zip(ws, self._last, strict=True)]
        return ws

    def render(self, ws: torch.Tensor) -> list[np.ndarray]:
        """The attributes of the latents ``sample`` just drew (``learn_direction`` renders right after)."""
        return [np.array([v]) for v in self._last]


class WorldSource:
    """Latents of the prior 'rendered' as their known attribute vectors (``learn-standard`` on the world)."""

    key = f"world-attributes v{WORLD_VERSION}"

    def __init__(self, G: TriPlaneGenerator) -> None:
        self.G = G.eval().requires_grad_(False)
        self.num_ws, self.latent_space = G.num_ws, latent_space_digest(G)
        self._last: list[np.ndarray] = []

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn(n, Z_DIM, generator=generator)
        self._last = [a.as_tensor().double().numpy() for a in attributes_of(z)]
        return self.G.mapping(z, frontal_label().expand(n, -1))

    def render(self, ws: torch.Tensor) -> list[np.ndarray]:
        return list(self._last)


class WorldLabellers:
    """The exact attributes of ``WorldSource``'s observations, optionally with Gaussian label noise of
    ``noise`` times each attribute's spread (to see how a noisy labeller's directions behave)."""

    def __init__(self, names=DEFAULT_EDITS, *, noise: float = 0.0, seed: int = 0) -> None:
        unknown = [n for n in names if n not in ATTRIBUTES]
        if unknown:
            known = ", ".join(ATTRIBUTES)
            raise DirectionError(f"no world attribute named {', '.join(unknown)} (known: {known})")
        self.names, self.noise = tuple(names), noise
        self.key = f"world:{','.join(names)} noise={noise} seed={seed}"
        self.columns = [list(ATTRIBUTES).index(n) for n in names]
        self.rng = np.random.default_rng(seed)

    def __call__(self, observations) -> np.ndarray:
        values = np.stack(observations)[:, self.columns]
        if self.noise:
            spread = np.array([(hi - lo) / math.sqrt(12) for lo, hi in (ATTRIBUTES[n] for n in self.names)])
            values = values + self.rng.normal(size=values.shape) * self.noise * spread
        return values


def attribute_labeler(arrays: list[np.ndarray]) -> list[float]:
    return [float(a[0]) for a in arrays]


attribute_labeler.name = "world attribute (exact)"  # type: ignore[attr-defined]


def learn_world_direction(G: TriPlaneGenerator, attribute: str, *, samples: int = 2000, seed: int = 0) -> Direction:
    source = AttributeSource(G, attribute)
    direction = learn_direction(attribute, source, attribute_labeler, samples=samples, batch=250, seed=seed,
                                progress=False)  # fmt: skip
    w = np.stack([p[0] for p in source.pairs])
    a = np.array([p[1] for p in source.pairs])
    projection = (w - w.mean(0)) @ direction.normal.double().numpy()
    slope = float(np.cov(projection, a)[0, 1] / projection.var(ddof=1))
    direction.info["attribute_per_strength"] = slope * direction.scale
    direction.info["attribute"] = attribute
    return direction


def learn_world_directions(
    G: TriPlaneGenerator, out_dir: str | os.PathLike = ASSET_DIR, attributes=DEFAULT_EDITS, samples: int = 2000
) -> list[Path]:
    out = Path(out_dir)
    return [save_direction(learn_world_direction(G, a, samples=samples), out / f"{a}.safetensors") for a in attributes]


def _standard_plan(G, names: list[str], root: Path):
    """The faces demo's standard set: the prior's latents labelled by the world's exact attributes."""
    from ..edit.plan import StandardPlan

    what = "the world prior's exact attributes"
    return StandardPlan(WorldSource(G), [WorldLabellers(names)], names, root / "demo-faces", what, "faces")


register_demo_plan("faces", DemoPlan(DEFAULT_EDITS, _standard_plan))
