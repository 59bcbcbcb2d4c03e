"""Learning a linear edit direction (InterfaceGAN): sample, render, label, fit a linear classifier.

1. Draw latents from a source (for EG3D: z ~ N(0, I) through the mapping network with the frontal
   conditioning camera, f = 4.4652 as In-N-Out's, and truncation), render them, score each image
   with a labeller.
2. Keep the top and the bottom ``fraction`` of the scored samples as positives and negatives.
3. Fit an L2-regularised logistic regression on w (layer 0; sampled ws are the same on every layer),
   hold out a fifth of the pairs to measure its accuracy.
4. The unit normal of the separating hyperplane, pointing towards higher scores, is the direction;
   its scale is the spread of all sampled latents along it, so strength 1 = one standard deviation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from tqdm import tqdm

from ..eg3d.cameras import INO_FOCAL, frontal_label, orbit_label
from ..eg3d.generator import TriPlaneGenerator
from .directions import Direction, DirectionError, latent_space_digest
from .labelers import Labeler


class LatentSource(Protocol):
    num_ws: int
    latent_space: str | None

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """ws [n, num_ws, 512]."""

    def render(self, ws: torch.Tensor) -> list[np.ndarray]:
        """RGB uint8 images of ws."""


class GeneratorSource:
    """Latents and images from an EG3D generator: frontal camera (optionally jittered in yaw/pitch, so
    the direction does not pick up pose), the super-resolved 512 image by default."""

    def __init__(
        self,
        G: TriPlaneGenerator,
        *,
        truncation: float = 0.7,
        super_resolution: bool = True,
        yaw_std: float = 0.0,
        pitch_std: float = 0.0,
    ) -> None:
        self.G = G.eval().requires_grad_(False)
        self.num_ws = G.num_ws
        self.latent_space = latent_space_digest(G)
        self.truncation, self.super_resolution = truncation, super_resolution
        self.yaw_std, self.pitch_std = yaw_std, pitch_std
        self.device = next(G.parameters()).device
        self._generator = torch.Generator().manual_seed(0)

    @property
    def key(self) -> str:
        """What a sample's image depends on besides its latent (``learn-standard``'s cache key)."""
        return (f"eg3d-render truncation={self.truncation} sr={self.super_resolution} yaw_std={self.yaw_std} "
                f"pitch_std={self.pitch_std}")  # fmt: skip

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn(n, self.G.z_dim, generator=generator).to(self.device)
        c = frontal_label(INO_FOCAL).to(self.device).expand(n, -1)
        return self.G.mapping(z, c, truncation_psi=self.truncation)

    @torch.no_grad()
    def render(self, ws: torch.Tensor) -> list[np.ndarray]:
        from ..images import to_uint8

        n = len(ws)
        yaw = torch.randn(n, generator=self._generator) * self.yaw_std
        pitch = torch.randn(n, generator=self._generator) * self.pitch_std
        c = orbit_label(torch.pi / 2 + yaw, torch.pi / 2 + pitch).to(self.device)
        if self.super_resolution:
            images = self.G.synthesis(ws, c, noise_mode="const", sr_noise_mode="const")["image"]
        else:  # the raw neural render only: the super-resolution is most of a sample's cost
            images = self.G.render_planes(self.G.synthesize_planes(ws, noise_mode="const"), c).image_raw
        return [to_uint8(x) for x in images]


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 0.1, iterations: int = 200) -> np.ndarray:
    """Weights [D + 1] (last = bias) of L2-regularised logistic regression (LBFGS)."""
    X = torch.from_numpy(np.concatenate([x, np.ones((len(x), 1))], 1)).double()
    t = torch.from_numpy(y).double()
    w = torch.zeros(X.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=iterations, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(X @ w, t) + l2 * w[:-1].square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy()


def learn_direction(
    name: str,
    source: LatentSource,
    labeler: Labeler,
    *,
    samples: int = 500,
    batch: int = 8,
    fraction: float = 0.25,
    seed: int = 0,
    layers: list[int] | None = None,
    progress: bool = True,
) -> Direction:
    if not 0 < fraction <= 0.5:
        raise DirectionError(f"fraction must be a number in (0, 0.5], got {fraction!r}")
    generator = torch.Generator().manual_seed(seed)
    latents, scores = [], []
    with tqdm(total=samples, desc=f"labelling {name}", disable=not progress) as bar:
        for start in range(0, samples, batch):
            ws = source.sample(min(batch, samples - start), generator)
            scores.append(np.asarray(labeler(source.render(ws)), dtype=np.float64))
            latents.append(ws[:, 0].cpu().double().numpy())
            bar.update(len(ws))
    info = {"labeler": getattr(labeler, "name", type(labeler).__name__), "samples": samples}
    return direction_from_scores(
        name, np.concatenate(latents), np.concatenate(scores), fraction=fraction, seed=seed, layers=layers,
        latent_space=source.latent_space, info=info,
    )  # fmt: skip


@dataclass
class ClassSplit:
    """The top and bottom ``fraction`` of the scored latents as classes, a fifth of them held out."""

    w: np.ndarray  # every scored latent [N, 512]
    scores: np.ndarray  # [N]
    x: np.ndarray  # the class members [2k, 512], centred on the latents' mean
    y: np.ndarray  # 1 = high score
    train: np.ndarray
    held: np.ndarray

    @classmethod
    def of(cls, w: np.ndarray, scores: np.ndarray, fraction: float, seed: int) -> ClassSplit:
        if not 0 < fraction <= 0.5:
            raise DirectionError(f"fraction must be a number in (0, 0.5], got {fraction!r}")
        valid = np.isfinite(scores)
        if valid.sum() < 8:
            raise DirectionError(
                f"the labeller scored only {int(valid.sum())} of {len(scores)} samples (no face found?); "
                "cannot learn a direction"
            )
        w, scores = w[valid], scores[valid]
        k = max(2, int(fraction * len(scores)))
        order = np.argsort(scores, kind="stable")
        members = np.concatenate([order[-k:], order[:k]])
        x = w[members] - w.mean(0)
        y = np.concatenate([np.ones(k), np.zeros(k)])
        perm = np.random.default_rng(seed).permutation(len(x))
        held = perm[: max(1, len(x) // 5)]
        return cls(w, scores, x, y, perm[len(held) :], held)

    def accuracy(self, normal: np.ndarray) -> float:
        """Held-out accuracy of the hyperplane along ``normal`` through the training classes' midpoint."""
        projection = self.x @ normal
        threshold = (projection[self.train][self.y[self.train] > 0.5].mean()
                     + projection[self.train][self.y[self.train] < 0.5].mean()) / 2  # fmt: skip
        return float(((projection[self.held] > threshold) == (self.y[self.held] > 0.5)).mean())

    def spread(self, normal: np.ndarray) -> float:
        """Standard deviation of every scored latent along ``normal``: the direction's scale."""
        return float(((self.w - self.w.mean(0)) @ normal).std())

    def correlation(self, normal: np.ndarray) -> float:
        return float(np.corrcoef((self.w - self.w.mean(0)) @ normal, self.scores)[0, 1])


