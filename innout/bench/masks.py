"""How well a first-frame mask reaches the other frames: every propagation against the world's true masks.

    python -m innout.bench masks [--frames 8] [--objects clown_nose,...] [--prior FILE] [--json FILE]

Per built-in object, a world clip (the world benchmark's head turning 50 degrees of yaw and smiling) gives the
true mask of every frame; frame 0's is propagated with each of ``innout.fit.mask_warp.PROPAGATIONS`` and scored by
its IoU with the truth, averaged over frames 1..F-1 (frame 0 is given). One line per (object, propagation).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def mean_iou(masks: np.ndarray, truth: np.ndarray) -> float:
    """Mean IoU over frames 1..F-1 of bool masks [F, H, W] against the truth [F, H, W]."""
    scores = [float((m & t).sum() / max(1, (m | t).sum())) for m, t in zip(masks[1:], truth[1:], strict=True)]
    return float(np.mean(scores)) if scores else float("nan")


def run_mask_benchmark(frames: int = 8, objects: list[str] | None = None, prior: str | None = None,
                       log=print) -> list[dict]:  # fmt: skip
    from ..eg3d.checkpoint import load_generator
    from ..fit.mask_warp import PROPAGATIONS, mask_propagator
    from ..world.clips import ClipPlan, render_clip
    from ..world.figures import to_uint8
    from ..world.objects import builtin_objects, load_object
    from ..world.prior import ASSET, prior_config
    from .world import BASE_HEAD

    G = load_generator(prior or ASSET, "cpu")
    res = prior_config().neural_rendering_resolution
    rows = []
    for name in objects or builtin_objects():
        clip = render_clip(ClipPlan(BASE_HEAD, frames=frames), load_object(name), res)
        crops = to_uint8(clip.composite)
        truth = clip.object_mask[:, 0].numpy()
        for how in PROPAGATIONS:
            start = time.perf_counter()
            masks = mask_propagator(how, G, clip.cameras)(crops, truth[0])
            row = {"object": name, "propagation": how, "frames": frames, "mean_iou": mean_iou(masks, truth),
                   "seconds": time.perf_counter() - start}  # fmt: skip
            rows.append(row)
            log(f"masks/{name}/{how}: frames={frames} res={res} mean_iou={row['mean_iou']:.3f} "
                f"seconds={row['seconds']:.2f}")  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m innout.bench masks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--frames", type=int, default=8, help="frames per clip, >= 2 (default: 8)")
    parser.add_argument("--objects", help="comma-separated built-in objects (default: all)")
    parser.add_argument("--prior", help="the prior generator (default: assets/world_prior.safetensors)")
    parser.add_argument("--json", help="write the rows as JSON")
    args = parser.parse_args(argv)
    if args.frames < 2:
        parser.error("--frames must be at least 2")
    objects = [o for o in (args.objects or "").split(",") if o] or None
    rows = run_mask_benchmark(args.frames, objects, args.prior)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0
