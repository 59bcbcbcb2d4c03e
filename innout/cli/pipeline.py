"""``prepare``, ``fit`` and ``eval``: from a video to aligned crops, to a scene, and the paper's metrics."""

from __future__ import annotations

import argparse

from ..numbers import SEED, Range
from .common import FRAME_COUNT, add_generator_arguments, load_generator, number

# innout.fit.mask_warp.PROPAGATIONS, written out: the command line does not import torch to build its help
MASK_PROPAGATIONS = ("colour", "both", "flow", "geometry")

STRIDE = Range(1, 1000, integer=True)
SIGMA = Range(0, 1000, unit="frames; 0 turns the filter off")
MAX_GAP = Range(0, 100_000, integer=True, unit="frames")
TIME_BUDGET = Range(0, 7 * 24 * 3600, unit="seconds")  # 0: one checkpoint interval per slice
UNFINISHED = 3  # the exit status of a slice that stopped before the end (the same command continues it)


def prepare_options(args: argparse.Namespace):
    from ..preprocess import PrepareOptions

    return PrepareOptions(
        stride=args.stride,
        max_frames=args.prepare_max_frames,
        landmark_smoothing=args.landmark_smoothing,
        crop_offset_smoothing=args.crop_offset_smoothing,
        camera_smoothing=args.camera_smoothing,
        max_gap=args.max_gap,
    )


def prepare(args: argparse.Namespace) -> int:
    from ..preprocess import prepare as run_prepare
    from ..preprocess.export import write_prepared

    pv = run_prepare(args.input, prepare_options(args), cache_dir=args.cache_dir, use_cache=not args.no_cache)
    write_prepared(pv, args.outdir, preview=not args.no_preview)
    print(pv.report())
    print(f"wrote {args.outdir}/frames/, dataset.json, prepare.json" + ("" if args.no_preview else ", preview.mp4"))
    return 0


def fit(args: argparse.Namespace) -> int:
    from ..fit import FitUnfinished, apply_overrides, fit_video, get_preset, time_budget
    from ..progress import tqdm_progress
    from ..runtime import pick_device

    overrides = [item for item in args.set or [] if item.strip() != "help"]
    config = apply_overrides(get_preset(args.preset), overrides)
    if len(overrides) < len(args.set or []):  # --set help: every setting, its value here, range and meaning
        from ..settings import settings_help

        print(f"settings of the '{args.preset}' preset{' with your --set values' if overrides else ''}:")
        print("\n".join(settings_help(config)))
        print("change any with --set KEY=VALUE; why the defaults are what they are: docs/settings.md")
        return 0
    if args.input is None:
        from ..errors import UserError

        raise UserError("fit needs an INPUT: a video, a folder of frames or one image")
    if args.seed is not None:
        config.seed = args.seed
    if args.max_frames is not None:
        config.max_frames = args.max_frames
    config.validate()  # every setting in its range before the generator loads and the video is prepared
    device = pick_device(args.device)
    G = load_generator(args, device)
    try:
        with time_budget(args.time_budget):
            path = fit_video(
                args.input, G, config, method=args.method, mask=args.mask,
                mask_propagation=args.mask_propagation, output=args.output, workdir=args.workdir,
                prepare_options=prepare_options(args), progress=tqdm_progress(), device=device,
            )  # fmt: skip
    except FitUnfinished as unfinished:  # a slice: the stages done and the last checkpoint are cached
        print(f"unfinished: {unfinished}; run the same command again to continue from there", flush=True)
        return UNFINISHED
    print(f"wrote {path}")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from ..frames import read_frames
    from ..metrics import evaluate_frames

    pred, target = read_frames(args.pred), read_frames(args.target)
    identity = None if args.identity == "none" else args.identity
    report = evaluate_frames(pred, target, lpips_net=args.lpips_net, identity=identity, device=args.device)
    print(report.table())
    if args.json:
        report.write_json(args.json)
    if args.csv:
        report.write_csv(args.csv)
    return 0


