"""The staged, cached and resumable fit: init -> invert -> joint -> superres -> scene.

Every stage's result is a safetensors file in its own folder named by a key made of: the stage's
configuration, the key of the stage before it, the data's content key, the generator's weights and
the seed. Running the same fit again returns the cached results at once; changing, say, the joint
stage's iterations re-runs the joint stage and what follows, not the inversion. While a stage runs it
checkpoints every N steps; after a crash or a kill the next run resumes from the last checkpoint.
Results and checkpoints carry a content hash checked on read (a damaged one is reported and recomputed), and
a lock per stage folder makes a second process on the same fit wait for the first instead of computing
the stage again. The baselines (W, W+, PTI) run through the same stages and write the same scene format.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .. import storage
from ..eg3d.generator import TriPlaneGenerator
from ..progress import Progress
from ..scene.file import SceneData, SceneSource, save_scene
from .bootstrap import DEPTH_MIN_GAIN, MOTION_RATIO
from .bootstrap import STAGE as HEAD_START_STAGE
from .config import FitConfig, JointConfig
from .data import FitData
from .init import nearest_neighbour_init
from .inversion import InversionResult, invert, pivotal_tuning
from .joint import joint_fit, make_ood_field, makes_first_guess
from .latents import RenderSettings
from .loop import StageRun, latest_checkpoint
from .superres import finetune_superresolution

METHODS = ("innout", "w+", "w", "pti")
PIPELINE_VERSION = "3"  # 2: the OOD decoder's layers are named decoder.net.0 / .2; 3: results carry a content hash


def generator_digest(G: TriPlaneGenerator) -> str:
    digest = hashlib.sha256(json.dumps(G.config.to_dict(), sort_keys=True).encode())
    for name, tensor in G.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:20]


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def guesses_from_w(joint: JointConfig, semi_supervised: bool) -> bool:
    """Whether the joint stage's first guess needs a W inversion of its own (``joint.guess_space``)."""
    return joint.guess_space == "w" and not semi_supervised and makes_first_guess(joint, semi_supervised)


def planned_stages(
    config: FitConfig, *, has_super_resolution: bool = True, semi_supervised: bool = False
) -> list[str]:
    """The stages an In-N-Out fit with ``config`` runs, in order (cached ones report at once)."""
    stages = ["init", "invert"]
    if guesses_from_w(config.joint, semi_supervised):
        stages.append("invert-w")
    if config.joint.bootstrap_steps > 0:
        stages.append(HEAD_START_STAGE)
    stages.append("joint")
    if config.superres.epochs > 0 and has_super_resolution:
        stages.append("superres")
    return stages


def planned_steps(cfg: FitConfig, n_frames: int) -> dict[str, float]:
    """How many steps (init: candidate-frame pairs) each stage of ``cfg`` takes on ``n_frames`` frames: what a
    fit's time is measured in (seconds per step of each stage, times these)."""
    inv, joint, sr = cfg.inversion, cfg.joint, cfg.superres
    subset = min(inv.subset_frames, n_frames)
    inversion = math.ceil(subset / inv.batch_frames) * inv.subset_epochs
    inversion += math.ceil(n_frames / inv.batch_frames) * inv.all_epochs
    return {
        "init": cfg.init.samples * n_frames,
        "invert": inversion,
        "invert-w": inversion if guesses_from_w(joint, semi_supervised=False) else 0,  # the first guess's own
        HEAD_START_STAGE: joint.bootstrap_steps,
        "joint": joint.iterations,
        "superres": sr.epochs * n_frames,
        "superres_cache": n_frames if sr.epochs > 0 and sr.cache_renders else 0,
    }


# the log's words for a stage read from the cache and one resumed from its checkpoint (the studio says them back)
CACHED = "cached"
RESUMING = "resuming from the checkpoint"


