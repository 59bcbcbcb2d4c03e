"""Metric benchmarks: LPIPS speed inside an optimisation loop, and identity-score distributions.

``python -m innout.bench metrics lpips``: forward + backward of LPIPS on one 512x512 pair (the gradient
flows to the prediction, as in a fitting loop), and forward only.
``python -m innout.bench metrics identity``: cosine similarities of same-person pairs (two frames of one
clip) and different-person pairs (frames of two clips), on the clips in ../shared/data/videos.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from ..frames import read_frames
from ..metrics import get_lpips, make_embedder
from ..metrics.identity import cosine
from . import SHARED_DATA


def bench_lpips(net: str, size: int, repeats: int) -> None:
    model = get_lpips(net)
    target = torch.rand(1, 3, size, size) * 2 - 1
    pred = (torch.rand(1, 3, size, size) * 2 - 1).requires_grad_(True)

    def step() -> None:
        model(pred, target).sum().backward()

    for label, fn in (("forward+backward", step), ("forward", lambda: model(pred.detach(), target))):
        fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        print(
            f"metrics/lpips_{net}_{label}: median={statistics.median(times):.3f}s min={min(times):.3f}s | "
            f"device=cpu threads={torch.get_num_threads()} size={size}x{size} batch=1"
        )


def _describe(name: str, values: list[float]) -> str:
    v = np.array(values)
    return (
        f"metrics/identity_{name}: n={len(v)} mean={v.mean():.3f} std={v.std():.3f} min={v.min():.3f} "
        f"p5={np.percentile(v, 5):.3f} median={np.median(v):.3f} p95={np.percentile(v, 95):.3f} max={v.max():.3f}"
    )


def bench_identity(data: Path, backend: str, stride: int) -> None:
    """Same person: two frames of one clip at least ``stride`` frames apart. Different people: frames of
    two different clips. The LivePortrait clips d19 and d18 are listed as 'the same man' in the data
    manifest, but they show two different men (looked at, and the embedder agrees); their pairs are
    reported on their own line."""
    embedder = make_embedder(backend)
    clips = sorted((data / "videos").glob("*.mp4"))
    per_clip: dict[str, list[np.ndarray]] = {}
    for clip in clips:
        frames = read_frames(clip)[::stride]
        per_clip[clip.stem] = [e for e in (embedder.embed(f) for f in frames) if e is not None]
    same = [cosine(a, b) for embs in per_clip.values() for a, b in itertools.combinations(embs, 2)]
    different = [
        cosine(a, b)
        for (_, ea), (_, eb) in itertools.combinations(per_clip.items(), 2)
        for a, b in itertools.product(ea, eb)
    ]
    d19_d18 = [
        cosine(a, b)
        for a, b in itertools.product(
            per_clip.get("lp_d19_eyeglasses_talking", []), per_clip.get("lp_d18_clean_talking", [])
        )
    ]
    where = f"{len(clips)} clips, every {stride}th frame; backend={embedder.name}"
    print(_describe("same_person", same) + f" | pairs of frames within one clip; {where}")
    print(_describe("different_people", different) + f" | pairs of frames from two clips; {where}")
    if d19_d18:
        print(_describe("lp_d19_vs_lp_d18", d19_d18) + " | the manifest's 'same man' pair: two different men")
    threshold = (np.percentile(same, 5) + np.percentile(different, 95)) / 2
    print(
        f"metrics/identity_separation: threshold={threshold:.3f} "
        f"same_above={np.mean(np.array(same) > threshold):.3f} "
        f"different_below={np.mean(np.array(different) < threshold):.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m innout.bench metrics", description=__doc__)
    parser.add_argument("what", nargs="*", default=["lpips", "identity"], help="lpips, identity (default: both)")
    parser.add_argument("--net", default="vgg", choices=["alex", "vgg"], help="LPIPS backbone (default: vgg)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help="the shared data folder")
    parser.add_argument("--identity", default="sface", help="identity backend (sface or arcface:PATH)")
    parser.add_argument("--stride", type=int, default=10, help="use every n-th video frame (default: 10)")
    args = parser.parse_args(argv)
    unknown = set(args.what) - {"lpips", "identity"}
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}: choose lpips and/or identity")
    from ..runtime import keep_freed_memory

    keep_freed_memory()
    if "lpips" in args.what:
        bench_lpips(args.net, args.size, args.repeats)
    if "identity" in args.what:
        if not args.data.is_dir():
            parser.error(f"{args.data} not found: pass --data /path/to/shared/data")
        bench_identity(args.data, args.identity, args.stride)
    return 0
