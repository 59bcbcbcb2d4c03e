"""Synthetic fitting benchmark with ground truth: In-N-Out against the W+, W and PTI baselines.

    python -m innout.bench fit [--scale tiny|script] [--workdir DIR] [--methods innout,w+,pti]

A grey-only random generator renders known latents along a yaw sweep; an opaque red band over the
eyes (its own density field, b = 1) is composited in (see ``innout.fit.synthetic``). Every method
runs through the same cached pipeline; the scores compare its renders with the composite video, its
OOD opacity with the true band mask, and its OOD-removed render with the clean video.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from ..fit.config import FitConfig, InitConfig, InversionConfig, JointConfig, PTIConfig, SuperResolutionConfig
from ..fit.pipeline import FitPipeline
from ..fit.scene_file import load_scene
from ..fit.synthetic import make_synthetic_video, score_fit, synthetic_generator


def benchmark_config(scale: str) -> tuple[FitConfig, int]:
    """(fit configuration, number of frames) of a benchmark scale."""
    if scale == "tiny":  # seconds: the default test suite runs it
        cfg = FitConfig(name="bench-tiny", seed=3)
        cfg.init = InitConfig(samples=4, batch=4, compare="raw")
        cfg.inversion = InversionConfig(
            subset_frames=2, subset_epochs=30, all_epochs=5, lpips_net="alex", compare="raw"
        )
        # 300 steps: a higher lr than the paper's 5e-3 lets the OOD field form before b collapses
        cfg.joint = JointConfig(
            iterations=300, lr=0.02, latent_lr=0.0, ood_resolution=32, lpips_net="alex", lambda_l2_sr=0.0,
            checkpoint_every=100,
        )
        cfg.pti = PTIConfig(steps=40, lpips_net="alex")
        cfg.superres = SuperResolutionConfig(epochs=0)
        return cfg, 3
    if scale == "script":  # minutes on a 2-core CPU
        cfg = FitConfig(name="bench-script", seed=3)
        cfg.init = InitConfig(samples=16, batch=4, compare="raw")
        cfg.inversion = InversionConfig(subset_frames=4, subset_epochs=100, all_epochs=10, compare="raw")
        cfg.joint = JointConfig(iterations=2000, latent_lr=0.0, ood_resolution=64, lambda_l2_sr=0.0)
        cfg.pti = PTIConfig(steps=200)
        cfg.superres = SuperResolutionConfig(epochs=0)
        return cfg, 8
    raise ValueError(f"unknown scale {scale!r} (tiny or script)")


def run_fit_benchmark(
    scale: str = "tiny", workdir: str | Path | None = None, methods: tuple[str, ...] = ("innout", "w+", "pti")
) -> list[dict]:
    """One row per method: scores, wall time and time per iteration of the method's last stage."""
    cfg, n_frames = benchmark_config(scale)
    G = synthetic_generator()
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
            row = {"method": method, "scale": scale, "frames": n_frames, **score_fit(scene, video).row()}
            row["seconds"] = elapsed
            row[f"s_per_{main_stage}_iteration"] = sorted(per_step)[len(per_step) // 2] if per_step else None
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m innout.bench fit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=("tiny", "script"), default="script")
    parser.add_argument("--workdir", help="keep the stage caches here (default: a temporary folder)")
    parser.add_argument("--methods", default="innout,w+,pti", help="comma-separated: innout, w+, w, pti")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows = run_fit_benchmark(args.scale, args.workdir, tuple(args.methods.split(",")))
    for row in rows:
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    by = {r["method"]: r for r in rows}
    if "innout" in by and "w+" in by:
        gain = by["innout"]["psnr_ood"] - by["w+"]["psnr_ood"]
        print(f"innout_vs_w+_ood_psnr_gain_db={gain:.2f} scale={args.scale}")
    return 0