class FitPipeline:
    """Runs a fit of ``data`` with generator ``G`` under ``config``, caching stages in ``workdir``."""

    def __init__(
        self,
        G: TriPlaneGenerator,
        data: FitData,
        config: FitConfig,
        workdir: str | os.PathLike,
        *,
        progress: Progress | None = None,
        source: SceneSource | None = None,
        log: Callable[[str], None] | None = None,
        joint_snapshots: tuple[int, ...] = (),
    ) -> None:
        """``source`` maps the fitted frames to a video and holds what paste-back needs (default: frames
        0..F-1 of no video). ``joint_snapshots``: joint steps whose parameters are kept beside the stage's result
        (``snapshot_scene``), for scoring a fit along its joint stage."""
        self.G, self.data, self.config = G, data, config
        self.workdir = Path(workdir)
        self.progress = progress
        self.source = source or SceneSource.synthetic(len(data))
        if len(self.source.frames) != len(data):
            raise ValueError(f"the source maps {len(self.source.frames)} frames, the data has {len(data)}")
        self.log = log or (lambda message: None)
        self.base_key = _key(PIPELINE_VERSION, data.content_key(), generator_digest(G), config.seed)
        self.history: dict[str, list[dict[str, float]]] = {}
        # what a stage decided before its steps (the joint stage's motion and head-start depth: JointResult)
        self.decisions: dict[str, dict[str, float]] = {}
        self.joint_snapshots = tuple(sorted(set(joint_snapshots)))
        self.stage_folders: dict[str, Path] = {}

    # -- stage machinery ------------------------------------------------------------------------
    def _stage(
        self, name: str, settings: Any, upstream: str, compute: Callable[[Path], tuple[dict, list]],
        extras: tuple[str, ...] = (),
    ) -> tuple[dict[str, torch.Tensor], str]:
        """The stage's cached result, or ``compute(checkpoint)``'s. ``extras``: files the stage must also have
        written in its folder (its snapshots); a result without them is computed again."""
        settings_json = json.dumps(dataclasses.asdict(settings) if dataclasses.is_dataclass(settings) else settings)
        key = _key(name, settings_json, upstream, self.base_key)
        folder = self.workdir / f"{name}-{key}"
        self.stage_folders[name] = folder
        result = folder / "result.safetensors"
        complete = all((folder / extra).is_file() for extra in extras)
        cached = self._cached(name, result, repair=False) if complete else None
        if cached is not None:
            return cached, key
        with storage.writing(f"the {name} stage's cache", folder):
            folder.mkdir(parents=True, exist_ok=True)
        # one process computes a stage; another asking for it waits, then finds the result
        with storage.exclusive(folder / ".lock", f"the {name} stage", self.log):
            complete = all((folder / extra).is_file() for extra in extras)
            cached = self._cached(name, result, repair=True) if complete else None
            if cached is not None:
                return cached, key
            storage.remove_orphans(folder, r"result\.safetensors|checkpoint\.pt|snapshot-\d+\.safetensors")
            checkpoint = folder / "checkpoint.pt"
            if latest_checkpoint(checkpoint) is not None:
                self.log(f"{name}: {RESUMING} in {folder}")
            tensors, history = compute(checkpoint)
            self.history[name] = history
            meta = {"history": json.dumps(history), "settings": settings_json}
            if name in self.decisions:
                meta["decisions"] = json.dumps(self.decisions[name])
            storage.save_tensors(tensors, result, meta)
            for old in folder.glob("checkpoint-*.pt"):
                old.unlink(missing_ok=True)
        return tensors, key

    def _cached(self, name: str, result: Path, *, repair: bool) -> dict[str, torch.Tensor] | None:
        """The stage's stored result after its integrity check; None when there is none or it is damaged.
        With ``repair`` (only under the stage's lock, so that a result another process has just written is
        never removed) a damaged result is reported and removed, so the stage runs again."""
        if not result.is_file():
            return None
        try:
            tensors, meta = storage.load_tensors(result, self.data.cameras.device)
            history = json.loads(meta.get("history", "[]"))
            decisions = json.loads(meta["decisions"]) if "decisions" in meta else None
        except (storage.CorruptEntryError, ValueError) as exc:
            if repair:
                result.unlink(missing_ok=True)
                self.log(f"{name}: the cached result was damaged ({exc}); computing it again")
            return None
        self.history[name] = history
        if decisions is not None:
            self.decisions[name] = decisions
        else:  # a result written without them (before they were kept, or a stage that decides nothing)
            self.decisions.pop(name, None)
        self.log(f"{name}: {CACHED} ({result.parent})")
        if decisions:  # said again, as when the stage decided them
            self.log(f"{name}: {describe_decisions(decisions)}")
        if self.progress is not None:
            self.progress(name, 1, 1, {})
        return tensors

    # -- stages ---------------------------------------------------------------------------------
    def initialise(self) -> tuple[dict[str, torch.Tensor], str]:
        def compute(_: Path):
            result = nearest_neighbour_init(
                self.G, self.data, self.config.init, run=StageRun(self.config.seed, None, self.progress)
            )
            return {"ws": result.ws, "w_cano": result.w_cano, "distances": result.distances}, []

        return self._stage("init", self.config.init, "", compute)

    def invert(self, space: str = "w+") -> tuple[InversionResult, str]:
        init, init_key = self.initialise()
        settings = dataclasses.replace(self.config.inversion, space=space)

        def compute(checkpoint: Path):
            result = invert(
                self.G, self.data, init["w_cano"], settings, run=StageRun(self.config.seed, checkpoint, self.progress),
            )
            return {"w_cano": result.w_cano, "residuals": result.residuals}, result.history

        tensors, key = self._stage("invert" if space == "w+" else "invert-w", settings, init_key, compute)
        return InversionResult(tensors["w_cano"], tensors["residuals"], settings.residual_scale, []), key

    def run(self, method: str = "innout", output: str | os.PathLike | None = None) -> Path:
        """Run (or fetch from the cache) every stage of ``method`` and write the scene file."""
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        inversion, key = self.invert("w" if method == "w" else "w+")
        codes = inversion.codes(self.G.num_ws).to(self.data.cameras.device)
        G, ood = self.G, None
        if method == "pti":
            G, key = self._pti(codes.all_ws().detach(), key)
        elif method == "innout":
            codes, ood, key = self._joint(inversion, key)
            G, key = self._superres(codes, ood, key)
        path = Path(output) if output else self.workdir / f"scene-{method}-{key}.safetensors"
        scene = SceneData(
            generator=G,
            ws=codes.all_ws().detach(),
            cameras=self.data.cameras,
            ood=ood,
            source=self.source,
            method=method,
            fit_config=self.config.to_dict(),
            history=self.history,
        )
        return save_scene(scene, path)

    def _joint(self, inversion: InversionResult, upstream: str):
        cfg = self.config.joint
        guess_from = None
        if guesses_from_w(cfg, self.data.ood_masks is not None):
            guess_from, guess_key = self.invert("w")
            upstream = f"{upstream}+{guess_key}"
        snapshots = [n for n in self.joint_snapshots if 0 < n < cfg.iterations]

        def compute(checkpoint: Path):
            _restart_without(checkpoint, snapshots)

            def keep(step: int, codes, ood) -> None:
                if step in snapshots:
                    path = checkpoint.parent / snapshot_name(step)
                    storage.save_tensors(joint_tensors(codes, ood), path, {"step": str(step)})

            def decided(decisions: dict[str, float]) -> None:  # before the first step: a stopped fit has said them
                self.decisions["joint"] = decisions
                self.log(f"joint: {describe_decisions(decisions)}")

            result = joint_fit(
                self.G, self.data, inversion, cfg, run=StageRun(self.config.seed, checkpoint, self.progress),
                guess_from=guess_from, after_step=keep if snapshots else None, decided=decided,
            )  # fmt: skip
            self.decisions["joint"] = result.decisions
            return joint_tensors(result.codes, result.ood), result.history

        extras = tuple(snapshot_name(n) for n in snapshots)
        tensors, key = self._stage("joint", cfg, upstream, compute, extras)
        codes, ood = self._joint_from(tensors, inversion.residual_scale)
        return codes, ood, key

    def _joint_from(self, tensors: dict[str, torch.Tensor], residual_scale: float):
        """The latent codes and the OOD field held by a joint result or snapshot."""
        fitted = InversionResult(tensors["w_cano"], tensors["residuals"], residual_scale, [])
        codes = fitted.codes(self.G.num_ws).to(self.data.cameras.device).requires_grad_(False)
        ood = make_ood_field(len(self.data), self.config.joint, 0)
        ood.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ood.")})
        return codes, ood.to(self.data.cameras.device).requires_grad_(False)

    def snapshot_scene(self, step: int, output: str | os.PathLike) -> Path:
        """The In-N-Out scene after ``step`` joint steps (one of ``joint_snapshots``, or the stage's length: its
        result), without the SR fine-tuning that follows the stage. Runs (or reads) the fit up to its joint stage."""
        cfg = self.config.joint
        if step != cfg.iterations and step not in self.joint_snapshots:
            raise ValueError(f"step {step} is neither a kept snapshot {self.joint_snapshots} nor the stage's end")
        inversion, key = self.invert("w+")
        codes, ood, key = self._joint(inversion, key)
        if step != cfg.iterations:
            path = self.stage_folders["joint"] / snapshot_name(step)
            tensors, _ = storage.load_tensors(path, self.data.cameras.device)
            codes, ood = self._joint_from(tensors, inversion.residual_scale)
        scene = SceneData(
            generator=self.G, ws=codes.all_ws().detach(), cameras=self.data.cameras, ood=ood, source=self.source,
            method="innout", fit_config=self.config.to_dict(), history=self.history,
        )  # fmt: skip
        return save_scene(scene, Path(output))

    def _superres(self, codes, ood, upstream: str) -> tuple[TriPlaneGenerator, str]:
        cfg = self.config.superres
        if cfg.epochs <= 0 or not any(True for _ in self.G.superresolution.parameters()):
            return self.G, upstream  # no SR stage asked for, or an SR with nothing to tune (bilinear)
        settings = RenderSettings.of(self.config.joint.resolution, self.config.joint.samples_per_ray)

        def compute(checkpoint: Path):
            sr, history = finetune_superresolution(
                self.G, self.data, codes, ood, cfg, settings, run=StageRun(self.config.seed, checkpoint, self.progress),
            )
            return dict(sr.state_dict()), history

        tensors, key = self._stage("superres", cfg, upstream, compute)
        return _with_weights(self.G, {f"superresolution.{k}": v for k, v in tensors.items()}), key

    def _pti(self, ws: torch.Tensor, upstream: str) -> tuple[TriPlaneGenerator, str]:
        cfg = self.config.pti
        inv = self.config.inversion
        settings = RenderSettings.of(inv.resolution, inv.samples_per_ray)

        def compute(checkpoint: Path):
            tuned, history = pivotal_tuning(
                self.G, self.data, ws, cfg, settings=settings, compare=inv.compare,
                run=StageRun(self.config.seed, checkpoint, self.progress),
            )
            return dict(tuned.state_dict()), history

        tensors, key = self._stage("pti", {"pti": dataclasses.asdict(cfg), "compare": inv.compare}, upstream, compute)
        return _with_weights(self.G, tensors), key