def classifier_normal(split: ClassSplit) -> tuple[np.ndarray, float]:
    """The unit normal of the logistic-regression hyperplane (towards high scores) and its held-out accuracy."""
    weights = fit_logistic(split.x[split.train], split.y[split.train])
    held = split.x[split.held] @ weights[:-1] + weights[-1] > 0
    accuracy = float((held == (split.y[split.held] > 0.5)).mean())
    return weights[:-1] / np.linalg.norm(weights[:-1]), accuracy


def direction_from_scores(
    name: str,
    w: np.ndarray,
    scores: np.ndarray,
    *,
    fraction: float = 0.25,
    seed: int = 0,
    layers: list[int] | None = None,
    latent_space: str | None = None,
    info: dict | None = None,
) -> Direction:
    """Steps 2-4 of the module's recipe on latents w [N, 512] and their scores [N] (NaN = not scored)."""
    split = ClassSplit.of(np.asarray(w, dtype=np.float64), np.asarray(scores, dtype=np.float64), fraction, seed)
    normal, accuracy = classifier_normal(split)
    return Direction(
        name=name,
        normal=torch.from_numpy(normal).float(),
        scale=split.spread(normal),
        layers=layers,
        latent_space=latent_space,
        info={
            **(info or {}),
            "samples": len(scores),
            "scored": len(split.scores),
            "fraction": fraction,
            "held_out_accuracy": accuracy,
            "score_correlation": split.correlation(normal),
            "seed": seed,
        },
    )
