"""The standard edit directions of a generator, learned on the user's machine: ``learn-standard``.

One pass labels every sample for every edit at once: latents are drawn in seeded batches, rendered
once, and scored by every labeller (face mesh: smile, mouth_open, eyes_open and the head's yaw and pitch;
CLIP zero-shot contrasts: age, glasses, gender, blond hair). Each batch is saved as it is finished
(``.samples/KEY/batch-NNNNN.npz``, KEY = the generator's latent space, the renders and the labellers), so
a run cut off resumes where it stopped and a later run with more samples reuses the earlier batches.

Each direction is the InterfaceGAN classifier of its scores (``innout.edit.learn``), then conditioned on
pose: the components along the yaw and pitch directions learned from the same samples are projected out,
so that moving "smile" does not turn the head. Its record keeps the held-out accuracy, the cosines with
the pose directions before the projection and how many samples were scored.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ..places import directions_dir
from .directions import Direction, DirectionError, save_direction, without_span
from .learn import ClassSplit, classifier_normal

FACE_MESH_EDITS = ("smile", "mouth_open", "eyes_open")
POSE = ("yaw", "pitch")
CLIP_EDITS: dict[str, tuple[str, str]] = {  # name: (the high end's prompt, the low end's)
    "age": ("an old person", "a young person"),
    "glasses": ("a person wearing eyeglasses", "a person without glasses"),
    "gender": ("a man", "a woman"),
    "blond_hair": ("a person with blond hair", "a person with dark hair"),
}
SAMPLES_DIR = ".samples"
Progress = Callable[[int, int], None]  # (samples labelled, samples wanted)


class Labellers(Protocol):
    """Scores [N, len(names)] of N observations (NaN where it cannot tell); ``key`` names what it computes."""

    names: tuple[str, ...]
    key: str

    def __call__(self, observations: Sequence) -> np.ndarray: ...


class SampleSource(Protocol):
    num_ws: int
    latent_space: str | None
    key: str  # what the observations depend on besides the latents (renderer settings)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor: ...

    def render(self, ws: torch.Tensor) -> list: ...


class FaceMeshLabellers:
    """Face-mesh scores (``innout.edit.labelers.SCORES``) of the largest face, one detection per image."""

    def __init__(self, names: Sequence[str] = (*FACE_MESH_EDITS, *POSE)) -> None:
        from .labelers import SCORES, LandmarkLabeler

        unknown = [n for n in names if n not in SCORES]
        if unknown:
            raise DirectionError(f"no face-mesh score named {', '.join(unknown)} (known: {', '.join(SCORES)})")
        self.names, self.key = tuple(names), "facemesh:" + ",".join(names)
        self.detector = LandmarkLabeler(names[0])
        self.scores = [SCORES[n] for n in names]

    def __call__(self, images: Sequence[np.ndarray]) -> np.ndarray:
        out = np.full((len(images), len(self.names)), np.nan)
        for i, image in enumerate(images):
            points = self.detector.landmarks(np.asarray(image))
            if points is not None:
                out[i] = [score(points) for score in self.scores]
        return out


class CLIPContrastLabellers:
    """CLIP zero-shot contrasts: cos(image, "A portrait of X") - cos(image, "A portrait of Y") per edit."""

    def __init__(self, weights: str | os.PathLike, edits: dict[str, tuple[str, str]] | None = None) -> None:
        from .clip import load_clip

        edits = dict(CLIP_EDITS if edits is None else edits)
        self.names = tuple(edits)
        self.model, self.tokenizer, self.preprocess = load_clip(weights)
        prompts = [f"A portrait of {text}" for pair in edits.values() for text in pair]
        self.key = "clip:" + hashlib.sha256(json.dumps([str(weights), prompts]).encode()).hexdigest()[:12]
        text = torch.stack([self.model.encode_text(self.tokenizer(p), self.tokenizer.end) for p in prompts])
        self.text = text.reshape(len(edits), 2, -1)

    def __call__(self, images: Sequence[np.ndarray]) -> np.ndarray:
        from .clip import clip_pixels

        pre = self.preprocess
        pixels = clip_pixels([np.asarray(i) for i in images], pre["size"], pre["mean"], pre["std"])
        similarity = torch.einsum("nd,kpd->nkp", self.model.encode_images(pixels), self.text)
        return (similarity[..., 0] - similarity[..., 1]).double().numpy()


@dataclass
class StandardResult:
    directions: dict[str, Direction]
    seconds_per_sample: float  # measured in this run (NaN when every batch came from the cache)
    cached_samples: int
    paths: list[Path] = field(default_factory=list)


def samples_key(source: SampleSource, labellers: Sequence[Labellers], seed: int, batch: int) -> str:
    parts = [source.latent_space or "", source.key, *[lab.key for lab in labellers], str(seed), str(batch)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _batch_seed(seed: int, index: int) -> int:
    return (seed * 1_000_003 + index) % (2**63)


def _write_batch(path: Path, w: np.ndarray, scores: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, w=w.astype(np.float32), scores=scores.astype(np.float64))
    os.replace(tmp, path)  # a batch is on disk whole or not at all


def _read_batch(path: Path, size: int, columns: int) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            w, scores = np.asarray(data["w"]), np.asarray(data["scores"])
    except (OSError, ValueError, KeyError, EOFError):
        return None
    if w.shape != (size, 512) or scores.shape != (size, columns) or not np.isfinite(w).all():
        return None
    return w, scores


def label_samples(
    source: SampleSource,
    labellers: Sequence[Labellers],
    *,
    samples: int,
    batch: int = 8,
    seed: int = 0,
    cache: Path | None = None,
    progress: Progress | None = None,
    on_estimate: Callable[[float, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str], float, int]:
    """(w [N, 512], scores [N, K], column names, seconds per new sample, samples read from the cache).
    ``on_estimate(seconds_per_sample, samples_left)`` is called once, after the first batch computed here."""
    names = [n for lab in labellers for n in lab.names]
    folder = None
    if cache is not None:
        folder = cache / SAMPLES_DIR / samples_key(source, labellers, seed, batch)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "columns.json").write_text(json.dumps(names))
    ws_all, scores_all, cached, seconds, computed = [], [], 0, 0.0, 0
    n_batches = math.ceil(samples / batch)
    for index in range(n_batches):
        size = min(batch, samples - index * batch)
        path = folder / f"batch-{index:05d}.npz" if folder is not None else None
        stored = _read_batch(path, size, len(names)) if path is not None and path.is_file() else None
        if stored is not None:
            w, scores = stored
            cached += size
        else:
            started = time.perf_counter()
            generator = torch.Generator().manual_seed(_batch_seed(seed, index))
            ws = source.sample(size, generator)
            observations = source.render(ws)
            scores = np.concatenate([np.asarray(lab(observations), dtype=np.float64) for lab in labellers], axis=1)
            w = ws[:, 0].detach().cpu().double().numpy()
            if path is not None:
                _write_batch(path, w, scores)
            seconds += time.perf_counter() - started
            computed += size
            if computed == size and on_estimate is not None:
                on_estimate(seconds / size, samples - index * batch - size)
        ws_all.append(w)
        scores_all.append(scores)
        if progress is not None:
            progress(min(samples, (index + 1) * batch), samples)
    per_sample = seconds / computed if computed else float("nan")
    return np.concatenate(ws_all), np.concatenate(scores_all), names, per_sample, cached


def pose_conditioned(
    name: str, split: ClassSplit, poses: dict[str, np.ndarray], **fields
) -> Direction:
    """The classifier's direction for ``split`` with the pose normals projected out, scaled by the
    latents' spread along the result; the held-out accuracy is measured for the projected normal."""
    normal, raw_accuracy = classifier_normal(split)
    cosines = {p: float(normal @ n) for p, n in poses.items()}
    if poses:
        normal = without_span(torch.from_numpy(normal), [torch.from_numpy(n) for n in poses.values()]).numpy()
        if np.linalg.norm(normal) < 1e-6:
            raise DirectionError(f"direction {name!r} lies in the span of the pose directions; nothing is left")
        normal = normal / np.linalg.norm(normal)
    info = fields.pop("info", {})
    info.update(
        held_out_accuracy=split.accuracy(normal), held_out_accuracy_before_pose=raw_accuracy,
        score_correlation=split.correlation(normal), scored=len(split.scores), conditioned_on=sorted(poses),
        pose_cosines_before=cosines,
    )  # fmt: skip
    return Direction(name, torch.from_numpy(normal).float(), scale=split.spread(normal), info=info, **fields)