def add_prepare_arguments(p: argparse.ArgumentParser, max_frames_flag: str) -> None:
    p.add_argument("--stride", type=number(STRIDE), default=1, help="keep every n-th frame, 1-1000 (default: 1)")
    p.add_argument(max_frames_flag, dest="prepare_max_frames", type=number(FRAME_COUNT), default=None,
                   help="prepare at most this many frames of the input (>= 1)")  # fmt: skip
    p.add_argument(
        "--landmark-smoothing", type=number(SIGMA), default=1.5, help="landmark smoothing sigma, 0-1000 frames (0: off)"
    )
    p.add_argument(
        "--crop-offset-smoothing", type=number(SIGMA), default=10.0,
        help="smoothing sigma (0-1000 frames) of the MTCNN-minus-mesh offset that frames the crop (0: MTCNN's own "
        "points)",
    )  # fmt: skip
    p.add_argument(
        "--camera-smoothing", type=number(SIGMA), default=2.0, help="camera smoothing sigma, 0-1000 frames (0: off)"
    )
    p.add_argument(
        "--max-gap", type=number(MAX_GAP), default=8, help="fill runs of up to N frames without a face (default: 8)"
    )


def register(sub) -> None:
    p = sub.add_parser("prepare", help="video or photo -> aligned 512 crops + EG3D cameras (dataset.json)")
    p.add_argument("input", help="a video (mp4, mov, webm, mkv, gif, ...), a folder of frames, or one image")
    p.add_argument("outdir", help="output folder: frames/, dataset.json, prepare.json, preview.mp4, audio.mka")
    add_prepare_arguments(p, "--max-frames")
    p.add_argument("--cache-dir", default=None, help="cache folder (default: $INNOUT_CACHE_DIR or ~/.cache/innout)")
    p.add_argument("--no-cache", action="store_true", help="recompute even if a cached result exists")
    p.add_argument("--no-preview", action="store_true", help="do not write preview.mp4")
    p.set_defaults(func=prepare)

    p = sub.add_parser("fit", help="fit In-N-Out (or a baseline) to a video or photo -> a scene file")
    p.add_argument(
        "input", nargs="?", help="a video, a folder of frames or one image (prepared automatically, cached)"
    )
    p.add_argument("--preset", default="preview", choices=["preview", "fast", "paper"], help="default: preview")
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE",
        help="override any setting of the preset, e.g. --set joint.iterations=500 --set init.samples=64 "
        "(sections: init, inversion, joint, superres, pti); repeatable; --set help lists every setting",
    )  # fmt: skip
    p.add_argument("--method", default="innout", choices=["innout", "w+", "w", "pti"], help="default: innout")
    p.add_argument(
        "--time-budget", type=number(TIME_BUDGET), metavar="S",
        help="stop at the next checkpoint once S seconds are spent, print a line starting 'unfinished:' and exit "
        "with status 3; the same command again continues from there (a fit in slices: the result equals an "
        "uninterrupted fit's)",
    )  # fmt: skip
    p.add_argument(
        "--mask",
        help="semi-supervised fit: a PNG mask of the OOD object on the first aligned crop (propagated to the "
        "other frames, see --mask-propagation) or a folder with one mask per prepared frame; white = OOD",
    )
    p.add_argument(
        "--mask-propagation", default="colour", choices=MASK_PROPAGATIONS,
        help="how --mask's first-frame mask reaches the other frames: optical flow, the head's geometry (the "
        "generator's mean face seen by each frame's camera), both (a pixel is the object's when either says so), "
        "or colour (both, then each pixel decided by the first frame's object and background colours); "
        "default: colour",
    )  # fmt: skip
    p.add_argument("--max-frames", type=number(FRAME_COUNT), help="fit at most this many evenly spaced frames (>= 1)")
    p.add_argument("--seed", type=number(SEED), help="random seed, 0 to 2^32-1 (default: the preset's)")
    p.add_argument("-o", "--output", help="scene file to write (default: inside the work folder)")
    p.add_argument("--workdir", help="stage caches and checkpoints (default: ~/.cache/innout/fit)")
    add_prepare_arguments(p, "--prepare-max-frames")
    add_generator_arguments(p)
    p.set_defaults(func=fit)

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
    p.set_defaults(func=evaluate)