def snapshot_name(step: int) -> str:
    return f"snapshot-{step}.safetensors"


def describe_decisions(decisions: dict[str, float]) -> str:
    """The joint stage's decisions (``JointResult.decisions``) in words, for the log."""
    parts = []
    if "motion_ratio" in decisions:
        moves = "moves" if decisions.get("moves") else "stays still"
        parts.append(f"the object {moves} against the head (motion ratio {decisions['motion_ratio']:.2f},"
                     f" moving above {MOTION_RATIO})")  # fmt: skip
    if "depth_offset" in decisions:
        offset, best, gain = decisions["depth_offset"], decisions["depth_best"], decisions["depth_gain"]
        parts.append(f"head start {offset:+.2f} along the rays off the inversion's surface (the views agree best at"
                     f" {best:+.2f}, {gain:.3f} better than at the surface; taken from {DEPTH_MIN_GAIN})")  # fmt: skip
    return "; ".join(parts)


def joint_tensors(codes, ood) -> dict[str, torch.Tensor]:
    """What the joint stage stores (its result and its snapshots): the latents and the OOD field."""
    tensors = {"w_cano": codes.w_cano.detach(), "residuals": codes.residuals.detach()}
    tensors.update({f"ood.{k}": v.detach() for k, v in ood.state_dict().items()})
    return tensors


def _restart_without(checkpoint: Path, snapshots: list[int]) -> None:
    """Remove the stage's checkpoint when it is past a snapshot that is missing (a run without snapshots left
    it): resuming from it could never write that snapshot, so the stage starts over."""
    found = latest_checkpoint(checkpoint)
    missing = [n for n in snapshots if not (checkpoint.parent / snapshot_name(n)).is_file()]
    if found is None or not missing:
        return
    try:
        step = int(storage.load_checkpoint(found)["step"])
    except (storage.CorruptEntryError, KeyError, TypeError, ValueError):
        return  # the loop discards a damaged checkpoint itself
    if step >= min(missing):
        logging.getLogger(__name__).info("%s is past the missing snapshot of step %d: the stage starts over", found,
                                         min(missing))
        found.unlink(missing_ok=True)


def _with_weights(G: TriPlaneGenerator, weights: dict[str, torch.Tensor]) -> TriPlaneGenerator:
    """A generator sharing G's configuration with some (or all) weights replaced."""
    import copy

    out = copy.deepcopy(G)
    state = out.state_dict()
    state.update({k: v.to(state[k].device) for k, v in weights.items()})
    out.load_state_dict(state)
    return out.eval().requires_grad_(False)
