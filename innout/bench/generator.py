"""Generator speed on the full-size FFHQ 512-128 architecture (random weights: timing only).

Each case runs in its own process so its peak memory is its own: resident set size on CPU,
``torch.cuda.max_memory_allocated`` on CUDA. Times are the median of ``--repeats`` warm runs.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import time
from collections.abc import Callable

import torch

from ..runtime import pick_device

CASES = {
    "mapping": "z -> ws",
    "backbone": "ws -> tri-planes 3x32x256x256",
    "render128": "volume render 128x128, 48+48 samples (tri-planes cached)",
    "render128_grid_sample": "the same with the official grid_sample tri-plane sampler",
    "superres": "super-resolution 128 -> 512",
    "frame": "whole 512 frame: mapping + backbone + render + SR",
    "preview": "preview: 64x64, 24+24 samples, no SR (tri-planes cached)",
    "orbit_frame": "512 frame from cached tri-planes (render + SR), as when orbiting",
}

TARGETS_CPU = {"render128": 1.0, "frame": 4.5, "preview": 0.25}


def _setup(case: str, device: str, fp16: bool, batch: int) -> Callable[[], object]:
    from innout.eg3d import GeneratorConfig, TriPlaneGenerator, frontal_label, orbit_label

    torch.manual_seed(0)
    G = TriPlaneGenerator(GeneratorConfig.ffhq512()).to(device).eval().requires_grad_(False)
    z = torch.randn(batch, G.z_dim, device=device)
    c_cond = frontal_label().to(device).expand(batch, -1)
    c = orbit_label(2.0, 1.4).to(device).expand(batch, -1)
    ws = G.mapping(z, c_cond)
    planes = G.synthesize_planes(ws)
    render = G.render_planes(planes, c)
    sr_fp16 = fp16 if device == "cuda" else False

    if case == "mapping":
        return lambda: G.mapping(z, c_cond)
    if case == "backbone":
        return lambda: G.synthesize_planes(ws)
    if case == "render128":
        return lambda: G.render_planes(planes, c)
    if case == "render128_grid_sample":
        return lambda: G.render_planes(planes, c, sampler="grid_sample")
    if case == "superres":
        return lambda: G.super_resolve(render, ws, fp16=sr_fp16)
    if case == "frame":
        return lambda: G.synthesis(G.mapping(z, c_cond), c, sr_fp16=sr_fp16)
    if case == "preview":
        return lambda: G.render_planes(planes, c, resolution=64, depth_resolution=24, depth_resolution_importance=24)
    if case == "orbit_frame":
        return lambda: G.super_resolve(G.render_planes(planes, c), ws, fp16=sr_fp16)
    raise ValueError(f"unknown case {case!r}")


def _run_case(case: str, device: str, fp16: bool, batch: int, repeats: int, threads: int | None, queue) -> None:
    from innout.runtime import keep_freed_memory

    keep_freed_memory()
    if threads:
        torch.set_num_threads(threads)
    with torch.no_grad():
        fn = _setup(case, device, fp16, batch)
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        fn()  # warm-up (the first call allocates and picks kernels)
        sync()
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - start)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**30
        mem = f"peak_gpu_mem={peak:.2f}GiB"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
        mem = f"peak_rss={peak:.2f}GiB"
    queue.put((statistics.median(times), min(times), mem))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m innout.bench generator", description=__doc__)
    parser.add_argument("cases", nargs="*", default=list(CASES), help=f"cases to run (default: all): {list(CASES)}")
    parser.add_argument("--device", default=pick_device(), help="torch device (default: cuda if available)")
    parser.add_argument("--fp16", action="store_true", help="run the super-resolution in fp16 (CUDA only)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)

    ctx = mp.get_context("spawn")
    gpu = torch.cuda.get_device_name() if args.device == "cuda" else "-"
    threads = args.threads or torch.get_num_threads()
    for case in args.cases:
        if case not in CASES:
            parser.error(f"unknown case {case!r}")
        queue = ctx.Queue()
        proc = ctx.Process(
            target=_run_case, args=(case, args.device, args.fp16, args.batch, args.repeats, args.threads, queue)
        )
        proc.start()
        median, best, mem = queue.get()
        proc.join()
        target = TARGETS_CPU.get(case) if args.device == "cpu" else None
        note = f" target<={target}s {'OK' if median <= target else 'MISSED'}" if target else ""
        fps = f" fps={args.batch / median:.1f}" if case in ("frame", "orbit_frame") else ""
        print(
            f"generator/{case}: median={median:.3f}s min={best:.3f}s{fps} {mem}{note} | "
            f"device={args.device} gpu={gpu} threads={threads} batch={args.batch} fp16_sr={args.fp16} "
            f"arch=ffhq512-128 ({CASES[case]})",
            flush=True,
        )
    return 0
