"""Synthetic fitting benchmark with ground truth: In-N-Out against the W+, W and PTI baselines.

    python -m innout.bench fit [--scale tiny|script] [--generator grey|colour] [--workdir DIR]
        [--methods innout,w+,pti] [--set KEY=VALUE ...] [--json FILE]
    python -m innout.bench fit --iteration-time preview,paper

A random generator renders known latents along a yaw sweep; an opaque red band over the eyes (its own
density field, b = 1) is composited in (see ``innout.world.band``). With ``--generator grey`` (the
default) its colour channels are tied, so the red band is truly out of its reach; with ``colour`` they are
not, and a W+ code can partly imitate the band, as a trained face GAN can imitate make-up. Every method
runs through the same cached pipeline; the scores compare its renders with the composite video, its
OOD opacity with the true band mask, and its OOD-removed render with the clean video.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from ..eg3d.random import synthetic_generator
from ..fit.config import FitConfig, InitConfig, InversionConfig, JointConfig, PTIConfig, SuperResolutionConfig
from ..fit.loop import StageRun
from ..fit.pipeline import FitPipeline
from ..scene import load_scene
from ..settings import apply_overrides
from ..world.band import make_synthetic_video, score_fit


def benchmark_config(scale: str) -> tuple[FitConfig, int]:
    """(fit configuration, number of frames) of a benchmark scale."""
    if scale == "tiny":  # seconds: the default test suite runs it
        cfg = FitConfig(name="bench-tiny", seed=3)
        cfg.init = InitConfig(samples=4, batch=4, compare="raw")
        cfg.inversion = InversionConfig(
            subset_frames=2, subset_epochs=30, all_epochs=5, lpips_net="alex", compare="raw"
        )
        # the paper's learning rates; the latents train (L_w, L_Delta), the OOD field gets its head start
        cfg.joint = JointConfig(
            iterations=300, ood_resolution=32, lpips_net="alex", lambda_l2_sr=0.0, checkpoint_every=100
        )
        cfg.pti = PTIConfig(steps=40, lpips_net="alex")
        cfg.superres = SuperResolutionConfig(epochs=0)
        return cfg, 3
    if scale == "script":  # minutes on a 2-core CPU
        cfg = FitConfig(name="bench-script", seed=3)
        cfg.init = InitConfig(samples=16, batch=4, compare="raw")
        cfg.inversion = InversionConfig(subset_frames=4, subset_epochs=100, all_epochs=10, compare="raw")
        cfg.joint = JointConfig(iterations=2000, ood_resolution=64, lambda_l2_sr=0.0)
        cfg.pti = PTIConfig(steps=200)
        cfg.superres = SuperResolutionConfig(epochs=0)
        return cfg, 8
    raise ValueError(f"unknown scale {scale!r} (tiny or script)")


GENERATORS = ("grey", "colour")


def run_fit_benchmark(
    scale: str = "tiny", workdir: str | Path | None = None, methods: tuple[str, ...] = ("innout", "w+", "pti"),
    generator: str = "grey", overrides: list[str] | None = None,
) -> list[dict]:  # fmt: skip
    """One row per method: scores, wall time and time per iteration of the method's last stage. ``overrides``:
    ``section.field=value`` settings on top of the scale's (ablations, e.g. ``joint.bootstrap_steps=0``)."""
    if generator not in GENERATORS:
        raise ValueError(f"unknown generator {generator!r} ({' or '.join(GENERATORS)})")
    cfg, n_frames = benchmark_config(scale)
    cfg = apply_overrides(cfg, list(overrides or []))
    G = synthetic_generator(grey=generator == "grey")
    video = make_synthetic_video(G, n_frames)
    data = video.fit_data()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(workdir or tmp)
        for method in methods:
            stage_times: dict[str, list[float]] = {}
            last = {"t": time.perf_counter()}

            def progress(stage: str, done: int, total: int, losses: dict, stage_times=stage_times, last=last) -> None:
                now = time.perf_counter()
                if total > 1:
                    stage_times.setdefault(stage, []).append(now - last["t"])
                last["t"] = now

            start = time.perf_counter()
            scene = load_scene(FitPipeline(G, data, cfg, root, progress=progress).run(method))
            elapsed = time.perf_counter() - start
            main_stage = {"innout": "joint", "pti": "pti", "w+": "invert", "w": "invert-w"}[method]
            per_step = stage_times.get(main_stage, [])
            row = {"method": method, "scale": scale, "generator": generator, "frames": n_frames,
                   **score_fit(scene, video).row()}  # fmt: skip
            row["seconds"] = elapsed
            row[f"s_per_{main_stage}_iteration"] = sorted(per_step)[len(per_step) // 2] if per_step else None
            rows.append(row)
    return rows


def joint_iteration_time(preset: str, generator: str = "ffhq", iterations: int = 4, device: str = "cpu") -> dict:
    """Median seconds per joint-stage iteration of a preset (first iteration excluded), with a random
    generator of the given architecture on two random 512 frames: the cost does not depend on the weights."""
    from ..eg3d.cameras import orbit_label
    from ..eg3d.random import random_generator
    from ..fit.data import FitData
    from ..fit.inversion import InversionResult
    from ..fit.joint import joint_fit
    from ..fit.presets import get_preset
    from .stage_times import StepClock
    cfg = get_preset(preset).joint
    cfg.iterations = iterations
    cfg.bootstrap_steps = min(cfg.bootstrap_steps, 1)  # the head start reports its own steps: not timed here
    G = random_generator(generator).to(device)
    cameras = torch.cat([orbit_label(1.5, 1.57), orbit_label(1.65, 1.5)]).to(device)
    targets = torch.rand(2, 3, G.img_resolution, G.img_resolution, device=device) * 2 - 1
    data = FitData(targets, cameras, key="timing")
    with torch.no_grad():
        w = G.mapping(torch.randn(1, G.z_dim, device=device), cameras[:1])
    start = InversionResult(w, torch.zeros(2, G.num_ws, G.w_dim, device=device), 0.7, [])
    clock = StepClock(device, echo=False)
    joint_fit(G, data, start, cfg, run=StageRun(progress=clock))
    return {
        "preset": preset,
        "generator": generator,
        "device": device,
        "resolution": cfg.resolution or G.neural_rendering_resolution,
        "samples": cfg.samples_per_ray or (G.rendering.depth_resolution, G.rendering.depth_resolution_importance),
        "latents_trained": cfg.latent_lr > 0,
        "sr_in_loss": cfg.lambda_l2_sr > 0,
        "s_per_iteration": clock.steady("joint"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m innout.bench fit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=("tiny", "script"), default="script")
    parser.add_argument("--workdir", help="keep the stage caches here (default: a temporary folder)")
    parser.add_argument("--methods", default="innout,w+,pti", help="comma-separated: innout, w+, w, pti")
    parser.add_argument(
        "--generator",
        choices=GENERATORS,
        default="grey",
        help="grey: colour channels tied (the band is out of reach); colour: untied",
    )
    parser.add_argument("--json", help="also write the rows as a JSON list to this file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting of the scale, e.g. joint.bootstrap_steps=0 (repeatable)")
    parser.add_argument(
        "--iteration-time",
        metavar="PRESETS",
        help="instead: time joint iterations of these presets (e.g. preview,paper) on a random full-size generator",
    )
    parser.add_argument("--device", default="cpu", help="torch device for --iteration-time (default: cpu)")
    args = parser.parse_args(argv)
    if args.iteration_time:
        for preset in args.iteration_time.split(","):
            row = joint_iteration_time(preset, device=args.device)
            print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
        return 0
    rows = run_fit_benchmark(args.scale, args.workdir, tuple(args.methods.split(",")), args.generator, args.set)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    for row in rows:
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    by = {r["method"]: r for r in rows}
    if "innout" in by and "w+" in by:
        gain = by["innout"]["psnr_ood"] - by["w+"]["psnr_ood"]
        print(f"innout_vs_w+_ood_psnr_gain_db={gain:.2f} scale={args.scale}")
    return 0
