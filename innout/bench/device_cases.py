"""The measurements of ``python -m innout.bench device``: one generator of rows per section.

Each row is saved as soon as it is measured. A row is a dict: ``name`` (what was measured), ``value``
and ``unit``, optional ``peak_gib`` (peak device memory of that measurement, CUDA only), ``target`` /
``ok`` where the speed issue sets a target, and the configuration it ran under. Every section builds
its own models, so a section runs alone in its own process (the orchestrator in ``innout.bench.device``
does that) and a failure or a timeout in one loses nothing measured by another.

Sizes: ``Scale.full`` is what runs on a GPU (the FFHQ 512-128 architecture with random weights, the
paper's settings with fewer iterations; the complete fit uses the synthetic world's trained prior and a world
clip, whose ground truth scores it); ``Scale.dry`` is the same code at the tiny fixture size and with a few
steps, so that CI can run every section on a CPU in seconds.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from ..runtime import set_precision

Row = dict
FIT_OBJECT = "sunglasses"  # the complete fit's object (innout/world/objects/)


@dataclass(frozen=True)
class Scale:
    arch: str  # 'ffhq' (the full FFHQ 512-128 architecture) or 'tiny'
    repeats: int  # timed runs per figure (median reported)
    batch: int  # frames per call for the batched figures
    orbit_views: int
    step_iterations: int  # optimiser steps timed per stage (the first is left out)
    fit_frames: int
    fit_overrides: tuple[str, ...]  # `--set` style overrides of the paper preset for the complete fit
    presets: tuple[str, ...] = ("paper", "fast")  # whose per-step times the iterations section measures
    precisions: tuple[str, ...] = ("default", "tf32")  # ... under these CUDA precisions (runtime.set_precision)
    warmup: int = 2
    qualities: tuple[str, ...] = ("preview", "full")
    slider_strengths: tuple[float, ...] = (0.4, 1.1, 1.9, 2.6)

    @classmethod
    def full(cls) -> Scale:
        return cls(
            arch="ffhq", repeats=10, batch=8, orbit_views=24, step_iterations=5, fit_frames=8,
            fit_overrides=(
                "init.samples=24", "inversion.subset_frames=4", "inversion.subset_epochs=20",
                "inversion.all_epochs=2", "joint.iterations=150", "superres.epochs=2",
            ),
        )  # fmt: skip

    @classmethod
    def dry(cls) -> Scale:
        # the same code paths in a few minutes on a 2-core CPU: the super-resolution (seconds per call there,
        # whatever the architecture) is kept out of the step times (the preview preset has none); no warm-up
        # calls (the figures of a dry run mean nothing)
        return cls(
            arch="tiny", repeats=1, batch=2, orbit_views=1, step_iterations=3, fit_frames=3,
            fit_overrides=(
                "init.samples=4", "init.compare=raw", "inversion.subset_frames=2", "inversion.subset_epochs=2",
                "inversion.all_epochs=1", "inversion.lpips_net=alex", "inversion.compare=raw", "joint.iterations=4",
                "joint.bootstrap_steps=10", "joint.lpips_net=alex", "joint.ood_resolution=32", "superres.epochs=0",
            ),
            presets=("preview",), warmup=0, qualities=("preview",), slider_strengths=(1.1,),
        )  # fmt: skip


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def peak_memory(device: torch.device):
    """Yields a dict that holds ``peak_gib`` (CUDA's peak allocated memory inside the block) afterwards."""
    out: dict[str, float | None] = {"peak_gib": None}
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    yield out
    if device.type == "cuda":
        synchronize(device)
        out["peak_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 3)


def time_call(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int = 1) -> tuple[float, dict]:
    """Median seconds of ``fn`` over ``repeats`` warm runs, and its peak memory."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    with peak_memory(device) as mem:
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            synchronize(device)
            times.append(time.perf_counter() - start)
    return statistics.median(times), mem


def row(name: str, value: float | None, unit: str, **extra) -> Row:
    return {"name": name, "value": value, "unit": unit, **extra}


def target_row(name: str, value: float, unit: str, target: float, lower_is_better: bool = True, **extra) -> Row:
    ok = value <= target if lower_is_better else value >= target
    return row(name, value, unit, target=("<= " if lower_is_better else ">= ") + f"{target:g}", ok=ok, **extra)


def bench_generator(arch: str, device: torch.device):
    from ..eg3d.random import random_generator

    return random_generator(arch).to(device)


def image_error(a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
    """Mean and max absolute difference of two image batches in [-1, 1], and their PSNR (in [0, 1] units)."""
    diff = (a.float() - b.float()).abs()
    mse = float(diff.square().mean()) / 4
    return {
        "mean_abs_err": float(diff.mean()),
        "max_abs_err": float(diff.max()),
        "psnr_vs_fp32": 10 * math.log10(1 / max(mse, 1e-12)),
    }


# --- section: generator ------------------------------------------------------------------------------
@torch.no_grad()
def generator_section(device: torch.device, scale: Scale) -> Iterator[Row]:
    """Frame time of the whole generator (fp32, fp16 SR as the official code on GPUs, bf16 autocast), its
    pieces, the two tri-plane samplers, batching, and the orbit frame rate from cached tri-planes."""
    from ..eg3d.cameras import frontal_label, orbit_label

    G = bench_generator(scale.arch, device)
    cuda = device.type == "cuda"
    z = torch.randn(1, G.z_dim, device=device)
    cond = frontal_label().to(device)
    cam = orbit_label(2.0, 1.4).to(device)
    ws = G.mapping(z, cond)
    planes = G.synthesize_planes(ws)
    render = G.render_planes(planes, cam, deterministic=True)
    conf = {"arch": scale.arch, "batch": 1}

    def frame(sr_fp16: bool):
        return G.synthesis(G.mapping(z, cond), cam, deterministic=True, sr_fp16=sr_fp16)["image"]

    with set_precision("fp32"):
        reference = frame(False)
    for precision in ("fp32", "tf32") if cuda else ("fp32",):  # TF32 exists on CUDA only
        with set_precision(precision):
            t, mem = time_call(lambda: frame(False), device, scale.repeats, scale.warmup)
            image = frame(False)
        yield row(f"frame {precision}", t, "s", **mem, **conf, **image_error(image, reference))
    if cuda:
        t, mem = time_call(lambda: frame(True), device, scale.repeats, scale.warmup)
        yield row("frame fp16 SR", t, "s", **mem, **conf, **image_error(frame(True), reference))
    try:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            t, mem = time_call(lambda: frame(False), device, scale.repeats, scale.warmup)
            image = frame(False)
        yield row("frame bf16 autocast", t, "s", **mem, **conf, **image_error(image, reference))
    except Exception as exc:  # an unsupported op under autocast is a finding, not a crash
        yield row("frame bf16 autocast", None, "s", error=f"{type(exc).__name__}: {exc}"[:300], **conf)

    n = scale.batch
    zb, condb, camb = z.expand(n, -1), cond.expand(n, -1), cam.expand(n, -1)
    t, mem = time_call(
        lambda: G.synthesis(G.mapping(zb, condb), camb, deterministic=True, sr_fp16=cuda),
        device, scale.repeats, scale.warmup,
    )  # fmt: skip
    yield row(f"frame batch {n}, per frame", t / n, "s", **mem, arch=scale.arch, batch=n, sr_fp16=cuda)

    pieces = {
        "mapping": lambda: G.mapping(z, cond),
        "backbone (tri-planes)": lambda: G.synthesize_planes(ws),
        "render 128^2 48+48, gather sampler": lambda: G.render_planes(planes, cam, sampler="gather"),
        "render 128^2 48+48, grid_sample sampler": lambda: G.render_planes(planes, cam, sampler="grid_sample"),
        "super-resolution fp32": lambda: G.super_resolve(render, ws, fp16=False),
    }
    if cuda:
        pieces["super-resolution fp16"] = lambda: G.super_resolve(render, ws, fp16=True)
    for name, fn in pieces.items():
        t, mem = time_call(fn, device, scale.repeats, scale.warmup)
        yield row(name, t, "s", **mem, **conf)

    # orbiting: a new camera every frame, tri-planes cached (what the app does when the camera moves)
    cams = [orbit_label(math.pi / 2 + 0.4 * math.sin(a), math.pi / 2 + 0.1 * math.cos(a)).to(device)
            for a in torch.linspace(0, 2 * math.pi, scale.orbit_views).tolist()]  # fmt: skip

    def orbit():
        for c in cams:
            G.super_resolve(G.render_planes(planes, c), ws, fp16=cuda)

    t, mem = time_call(orbit, device, max(1, scale.repeats // 4), warmup=scale.warmup)
    fps = scale.orbit_views / t
    yield target_row("orbit 512 from cached tri-planes", fps, "frames/s", 60, lower_is_better=False,
                           **mem, **conf, sr_fp16=cuda)  # fmt: skip


# --- section: render (the scene the app holds) -------------------------------------------------------
@torch.no_grad()
def render_section(device: torch.device, scale: Scale) -> Iterator[Row]:
    """What the studio does: orbit a fitted scene (composite render with an OOD field) and drag / release
    an edit slider. Times include the copy of the image to the host, as the app needs it there."""
    from .render import bench_scene, orbit_speed, slider_latency

    scene = bench_scene(scale.arch, str(device), ood_resolution=256 if scale.arch == "ffhq" else 32)
    for quality in scale.qualities:
        r = orbit_speed(scene, 0, quality, scale.orbit_views)
        yield row(f"scene orbit {quality}, cached tri-planes", 1 / r["cached_s"], "frames/s",
                        arch=scale.arch, recompute_frames_per_s=1 / r["recompute_s"])  # fmt: skip
    s = slider_latency(scene, strengths=scale.slider_strengths)
    yield row("slider: warm the knots of one edit", s["warm_s"], "s", arch=scale.arch, knots=scene.knots)
    yield row("slider drag preview", s["drag_s"], "s", arch=scale.arch, relative_error=s["relative_error"])
    yield target_row("slider release (full quality)", s["full_s"], "s", 0.05, arch=scale.arch)


# --- section: iterations (per-step cost of every stage, and a 200-frame fit extrapolated) --------------
def iterations_section(device: torch.device, scale: Scale) -> Iterator[Row]:
    """Seconds per optimiser step of every stage of the ``paper`` and ``fast`` presets on the full-size
    architecture (random weights, random 512 targets: the cost does not depend on them), and the time
    of a 200-frame fit extrapolated from them."""
    from .stage_times import extrapolate_fit, stage_step_times

    precisions = scale.precisions if device.type == "cuda" else ("default",)
    for preset in scale.presets:
        for precision in precisions:
            with set_precision(precision):
                times = stage_step_times(preset, scale.arch, str(device), iterations=scale.step_iterations)
            label, conf = f"{preset} {precision}", {"preset": preset, "precision": precision, "arch": scale.arch}
            for stage, (seconds, mem) in times.items():
                yield row(f"{label}: {stage} step", seconds, "s", peak_gib=mem, **conf)
            total = extrapolate_fit(preset, {k: v[0] for k, v in times.items()}, n_frames=200)
            frames = total.pop("frames")
            for stage, seconds in total.items():
                name = f"{label}: fit of a 200-frame video ({frames} fitted), extrapolated"
                name += "" if stage == "total" else f", {stage}"
                if stage == "total" and preset == "paper":  # the speed issue's target: a paper fit in 10 minutes
                    yield target_row(name, seconds / 60, "min", 10, **conf)
                else:
                    yield row(name, seconds / 60, "min", **conf)


# --- section: fit (a complete fit, reference fp32 against the default precision) ---------------------
def fit_section(device: torch.device, scale: Scale) -> Iterator[Row]:
    """A complete In-N-Out fit (init, inversion, head start, joint, scene file, scores) of a synthetic-world clip
    (a head turning and smiling, with sunglasses; ``innout.world``) with the world's trained prior, at the paper's
    settings with fewer iterations: once in strict fp32 (the reference) and once with TF32 matrix products, which
    must score the same against the world's ground truth (``innout.bench.world.score``)."""
    from ..eg3d.checkpoint import load_generator
    from ..fit.data import FitData
    from ..fit.pipeline import FitPipeline
    from ..fit.presets import get_preset
    from ..scene import Scene, load_scene
    from ..settings import apply_overrides
    from ..world.clips import ClipPlan, render_clip
    from ..world.objects import load_object
    from ..world.prior import ASSET, prior_config
    from .world import BASE_HEAD, for_world_prior, score
    G = load_generator(ASSET).to(device)
    clip = render_clip(ClipPlan(BASE_HEAD, frames=scale.fit_frames), load_object(FIT_OBJECT),
                       prior_config().neural_rendering_resolution)  # fmt: skip
    data = FitData(clip.composite, clip.cameras, key=f"device-world-{FIT_OBJECT}-{len(clip)}").to(device)
    cfg = for_world_prior(apply_overrides(get_preset("paper"), list(scale.fit_overrides)))
    scores = {}
    # TF32 is a CUDA precision (runtime.set_precision has no effect on a CPU): there the second fit would repeat
    # the first, so a CPU run (the dry run) fits once and says why the comparison is missing
    for precision in ("fp32", "tf32") if device.type == "cuda" else ("fp32",):
        stage_seconds: dict[str, float] = {}
        last = [time.perf_counter()]

        def progress(stage, done, total, losses, stage_seconds=stage_seconds, last=last, precision=precision):
            synchronize(device)
            now = time.perf_counter()
            stage_seconds[stage] = stage_seconds.get(stage, 0.0) + now - last[0]
            last[0] = now
            if done == total or done % 25 == 0:  # progress in the log of a run that gets cut short
                print(f"  {precision} {stage} {done}/{total}: {stage_seconds[stage]:.2f} s", flush=True)

        with tempfile.TemporaryDirectory() as tmp, set_precision(precision), peak_memory(device) as mem:
            start = time.perf_counter()
            path = FitPipeline(G, data, cfg, Path(tmp), progress=progress).run("innout")
            elapsed = time.perf_counter() - start
            scores[precision] = score(Scene(load_scene(path, device)), clip, None)
        conf = {"prior": "world", "object": FIT_OBJECT, "frames": scale.fit_frames, "precision": precision,
                "preset": "paper", "overrides": list(scale.fit_overrides)}  # fmt: skip
        yield row(f"complete fit, {precision}", elapsed, "s", **mem, **conf,
                        stages={k: round(v, 3) for k, v in stage_seconds.items()}, **scores[precision])  # fmt: skip
    if "tf32" not in scores:
        yield row("complete fit: |PSNR tf32 - fp32|", "not measured: no TF32 on a CPU", "", prior="world")
        return
    ref, fast = scores["fp32"], scores["tf32"]
    yield target_row("complete fit: |PSNR tf32 - fp32|", abs(fast["psnr"] - ref["psnr"]), "dB", 0.1, prior="world")
    yield target_row("complete fit: |IoU tf32 - fp32|", abs(fast["iou"] - ref["iou"]), "", 0.01, prior="world")


# --- section: env (what the machine has; every core module must import) ------------------------------
CORE_MODULES = (
    "innout.eg3d", "innout.fit", "innout.fit.pipeline", "innout.scene", "innout.edit", "innout.edit.learn",
    "innout.metrics", "innout.export.video", "innout.export.mesh", "innout.preprocess",
)  # fmt: skip


def env_section(device: torch.device, scale: Scale) -> Iterator[Row]:
    """Versions, the accelerator, which core modules import, and which optional pieces are there."""
    import importlib
    import importlib.util
    import platform

    import numpy

    yield row("python", platform.python_version(), "")
    yield row("torch", torch.__version__, "", cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    yield row("numpy", numpy.__version__, "")
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        memory = round(props.total_memory / 2**30, 1)
        capability = f"{props.major}.{props.minor}"
        yield row("gpu", props.name, "", memory_gib=memory, sms=props.multi_processor_count, capability=capability)
    for name in CORE_MODULES:
        try:
            importlib.import_module(name)
            yield row(f"import {name}", "ok", "", ok=True)
        except Exception as exc:  # a core module that does not import is the finding this section exists for
            yield row(f"import {name}", "failed", "", ok=False, error=f"{type(exc).__name__}: {exc}"[:300])
    for optional in ("mediapipe", "imageio_ffmpeg", "cv2", "gradio"):
        present = importlib.util.find_spec(optional) is not None
        yield row(f"optional package {optional}", "present" if present else "absent", "")
    from ..metrics.perceptual import get_lpips

    for net in ("alex", "vgg"):
        try:
            get_lpips(net, str(device))
            yield row(f"LPIPS {net} weights", "ok", "", ok=True)
        except Exception as exc:
            yield row(f"LPIPS {net} weights", "missing", "", ok=False, error=str(exc)[:300])


SECTIONS: dict[str, Callable[[torch.device, Scale], Iterator[Row]]] = {
    "env": env_section,
    "generator": generator_section,
    "render": render_section,
    "iterations": iterations_section,
    "fit": fit_section,
}
