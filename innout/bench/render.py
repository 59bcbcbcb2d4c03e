"""Editing and orbit speed of a scene: cached tri-planes against recomputing them, per quality.

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
from ..fit.run import random_generator
from ..fit.scene_file import SceneData
from ..fit.synthetic import band_ood_field
from ..scene import Scene


def bench_scene(arch: str, device: str, ood_resolution: int = 256) -> Scene:
    G = random_generator(arch).to(device)
    with torch.no_grad():
        ws = G.mapping(torch.randn(2, G.z_dim, device=device), frontal_label(INO_FOCAL).to(device).expand(2, -1))
    cameras = torch.cat([orbit_label(math.pi / 2 + a, math.pi / 2) for a in (-0.1, 0.1)]).to(device)
    ood = band_ood_field(2, resolution=ood_resolution).to(device)
    return Scene(SceneData(G, ws, cameras, ood, [0, 1]))


def orbit_speed(scene: Scene, frame: int = 0, quality: str = "preview", views: int = 4) -> dict[str, float]:
    """Seconds per view when orbiting with cached tri-planes and when recomputing them."""
    turns = [2 * math.pi * i / views for i in range(views)]
    angles = [(0.3 * math.sin(t), 0.1 * math.cos(t)) for t in turns]
    scene.render(frame, angles[0], quality=quality)  # warm up; fills the cache
    start = time.perf_counter()
    for a in angles:
        scene.render(frame, a, quality=quality)
    cached = (time.perf_counter() - start) / views
    start = time.perf_counter()
    for a in angles:
        scene.clear_cache()
        scene.render(frame, a, quality=quality)
    fresh = (time.perf_counter() - start) / views
    return {"cached_s": cached, "recompute_s": fresh, "speedup": fresh / cached}


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
    return 0