def directions_from_samples(
    w: np.ndarray,
    scores: np.ndarray,
    names: list[str],
    edits: Sequence[str],
    *,
    condition_on: Sequence[str] = POSE,
    fraction: float = 0.25,
    seed: int = 0,
    latent_space: str | None = None,
    info: dict | None = None,
) -> dict[str, Direction]:
    """A direction per edit in ``edits`` from labelled samples, each conditioned on the ``condition_on``
    columns present (their own classifier directions, from the same samples)."""
    column = {n: i for i, n in enumerate(names)}
    missing = [e for e in edits if e not in column]
    if missing:
        raise DirectionError(f"no scores for {', '.join(missing)} (labelled: {', '.join(names)})")
    poses = {}
    for p in condition_on:
        if p in column:
            poses[p] = classifier_normal(ClassSplit.of(w, scores[:, column[p]], fraction, seed))[0]
    out = {}
    for edit in edits:
        split = ClassSplit.of(w, scores[:, column[edit]], fraction, seed)
        record = {**(info or {}), "samples": len(w), "fraction": fraction, "seed": seed}
        out[edit] = pose_conditioned(
            edit, split, {p: n for p, n in poses.items() if p != edit}, latent_space=latent_space, info=record
        )
    return out


def learn_standard(
    source: SampleSource,
    labellers: Sequence[Labellers],
    edits: Sequence[str],
    *,
    samples: int,
    batch: int = 8,
    seed: int = 0,
    fraction: float = 0.25,
    out_dir: str | os.PathLike | None = None,
    cache: str | os.PathLike | None = None,
    progress: Progress | None = None,
    on_estimate: Callable[[float, int], None] | None = None,
) -> StandardResult:
    """Label ``samples`` latents once for every labeller, learn the pose-conditioned directions of
    ``edits``, and save them in ``out_dir`` (default: pretrained/directions) when given or defaulted."""
    out = Path(out_dir) if out_dir is not None else directions_dir()
    cache_dir = Path(cache) if cache is not None else out
    w, scores, names, per_sample, cached = label_samples(
        source, labellers, samples=samples, batch=batch, seed=seed, cache=cache_dir, progress=progress,
        on_estimate=on_estimate,
    )  # fmt: skip
    info = {"labellers": [lab.key for lab in labellers], "learned_with": "learn-standard", "source": source.key}
    directions = directions_from_samples(
        w, scores, names, edits, fraction=fraction, seed=seed, latent_space=source.latent_space, info=info
    )
    paths = [save_direction(d, out / f"{d.name}.safetensors") for d in directions.values()]
    return StandardResult(directions, per_sample, cached, paths)


def angle_degrees(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """The angle between two directions, in degrees."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    return math.degrees(math.acos(max(-1.0, min(1.0, cosine))))
