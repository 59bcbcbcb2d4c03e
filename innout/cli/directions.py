"""``directions learn`` and ``directions show``: edit directions for a generator."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..numbers import SEED, Range
from .common import TRUNCATION, add_generator_arguments, load_generator, note, number, parse_layers

SAMPLES = Range(8, 1_000_000, integer=True)  # a direction needs at least 8 scored samples
BATCH = Range(1, 1024, integer=True)
FRACTION = Range(0, 0.5, lo_open=True)
ANGLE_STD = Range(0, 90, unit="degrees")


def learn(args: argparse.Namespace) -> int:
    from ..edit.directions import save_direction
    from ..edit.labelers import make_labeler
    from ..edit.learn import GeneratorSource, learn_direction
    from ..places import directions_dir
    from ..runtime import pick_device

    G = load_generator(args, pick_device(args.device))
    layers = parse_layers(args.layers)
    labeler = make_labeler(args.labeler, clip_weights=args.clip_weights)
    source = GeneratorSource(
        G, truncation=args.truncation, yaw_std=math.radians(args.yaw_std), pitch_std=math.radians(args.pitch_std)
    )
    direction = learn_direction(
        args.name, source, labeler, samples=args.samples, batch=args.batch, fraction=args.fraction,
        seed=args.seed, layers=layers,
    )  # fmt: skip
    out = Path(args.output or directions_dir() / f"{args.name}.safetensors")
    save_direction(direction, out)
    info = direction.info
    print(
        f"wrote {out}: held-out accuracy {info['held_out_accuracy']:.2f}, correlation with the score "
        f"{info['score_correlation']:.2f}, {info['scored']}/{info['samples']} samples scored"
    )
    return 0


def learn_standard(args: argparse.Namespace) -> int:
    """The standard set for this generator, with the time estimate first and a resumable labelling pass."""
    from tqdm import tqdm

    from ..edit.plan import (
        default_samples,
        duration_text,
        measured_seconds_per_sample,
        record_learn_time,
        standard_plan,
    )
    from ..edit.standard import learn_standard as learn
    from ..runtime import pick_device

    device = pick_device(args.device)
    if args.demo_generator == "faces":
        from ..eg3d import load_generator as load
        from ..world import directions as _registers_the_faces_plan  # noqa: F401
        from ..world.prior import ASSET

        G = load(ASSET, device)
    elif args.demo_generator == "tiny":
        from ..eg3d.random import random_generator

        G = random_generator("tiny").to(device)
    else:
        G = load_generator(args, device)
    edits = [e.strip() for e in args.edits.split(",") if e.strip()] if args.edits else None
    plan = standard_plan(
        G, demo=args.demo_generator, use_clip=not args.no_clip, clip_weights=args.clip_weights, edits=edits,
        super_resolution=not args.raw_renders, truncation=args.truncation,
    )  # fmt: skip
    samples = args.samples or default_samples(device)
    out = Path(args.output) if args.output else plan.folder
    print(f"learning {', '.join(plan.edits)} from {samples} samples labelled by {plan.what} ({device})")
    known = measured_seconds_per_sample(plan.key, device)
    if known:
        print(f"estimate: about {duration_text(known * samples)} ({known:.2g} s per sample, measured here before)")

    def estimate(per_sample: float, left: int) -> None:
        print(f"estimate: about {duration_text(per_sample * left)} left ({per_sample:.2g} s per sample, first batch)")

    with tqdm(total=samples, desc="labelling", unit="sample") as bar:

        def progress(done: int, total: int) -> None:
            bar.update(done - bar.n)

        result = learn(
            plan.source, plan.labellers, plan.edits, samples=samples, batch=args.batch, seed=args.seed,
            out_dir=out, progress=progress, on_estimate=estimate,
        )  # fmt: skip
    record_learn_time(plan.key, device, result.seconds_per_sample)
    if result.cached_samples:
        print(f"{result.cached_samples} of {samples} samples came from the cache of an earlier run")
    for d, path in zip(result.directions.values(), result.paths, strict=True):
        info = d.info
        pose = ", ".join(f"{k} {v:+.2f}" for k, v in info["pose_cosines_before"].items()) or "none"
        print(
            f"wrote {path}: held-out accuracy {info['held_out_accuracy']:.2f}, {info['scored']}/{samples} scored, "
            f"cosine with pose before conditioning: {pose}"
        )
    return 0


def show(args: argparse.Namespace) -> int:
    """List the directions of files and folders. A bad file inside a folder is noted and the others listed;
    a bad file named on the command line is an error (exit 2, after listing the others)."""
    from ..edit.directions import DirectionError, load_direction, scan_directions
    from ..places import directions_dir

    paths = [Path(p) for p in args.paths] or [directions_dir()]
    found, errors = {}, []
    for path in paths:
        if path.is_dir():
            in_folder, problems = scan_directions([path])
            found.update(in_folder)
            for problem in problems:
                note(f"left out {problem}")
        elif args.paths:  # a file the user named
            try:
                direction = load_direction(path)
                found[direction.name] = direction
            except DirectionError as exc:
                errors.append(str(exc))
    if not found:
        print("no directions found in " + ", ".join(map(str, paths)))
    for d in found.values():
        layers = "all" if d.layers is None else ",".join(map(str, d.layers))
        print(
            f"{d.name}: range {d.value_range[0]:g}..{d.value_range[1]:g}, scale {d.scale:.3g}, layers {layers}, "
            f"latent space {d.latent_space or 'unknown'}, {d.info}"
        )
    if errors:
        raise DirectionError("; ".join(errors))
    return 0


def register(sub) -> None:
    p = sub.add_parser("directions", help="learn or list edit directions")
    dsub = p.add_subparsers(dest="action", required=True)
    q = dsub.add_parser("learn", help="learn a direction: sample the generator, label the renders, fit a classifier")
    q.add_argument("name", help="the edit's name, e.g. smile")
    q.add_argument(
        "--labeler", required=True,
        help="smile, mouth_open, eyes_open, yaw, pitch (face-mesh based, offline), brightness, warmth (colour "
        "statistics, need no face) or clip:TEXT, e.g. 'clip:A portrait of a smiling face' (needs --clip-weights)",
    )  # fmt: skip
    q.add_argument("--clip-weights", help="folder of a CLIP model in Hugging Face format (for clip: labellers)")
    q.add_argument(
        "--samples", type=number(SAMPLES), default=500, help="latents to sample and label, at least 8 (default: 500)"
    )
    q.add_argument("--batch", type=number(BATCH), default=8, help="renders per batch, 1-1024 (default: 8)")
    q.add_argument(
        "--fraction", type=number(FRACTION), default=0.25,
        help="top/bottom share used as classes, above 0 up to 0.5 (default: 0.25)",
    )  # fmt: skip
    q.add_argument(
        "--truncation", type=number(TRUNCATION), default=0.7, help="truncation psi of the samples, 0-2 (default: 0.7)"
    )
    q.add_argument(
        "--yaw-std", type=number(ANGLE_STD), default=0.0,
        help="random camera yaw of the renders, 0-90 degrees (default: 0)",
    )  # fmt: skip
    q.add_argument(
        "--pitch-std", type=number(ANGLE_STD), default=0.0, help="random camera pitch, 0-90 degrees (default: 0)"
    )
    q.add_argument("--layers", help="ws the direction moves, e.g. 0-7 (default: all 14)")
    q.add_argument("--seed", type=number(SEED), default=0, help="random seed, 0 to 2^32-1 (default: 0)")
    q.add_argument("-o", "--output", help="direction file (default: pretrained/directions/NAME.safetensors)")
    add_generator_arguments(q)
    q.set_defaults(func=learn)
    q = dsub.add_parser(
        "learn-standard",
        help="learn the standard edits (smile, mouth_open, eyes_open from the face mesh; age, glasses, gender, "
        "blond_hair from CLIP), conditioned on head pose; resumable",
    )  # fmt: skip
    q.add_argument(
        "--samples", type=number(SAMPLES), default=None,
        help="latents to sample and label (default: 2000 on a GPU, 500 on a CPU; see docs/directions.md)",
    )  # fmt: skip
    q.add_argument("--batch", type=number(BATCH), default=8, help="renders per batch, 1-1024 (default: 8)")
    q.add_argument("--edits", help="a comma-separated subset, e.g. smile,age (default: all)")
    q.add_argument("--no-clip", action="store_true", help="face-mesh edits only: no CLIP download")
    q.add_argument("--clip-weights", help="a local CLIP folder in Hugging Face's layout (default: fetched once)")
    q.add_argument("--raw-renders", action="store_true", help="label the 128² neural renders (faster, coarser)")
    q.add_argument(
        "--truncation", type=number(TRUNCATION), default=0.7, help="truncation psi of the samples, 0-2 (default: 0.7)"
    )
    q.add_argument("--seed", type=number(SEED), default=0, help="random seed, 0 to 2^32-1 (default: 0)")
    q.add_argument(
        "--demo-generator", choices=["faces", "tiny"],
        help="learn for a demo generator instead (faces: from the world's exact attributes; tiny: colours)",
    )  # fmt: skip
    q.add_argument("-o", "--output", help="folder for the directions (default: pretrained/directions[/demo-KIND])")
    add_generator_arguments(q)
    q.set_defaults(func=learn_standard)
    q = dsub.add_parser("show", help="list direction files and what they were learned with")
    q.add_argument("paths", nargs="*", help="files or folders (default: pretrained/directions)")
    q.set_defaults(func=show)
