"""``python -m innout.world train|w-avg|directions|clip|figures``: train the prior (or set its w_avg), learn its
directions, write a clip, draw the prior against the world."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from .prior import ASSET, TrainConfig

    parser = argparse.ArgumentParser(prog="python -m innout.world", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train the prior (resumable: run it again after a kill)")
    p.add_argument("--workdir", default=str(Path.home() / ".cache" / "innout" / "world"), help="data and checkpoints")
    p.add_argument("-o", "--output", default=str(ASSET), help=f"the trained generator (default: {ASSET})")
    p.add_argument("--steps", type=int, default=TrainConfig.steps, help=f"training steps ({TrainConfig.steps})")
    p.add_argument("--heads", type=int, default=TrainConfig.heads, help=f"training heads ({TrainConfig.heads})")
    p = sub.add_parser("w-avg", help="set a trained prior's w_avg (the mean of its mapped latents) in place")
    p.add_argument("--prior", default=str(ASSET))
    p = sub.add_parser("directions", help="learn the prior's edit directions from its known attributes")
    p.add_argument("--prior", default=str(ASSET))
    p.add_argument("-o", "--output", help="folder (default: assets/world_directions)")
    p.add_argument("--samples", type=int, default=2000)
    p = sub.add_parser("clip", help="write a world clip as frames + dataset.json (EG3D's layout)")
    p.add_argument("outdir")
    p.add_argument("--object", default="sunglasses", help="a built-in object or a spec file ('none': no object)")
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--resolution", type=int, default=256)
    p = sub.add_parser("figures", help="draw held-out heads (world above prior) and the smile edit as PNGs")
    p.add_argument("outdir")
    p.add_argument("--prior", default=str(ASSET))
    args = parser.parse_args(argv)

    if args.command == "train":
        import dataclasses

        from .prior import train_prior

        cfg = dataclasses.replace(TrainConfig(), steps=args.steps, heads=args.heads)
        print(f"wrote {train_prior(args.workdir, cfg, output=args.output)}")
    elif args.command == "w-avg":
        from .prior import set_prior_w_avg

        print(f"wrote {set_prior_w_avg(args.prior)}")
    elif args.command == "directions":
        from ..eg3d.checkpoint import load_generator
        from .directions import ASSET_DIR, learn_world_directions

        paths = learn_world_directions(load_generator(args.prior), args.output or ASSET_DIR, samples=args.samples)
        print("wrote " + ", ".join(map(str, paths)))
    elif args.command == "figures":
        from ..edit.directions import load_direction
        from ..eg3d.checkpoint import load_generator
        from .directions import ASSET_DIR
        from .figures import write_figures

        smile = ASSET_DIR / "smile.safetensors"
        direction = load_direction(smile) if smile.is_file() else None
        paths = write_figures(load_generator(args.prior), args.outdir, direction)
        print("wrote " + ", ".join(map(str, paths)))
    else:
        from .clips import ClipPlan, render_clip
        from .heads import HeadAttributes
        from .objects import load_object

        obj = None if args.object == "none" else load_object(args.object)
        clip = render_clip(ClipPlan(HeadAttributes(), frames=args.frames), obj, args.resolution)
        print(f"wrote {clip.write(args.outdir)}")
    return 0


sys.exit(main())
