"""Editing and orbit speed of a scene: cached tri-planes against recomputing them, per quality, and
the app's slider latency (drag preview from interpolated edit planes, full render on release).

    python -m innout.bench render [--arch tiny|ffhq] [--qualities preview,full] [--views 4] [--device cpu]

The scene: random latents of an untrained generator with the architecture asked for (the full FFHQ
512-128 one by default), and an OOD field holding an opaque band (``band_ood_field``), so the
composite renderer does all its work. Prints one line per figure.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from ..eg3d.cameras import INO_FOCAL, frontal_label, orbit_label
from ..eg3d.random import random_generator
from ..scene import RenderRequest, Scene, SceneData, SceneSource
from ..world.band import band_ood_field


def bench_scene(arch: str, device: str, ood_resolution: int = 256) -> Scene:
    G = random_generator(arch).to(device)
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(0)).to(device)  # the same scene every run
    with torch.no_grad():
        ws = G.mapping(z, frontal_label(INO_FOCAL).to(device).expand(2, -1))
    cameras = torch.cat([orbit_label(math.pi / 2 + a, math.pi / 2) for a in (-0.1, 0.1)]).to(device)
    ood = band_ood_field(2, resolution=ood_resolution).to(device)
    return Scene(SceneData(G, ws, cameras, ood, SceneSource.synthetic(2)))


def orbit_speed(scene: Scene, frame: int = 0, quality: str = "preview", views: int = 4) -> dict[str, float]:
    """Seconds per view when orbiting with cached tri-planes and when recomputing them."""
    turns = [2 * math.pi * i / views for i in range(views)]
    angles = [(0.3 * math.sin(t), 0.1 * math.cos(t)) for t in turns]
    request = RenderRequest(frame, quality=quality)
    scene.render(request.at(frame, angles[0]))  # warm up; fills the cache
    start = time.perf_counter()
    for a in angles:
        scene.render(request.at(frame, a))
    cached = (time.perf_counter() - start) / views
    start = time.perf_counter()
    for a in angles:
        scene.clear_cache()
        scene.render(request.at(frame, a))
    fresh = (time.perf_counter() - start) / views
    return {"cached_s": cached, "recompute_s": fresh, "speedup": fresh / cached}


def slider_latency(scene: Scene, frame: int = 0, strengths=(0.4, 1.1, 1.9, 2.6)) -> dict[str, float]:
    """What the app does when an edit slider moves: the knots are warmed once per frame, then each move
    is a drag preview and each release a full-quality render (which runs the backbone). Also the
    drag preview's error against the exact preview, relative to the edit's own change."""
    from ..edit.directions import Direction, latent_space_digest

    normal = torch.randn(512, generator=torch.Generator().manual_seed(0))
    scene.add_direction(Direction("bench", normal, latent_space=latent_space_digest(scene.G)))
    scene.clear_cache()
    start = time.perf_counter()
    scene.warm_edit_knots(frame, ["bench"])
    warm = time.perf_counter() - start
    drag, full, errors = [], [], []
    base = scene.render(RenderRequest(frame)).raw
    for s in strengths:
        start = time.perf_counter()
        preview = scene.render(RenderRequest(frame, edits={"bench": s}, approximate_edits=True))
        drag.append(time.perf_counter() - start)
        start = time.perf_counter()
        scene.render(RenderRequest(frame, edits={"bench": s}, quality="full"))
        full.append(time.perf_counter() - start)
        exact = scene.render(RenderRequest(frame, edits={"bench": s})).raw
        errors.append(float((preview.raw - exact).abs().mean() / (exact - base).abs().mean().clamp_min(1e-8)))
    n = len(strengths)
    return {"warm_s": warm, "drag_s": sum(drag) / n, "full_s": sum(full) / n, "relative_error": sum(errors) / n}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m innout.bench render", description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="ffhq", choices=["tiny", "ffhq"], help="generator architecture")
    parser.add_argument("--qualities", default="preview,full", help="comma-separated: preview, full")
    parser.add_argument("--views", type=int, default=4, help="camera views per measurement (default: 4)")
    parser.add_argument("--ood-resolution", type=int, default=256, help="OOD tri-plane resolution (default: 256)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    scene = bench_scene(args.arch, args.device, args.ood_resolution)
    threads = torch.get_num_threads()
    for quality in args.qualities.split(","):
        r = orbit_speed(scene, 0, quality, args.views)
        config = f"arch={args.arch} quality={quality} device={args.device} threads={threads} views={args.views}"
        print(f"render cached-planes  {r['cached_s']:.3f} s/view  {config}")
        print(f"render recompute      {r['recompute_s']:.3f} s/view  {config}")
        print(f"render orbit speed-up {r['speedup']:.2f}x  {config}")
    r = slider_latency(scene)
    config = f"arch={args.arch} device={args.device} threads={threads} knots={scene.knots}"
    print(f"slider warm knots     {r['warm_s']:.3f} s/frame (once per frame and edit)  {config}")
    print(f"slider drag preview   {r['drag_s']:.3f} s/move  {config}")
    print(f"slider release (full) {r['full_s']:.3f} s/release  {config}")
    print(f"slider drag error     {r['relative_error']:.3f} of the edit's change (mean abs, preview)  {config}")
    return 0
