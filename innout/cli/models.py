"""``download``, ``convert`` and ``sample``: getting the EG3D weights and checking them."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..numbers import SEED
from .common import PITCH_DEGREES, TRUNCATION, YAW_DEGREES, UsageError, add_device_argument, number


def download(args: argparse.Namespace) -> int:
    if args.what == "directions":
        from ..edit.published import PUBLISHED, download_published

        if args.name not in PUBLISHED:
            known = ", ".join(PUBLISHED)
            raise UsageError(f"name the published directions: one of {known} (e.g. download directions goae)")
        print(f"note: {PUBLISHED[args.name].note}")
        for path in download_published(args.name, args.dest, base_url=args.url):
            print(f"saved {path}")
        return 0
    if args.name:
        raise UsageError(f"download {args.what} takes no name (got {args.name!r})")
    if args.what == "clip":
        from ..edit.clip_weights import CLIP_REPO, resolve_clip_weights

        if args.dest:
            raise UsageError("download clip saves into pretrained/clip/ (or set INNOUT_PRETRAINED_DIR)")
        print(f"saved {resolve_clip_weights(None, endpoint=args.url)} ({CLIP_REPO})")
        return 0
    from ..eg3d.download import download_eg3d

    path = download_eg3d(args.dest, url=args.url)
    print(f"saved {path}")
    return 0


def convert(args: argparse.Namespace) -> int:
    from ..eg3d.building import build_generator
    from ..eg3d.official_pickle import read_official_generator
    from ..eg3d.weights_file import save_generator

    official = read_official_generator(args.pkl)
    G = build_generator(official.config, official.state_dict)
    out = Path(args.output or Path(args.pkl).with_suffix(".innout.safetensors"))
    save_generator(G, out, {"source": Path(args.pkl).name})
    print(f"wrote {out}")
    return 0


def sample(args: argparse.Namespace) -> int:
    import math

    import numpy as np
    import torch

    from ..eg3d import frontal_label, load_generator, orbit_label
    from ..eg3d.cameras import FRONTAL_PITCH, FRONTAL_YAW
    from ..eg3d.download import resolve_eg3d_checkpoint
    from ..images import save_image
    from ..runtime import pick_device

    torch.manual_seed(args.seed)
    device = pick_device(args.device)
    G = load_generator(resolve_eg3d_checkpoint(args.checkpoint), device)
    z = torch.from_numpy(np.random.RandomState(args.seed).randn(1, G.z_dim)).float().to(device)
    c_cond = frontal_label().to(device)
    c = orbit_label(FRONTAL_YAW + math.radians(args.yaw), FRONTAL_PITCH + math.radians(args.pitch)).to(device)
    with torch.no_grad():
        ws = G.mapping(z, c_cond, truncation_psi=args.truncation)
        image = G.synthesis(ws, c)["image"]
    save_image(image[0], args.output)
    print(f"wrote {args.output}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("download", help="download model weights or published edit directions into pretrained/")
    p.add_argument(
        "what", choices=["eg3d", "clip", "directions"],
        help="eg3d = ffhqrebalanced512-128.pkl from NVIDIA NGC; clip = openai/clip-vit-base-patch32 from the "
        "Hugging Face Hub (pinned revision; the age/glasses/... labellers); directions NAME = published edit "
        "directions (goae: GOAE's age, glass and anger W+ offsets; no licence statement, downloaded, never bundled)",
    )  # fmt: skip
    p.add_argument("name", nargs="?", help="for directions: which published set (goae)")
    p.add_argument("--dest", help="folder to save into (default: pretrained/ or $INNOUT_PRETRAINED_DIR)")
    p.add_argument("--url", help="download from this URL instead (a mirror; for clip: another Hub endpoint)")
    p.set_defaults(func=download)

    p = sub.add_parser("convert", help="convert an official EG3D .pkl into the safe, fast .safetensors format")
    p.add_argument("pkl", help="official network pickle (read without executing any code in it)")
    p.add_argument("-o", "--output", help="output .safetensors (default: beside the pickle)")
    p.set_defaults(func=convert)

    p = sub.add_parser("sample", help="render a random face from the EG3D generator (downloads weights on first use)")
    p.add_argument("-o", "--output", default="sample.png", help="output PNG (default: sample.png)")
    p.add_argument("--seed", type=number(SEED), default=0, help="latent seed, 0 to 2^32-1 (default: 0)")
    p.add_argument("--truncation", type=number(TRUNCATION), default=0.7, help="truncation psi, 0-2 (default: 0.7)")
    p.add_argument(
        "--yaw", type=number(YAW_DEGREES), default=0.0,
        help="camera yaw offset from frontal, -180..180 degrees (default: 0)",
    )  # fmt: skip
    p.add_argument(
        "--pitch", type=number(PITCH_DEGREES), default=0.0,
        help="camera pitch offset from frontal, -90..90 degrees (default: 0)",
    )  # fmt: skip
    p.add_argument(
        "--checkpoint", help="generator .pkl or .safetensors (default: $INNOUT_EG3D_CHECKPOINT, pretrained/)"
    )
    add_device_argument(p)
    p.set_defaults(func=sample)
