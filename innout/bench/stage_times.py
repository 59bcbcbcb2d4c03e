"""Seconds per optimiser step of every fitting stage of a preset, and a whole fit extrapolated from them.

The cost of a step does not depend on the weights or the images, so the stages run on a random
generator of the asked architecture and random 512 targets; each stage runs a few steps through its
real code (``nearest_neighbour_init``, ``invert``, ``joint_fit``, ``finetune_superresolution``) and the
median step after the first is kept. ``extrapolate_fit`` multiplies by the number of steps the preset
takes on a video of N frames.
"""

from __future__ import annotations

import math
import statistics
import time

import torch

from ..eg3d.cameras import orbit_label
from ..fit.bootstrap import STAGE as HEAD_START
from ..fit.config import FitConfig
from ..fit.data import FitData
from ..fit.loop import StageRun
from ..fit.pipeline import planned_steps as stage_steps
from ..fit.presets import get_preset


def _frames(n: int, resolution: int, device: str) -> FitData:
    generator = torch.Generator().manual_seed(0)
    cameras = torch.cat([orbit_label(math.pi / 2 + 0.1 * (i - n / 2), math.pi / 2) for i in range(n)])
    targets = torch.rand(n, 3, resolution, resolution, generator=generator) * 2 - 1
    return FitData(targets, cameras, key="timing").to(device)


class StepClock:
    """A progress callback that records the seconds between calls (device work included), per stage: the
    joint stage reports its head start's steps under their own name first."""

    def __init__(self, device: str, echo: bool = True) -> None:
        self.device = torch.device(device)
        self.echo = echo
        self.times: list[float] = []
        self.stages: dict[str, list[float]] = {}
        self.last = time.perf_counter()

    def __call__(self, stage: str, done: int, total: int, losses: dict) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        self.times.append(now - self.last)
        self.stages.setdefault(stage, []).append(self.times[-1])
        self.last = now
        if self.echo:  # a hang or a slow stage shows in the log of a run that was cut short
            print(f"  {stage} {done}/{total}: {self.times[-1]:.3f} s", flush=True)

    def steady(self, stage: str | None = None) -> float:
        """Median step time after the first (which allocates and picks kernels), of one stage or of all."""
        times = self.times if stage is None else self.stages.get(stage, [])
        return statistics.median(times[1:] or times) if times else 0.0


def _peak(device: str) -> float | None:
    if torch.device(device).type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated() / 2**30, 3)


def _reset_peak(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def stage_step_times(
    preset: str | FitConfig, arch: str = "ffhq", device: str = "cpu", iterations: int = 4
) -> dict[str, tuple[float, float | None]]:
    """{stage: (seconds per step, peak GiB on CUDA)} for 'init' (per candidate and frame), 'invert',
    'ood head start', 'joint', 'superres' and 'superres_cache' (one frame's composite render, done once per
    frame)."""
    from ..eg3d.random import random_generator
    from ..fit.init import nearest_neighbour_init
    from ..fit.inversion import InversionResult, invert
    from ..fit.joint import joint_fit
    from ..fit.latents import RenderSettings
    from ..fit.superres import finetune_superresolution

    cfg = get_preset(preset) if isinstance(preset, str) else FitConfig.from_dict(preset.to_dict())
    G = random_generator(arch).to(device)
    out: dict[str, tuple[float, float | None]] = {}

    # init: a few candidate batches against frames; one progress call per candidate batch
    n = cfg.init.batch
    data = _frames(n, G.img_resolution, device)
    cfg.init.samples = n * iterations
    clock = StepClock(device)
    _reset_peak(device)
    init = nearest_neighbour_init(G, data, cfg.init, run=StageRun(progress=clock))
    out["init"] = (clock.steady() / (n * len(data)), _peak(device))

    # inversion: one batch of frames per step, exactly `iterations` steps
    inv = cfg.inversion
    data = _frames(inv.batch_frames, G.img_resolution, device)
    inv.subset_frames, inv.subset_epochs, inv.all_epochs = len(data), iterations, 0
    clock = StepClock(device)
    _reset_peak(device)
    result = invert(G, data, init.w_cano, inv, run=StageRun(progress=clock))
    out["invert"] = (clock.steady(), _peak(device))

    # joint: frames batched as the preset says, after `iterations` steps of its head start (timed apart)
    joint = cfg.joint
    joint.iterations = iterations
    joint.bootstrap_steps = min(joint.bootstrap_steps, iterations)
    data = _frames(max(2, joint.batch_frames), G.img_resolution, device)
    start = InversionResult(result.w_cano, torch.zeros(len(data), *result.w_cano.shape[1:], device=device),
                            inv.residual_scale, [])  # fmt: skip
    clock = StepClock(device)
    _reset_peak(device)
    fitted = joint_fit(G, data, start, joint, run=StageRun(progress=clock))
    out[HEAD_START] = (clock.steady(HEAD_START), None)
    out["joint"] = (clock.steady("joint"), _peak(device))

    # super-resolution fine-tuning: the composite renders are cached first (timed apart), then SR steps
    sr = cfg.superres
    if sr.epochs <= 0:  # the preset has no SR stage
        out["superres"] = out["superres_cache"] = (0.0, None)
        return out
    sr.epochs = max(1, math.ceil(iterations / len(data)))
    settings = RenderSettings.of(joint.resolution, joint.samples_per_ray)
    clock = StepClock(device)
    _reset_peak(device)
    begin = time.perf_counter()
    finetune_superresolution(G, data, fitted.codes, fitted.ood, sr, settings, run=StageRun(progress=clock))
    total = time.perf_counter() - begin
    out["superres"] = (clock.steady(), _peak(device))
    steps = sum(clock.times)
    out["superres_cache"] = (max(0.0, total - steps) / len(data) if sr.cache_renders else 0.0, None)
    return out


def extrapolate_fit(preset: str | FitConfig, step_seconds: dict[str, float], n_frames: int) -> dict[str, float]:
    """Seconds of each stage and 'total' for a video of ``n_frames`` frames, from measured seconds per step;
    'frames' is how many of them the preset fits (its ``max_frames``)."""
    cfg = get_preset(preset) if isinstance(preset, str) else preset
    frames = min(n_frames, cfg.max_frames or n_frames)
    steps = stage_steps(cfg, frames)
    # a W inversion step costs what a W+ one does (the same render; one code instead of 14)
    seconds = {s: n * step_seconds["invert" if s == "invert-w" else s] for s, n in steps.items()}
    seconds["total"] = sum(seconds.values())
    seconds["frames"] = frames
    return seconds
