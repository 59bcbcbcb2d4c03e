"""How many samples a learned direction needs, and what the learned smile does, on the world's prior.

    python -m innout.bench directions [--samples 100,250,500,1000,2000,4000] [--noise 0,1] [--heads 4]

Stability: ``learn-standard`` twice with independent samples (seeds 1 and 2) per sample count, labelled
by the world's exact attributes, and again with Gaussian label noise of ``noise`` times each attribute's
spread (a real labeller is noisy: CLIP's and the face mesh's scores correlate imperfectly with the truth);
one line per (samples, noise) with the angle between the two runs' directions (mean and worst over the
edits) and the held-out accuracy. Edit response: the smile direction learned from the largest count, read
back on random heads (``innout.world.edit_check``): the smile's change and whether it rises at every
strength, the largest change of every other attribute, the head's yaw, the distance left off the prior.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from ..edit.standard import angle_degrees, learn_standard


def stability(G, counts: list[int], noises: list[float]) -> None:
    from ..world.directions import DEFAULT_EDITS, WorldLabellers, WorldSource

    for noise in noises:
        for n in counts:
            runs = []
            for seed in (1, 2):
                with tempfile.TemporaryDirectory() as folder:
                    labels = WorldLabellers(noise=noise, seed=seed)
                    runs.append(learn_standard(WorldSource(G), [labels], DEFAULT_EDITS, samples=n, batch=250,
                                               seed=seed, out_dir=folder).directions)  # fmt: skip
            angles = [angle_degrees(runs[0][e].normal, runs[1][e].normal) for e in DEFAULT_EDITS]
            accuracy = np.mean([runs[0][e].info["held_out_accuracy"] for e in DEFAULT_EDITS])
            each = ", ".join(f"{e} {a:.1f}" for e, a in zip(DEFAULT_EDITS, angles, strict=True))
            print(
                f"stability samples={n} label_noise={noise:g}: angle between independent runs mean "
                f"{np.mean(angles):.1f}° worst {max(angles):.1f}° ({each}); held-out accuracy {accuracy:.3f}"
            )


def response(G, samples: int, noise: float, heads: int) -> None:
    from ..world.directions import DEFAULT_EDITS, WorldLabellers, WorldSource
    from ..world.edit_check import edit_response
    from ..world.heads import ATTRIBUTES

    with tempfile.TemporaryDirectory() as folder:
        smile = learn_standard(WorldSource(G), [WorldLabellers(DEFAULT_EDITS, noise=noise)], ["smile"],
                               samples=samples, batch=250, out_dir=folder).directions["smile"]  # fmt: skip
    started = time.perf_counter()
    r = edit_response(G, smile, heads=heads, yaw_everywhere=True)
    others = {n: float(np.abs(r.change(n)).max()) for n in ATTRIBUTES if n != "smile"}
    print(
        f"edit smile samples={samples} label_noise={noise:g} heads={heads} strengths {r.strengths}: smile change "
        f"{r.change('smile').min():.3f}..{r.change('smile').max():.3f}, rising at every step for "
        f"{int(r.monotonic('smile').sum())}/{heads} heads; largest change of another attribute "
        + ", ".join(f"{n} {v:.3f}" for n, v in others.items())
        + f"; |yaw| at most {np.abs(r.yaw).max():.3f}°; distance off the prior / edit length "
        f"{r.off_manifold[:, [0, -1]].mean():.2f} at ±{max(r.strengths):g} ({time.perf_counter() - started:.0f} s)"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m innout.bench directions", description=__doc__.split("\n")[0])
    parser.add_argument("--samples", default="100,250,500,1000,2000,4000")
    parser.add_argument("--noise", default="0,1")
    parser.add_argument("--heads", type=int, default=4)
    args = parser.parse_args(argv)
    from ..eg3d import load_generator
    from ..world.prior import ASSET

    G = load_generator(ASSET, "cpu")
    counts = [int(v) for v in args.samples.split(",")]
    noises = [float(v) for v in args.noise.split(",")]
    stability(G, counts, noises)
    for noise in noises:
        response(G, max(counts), noise, args.heads)
    return 0
