"""``python -m innout``: the command-line entry point. Each stage of the pipeline adds a subcommand."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import __version__


def _cmd_download(args: argparse.Namespace) -> int:
    from .weights import REGISTRY, download_eg3d

    if args.what != "eg3d":
        raise SystemExit(f"unknown model {args.what!r}; available: {', '.join(REGISTRY)}")
    path = download_eg3d(args.dest, url=args.url)
    print(f"saved {path}")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from .eg3d.checkpoint import build_generator, read_official_generator, save_generator

    official = read_official_generator(args.pkl)
    G = build_generator(official.config, official.state_dict)
    out = Path(args.output or Path(args.pkl).with_suffix(".innout.safetensors"))
    save_generator(G, out, {"source": Path(args.pkl).name})
    print(f"wrote {out}")
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from .eg3d import frontal_label, load_generator, orbit_label
    from .eg3d.cameras import FRONTAL_PITCH, FRONTAL_YAW
    from .images import save_image
    from .weights import resolve_eg3d_checkpoint

    torch.manual_seed(args.seed)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    G = load_generator(resolve_eg3d_checkpoint(args.checkpoint), device)
    z = torch.from_numpy(np.random.RandomState(args.seed).randn(1, G.z_dim)).float().to(device)
    c_cond = frontal_label().to(device)
    c = orbit_label(FRONTAL_YAW + args.yaw, FRONTAL_PITCH + args.pitch).to(device)
    with torch.no_grad():
        ws = G.mapping(z, c_cond, truncation_psi=args.truncation)
        image = G.synthesis(ws, c)["image"]
    save_image(image[0], args.output)
    print(f"wrote {args.output}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from .frames import read_frames
    from .metrics import evaluate_frames

    pred, target = read_frames(args.pred), read_frames(args.target)
    identity = None if args.identity == "none" else args.identity
    report = evaluate_frames(pred, target, lpips_net=args.lpips_net, identity=identity, device=args.device)
    print(report.table())
    if args.json:
        report.write_json(args.json)
    if args.csv:
        report.write_csv(args.csv)
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    from .preprocess import PrepareOptions, prepare
    from .preprocess.export import write_prepared

    options = PrepareOptions(
        stride=args.stride,
        max_frames=args.max_frames,
        landmark_smoothing=args.landmark_smoothing,
        camera_smoothing=args.camera_smoothing,
        max_gap=args.max_gap,
    )
    pv = prepare(args.input, options, cache_dir=args.cache_dir, use_cache=not args.no_cache)
    write_prepared(pv, args.outdir, preview=not args.no_preview)
    print(pv.report())
    print(f"wrote {args.outdir}/frames/, dataset.json, prepare.json" + ("" if args.no_preview else ", preview.mp4"))
    return 0


def _cmd_fit(args: argparse.Namespace) -> int:
    import torch

    from .eg3d import load_generator
    from .fit.config import apply_overrides, get_preset
    from .fit.loop import tqdm_progress
    from .fit.run import fit_video, random_generator
    from .weights import resolve_eg3d_checkpoint

    config = apply_overrides(get_preset(args.preset), args.set or [])
    if args.seed is not None:
        config.seed = args.seed
    if args.max_frames is not None:
        config.max_frames = args.max_frames
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.random_generator:
        print(f"note: using an UNTRAINED random '{args.random_generator}' generator (for trying the flow only)")
        G = random_generator(args.random_generator)
    else:
        G = load_generator(resolve_eg3d_checkpoint(args.checkpoint), device)
    path = fit_video(
        args.input,
        G,
        config,
        method=args.method,
        mask=args.mask,
        output=args.output,
        workdir=args.workdir,
        progress=tqdm_progress(),
        device=device,
    )
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m innout", description="In-N-Out studio command line")
    parser.add_argument("--version", action="version", version=f"innout {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("download", help="download model weights into pretrained/")
    p.add_argument("what", choices=["eg3d"], help="which weights: eg3d = ffhqrebalanced512-128.pkl from NVIDIA NGC")
    p.add_argument("--dest", help="folder to save into (default: pretrained/ or $INNOUT_PRETRAINED_DIR)")
    p.add_argument("--url", help="download from this URL instead of NVIDIA's (a mirror)")
    p.set_defaults(func=_cmd_download)

    p = sub.add_parser("convert", help="convert an official EG3D .pkl into the safe, fast .safetensors format")
    p.add_argument("pkl", help="official network pickle (read without executing any code in it)")
    p.add_argument("-o", "--output", help="output .safetensors (default: beside the pickle)")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("sample", help="render a random face from the EG3D generator (downloads weights on first use)")
    p.add_argument("-o", "--output", default="sample.png", help="output PNG (default: sample.png)")
    p.add_argument("--seed", type=int, default=0, help="latent seed (default: 0)")
    p.add_argument("--truncation", type=float, default=0.7, help="truncation psi (default: 0.7)")
    p.add_argument("--yaw", type=float, default=0.0, help="camera yaw offset from frontal, radians")
    p.add_argument("--pitch", type=float, default=0.0, help="camera pitch offset from frontal, radians")
    p.add_argument(
        "--checkpoint", help="generator .pkl or .safetensors (default: $INNOUT_EG3D_CHECKPOINT, pretrained/)"
    )
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.set_defaults(func=_cmd_sample)

    p = sub.add_parser("prepare", help="video or photo -> aligned 512 crops + EG3D cameras (dataset.json)")
    p.add_argument("input", help="a video (mp4, mov, webm, mkv, gif, ...), a folder of frames, or one image")
    p.add_argument("outdir", help="output folder: frames/, dataset.json, prepare.json, preview.mp4, audio.mka")
    p.add_argument("--stride", type=int, default=1, help="keep every n-th frame (default: 1)")
    p.add_argument("--max-frames", type=int, default=None, help="keep at most this many frames")
    p.add_argument("--landmark-smoothing", type=float, default=1.5, help="landmark smoothing sigma, frames (0: off)")
    p.add_argument("--camera-smoothing", type=float, default=2.0, help="camera smoothing sigma, frames (0: off)")
    p.add_argument("--max-gap", type=int, default=8, help="fill runs of up to N frames without a face (default: 8)")
    p.add_argument("--cache-dir", default=None, help="cache folder (default: $INNOUT_CACHE_DIR or ~/.cache/innout)")
    p.add_argument("--no-cache", action="store_true", help="recompute even if a cached result exists")
    p.add_argument("--no-preview", action="store_true", help="do not write preview.mp4")
    p.set_defaults(func=_cmd_prepare)

    p = sub.add_parser("fit", help="fit In-N-Out (or a baseline) to a video or photo -> a scene file")
    p.add_argument("input", help="a video, a folder of frames or one image (prepared automatically, cached)")
    p.add_argument("--preset", default="preview", choices=["preview", "fast", "paper"], help="default: preview")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override any setting of the preset, e.g. --set joint.iterations=500 --set init.samples=64 "
        "(sections: init, inversion, joint, superres, pti; see innout/fit/config.py); repeatable",
    )
    p.add_argument("--method", default="innout", choices=["innout", "w+", "w", "pti"], help="default: innout")
    p.add_argument(
        "--mask",
        help="semi-supervised fit: a PNG mask of the OOD object on the first aligned crop (propagated by "
        "optical flow) or a folder with one mask per prepared frame; white = OOD",
    )
    p.add_argument("--max-frames", type=int, help="fit at most this many evenly spaced frames")
    p.add_argument("--seed", type=int, help="random seed (default: the preset's)")
    p.add_argument("-o", "--output", help="scene file to write (default: inside the work folder)")
    p.add_argument("--workdir", help="stage caches and checkpoints (default: ~/.cache/innout/fit)")
    p.add_argument(
        "--checkpoint", help="generator .pkl or .safetensors (default: $INNOUT_EG3D_CHECKPOINT, pretrained/)"
    )
    p.add_argument(
        "--random-generator",
        choices=["tiny", "ffhq"],
        help="use an untrained random generator instead of EG3D weights (to try the flow; results are noise)",
    )
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser("eval", help="reconstruction metrics in the paper's format (LPIPS, L2, SSIM, PSNR, ID)")
    p.add_argument("--pred", required=True, help="predicted frames: a video, a folder of images or one image")
    p.add_argument("--target", required=True, help="ground-truth frames, same count and size")
    p.add_argument("--lpips-net", default="alex", choices=["alex", "vgg"], help="LPIPS backbone (default: alex)")
    p.add_argument(
        "--identity", default="sface", help="identity backend: sface (default), arcface:/path/model.onnx, or none"
    )
    p.add_argument("--device", default="cpu", help="torch device for LPIPS (default: cpu)")
    p.add_argument("--json", help="also write the report (means and per-frame values) as JSON")
    p.add_argument("--csv", help="also write per-frame values and the means as CSV")
    p.set_defaults(func=_cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .eg3d.checkpoint import CheckpointError
    from .fit.config import SettingError
    from .fit.masks import MaskError
    from .frames import FramesError
    from .metrics import IdentityModelError, LPIPSWeightsError
    from .preprocess.media import InputError
    from .runtime import keep_freed_memory
    from .weights import IntegrityError, WeightsUnavailableError

    args = build_parser().parse_args(argv)
    keep_freed_memory()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    try:
        return args.func(args)
    except (
        WeightsUnavailableError,
        IntegrityError,
        CheckpointError,
        FileNotFoundError,
        FramesError,
        LPIPSWeightsError,
        IdentityModelError,
        InputError,
        MaskError,
        SettingError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
