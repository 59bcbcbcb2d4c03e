"""``python -m innout``: the command-line entry point. Each stage of the pipeline adds a subcommand."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import __version__


def _setting_error(message: str) -> Exception:
    from .fit.config import SettingError  # imported late: it pulls in torch

    return SettingError(message)


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
        crop_offset_smoothing=args.crop_offset_smoothing,
        camera_smoothing=args.camera_smoothing,
        max_gap=args.max_gap,
    )
    pv = prepare(args.input, options, cache_dir=args.cache_dir, use_cache=not args.no_cache)
    write_prepared(pv, args.outdir, preview=not args.no_preview)
    print(pv.report())
    print(f"wrote {args.outdir}/frames/, dataset.json, prepare.json" + ("" if args.no_preview else ", preview.mp4"))
    return 0


def _generator(args: argparse.Namespace, device: str):
    """The generator of ``--checkpoint`` (downloaded on first use), or ``--random-generator``'s."""
    from .eg3d import load_generator
    from .fit.run import random_generator
    from .weights import resolve_eg3d_checkpoint

    if args.random_generator:
        print(f"note: using an UNTRAINED random '{args.random_generator}' generator (for trying the flow only)")
        return random_generator(args.random_generator).to(device)
    return load_generator(resolve_eg3d_checkpoint(args.checkpoint), device)


def _cmd_fit(args: argparse.Namespace) -> int:
    import torch

    from .fit.config import apply_overrides, get_preset
    from .fit.loop import tqdm_progress
    from .fit.run import fit_video

    config = apply_overrides(get_preset(args.preset), args.set or [])
    if args.seed is not None:
        config.seed = args.seed
    if args.max_frames is not None:
        config.max_frames = args.max_frames
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    G = _generator(args, device)
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


def _parse_edits(items: list[str] | None) -> dict[str, float]:
    edits = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            edits[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise _setting_error(f"--edit takes NAME=STRENGTH (e.g. smile=1.5), got {item!r}")
    return edits


def _parse_angles(text: str | None) -> tuple[float, float] | None:
    import math

    if text is None:
        return None
    try:
        yaw, pitch = (math.radians(float(v)) for v in text.split(","))
    except ValueError as exc:
        raise _setting_error(f"--camera takes YAW,PITCH in degrees (e.g. 20,-5), got {text!r}") from exc
    return yaw, pitch


def _load_scene(args: argparse.Namespace):
    import torch

    from .edit.directions import default_directions_dir
    from .edit.mapper import load_mapper
    from .scene import Scene

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    scene = Scene.load(args.scene, device)
    for note in scene.load_directions([*(args.directions or []), default_directions_dir()]):
        print(f"note: {note}", file=sys.stderr)
    for spec in args.mapper or []:
        path, _, name = spec.partition(":")
        scene.add_mapper(load_mapper(path, name or None))
    return scene


def _render_options(args: argparse.Namespace):
    from .export import RenderOptions

    return RenderOptions(
        edits=_parse_edits(args.edit),
        conditional=[c for c in (args.conditional or "").split(",") if c],
        remove_ood=args.remove_ood,
        removal=args.removal,
        outside_scale=args.outside_scale,
        quality=args.quality,
        smoothing=args.smoothing,
    )


def _cmd_render(args: argparse.Namespace) -> int:
    import math

    import numpy as np

    from .export import camera_path, export_camera_path, export_video
    from .fit.loop import tqdm_progress
    from .images import save_image

    out = Path(args.output)
    suffix = out.suffix.lower()
    if suffix not in (".png", ".jpg", ".jpeg", ".mp4"):
        raise _setting_error(f"output must end in .png, .jpg or .mp4, got {out.name}")
    camera = _parse_angles(args.camera)
    path_kind = "orbit" if args.orbit else "yaw-sweep" if args.yaw_sweep else None
    if suffix == ".mp4" and not path_kind:
        if camera is not None:
            raise _setting_error("a video of every frame from one fixed --camera is not supported; use --orbit")
        if args.removal == "mask" and args.removal_mask:
            raise _setting_error("--removal-mask is for single frames; videos use each frame's own OOD opacity")
    options = _render_options(args)
    scene = _load_scene(args)
    scene.check_edits(options.edits)  # before any source video is read
    if suffix in (".png", ".jpg", ".jpeg"):
        from .fit.masks import read_mask

        mask = read_mask(args.removal_mask) if args.removal_mask else None
        result = options.render(
            scene, args.frame, camera, removal_mask=mask, with_depth=bool(args.depth), with_blend=bool(args.blend)
        )
        save_image(result.image, out)
        if args.depth:
            d = result.depth
            save_image(((d.max() - d) / max(float(np.ptp(d)), 1e-6) * 255).astype(np.uint8), args.depth)
        if args.blend:
            save_image((result.ood_opacity * 255).round().astype(np.uint8), args.blend)
    elif path_kind:
        yaw, pitch = math.radians(args.path_yaw), math.radians(args.path_pitch)
        views = camera_path(path_kind, args.views, yaw=yaw, pitch=pitch)
        export_camera_path(scene, out, args.frame, views, options, fps=args.fps, progress=tqdm_progress())
    else:
        export_video(
            scene, out, options, paste=not args.no_paste, audio=not args.no_audio, source=args.source,
            progress=tqdm_progress(),
        )  # fmt: skip
    print(f"wrote {out}")
    return 0


def _cmd_mesh(args: argparse.Namespace) -> int:
    from .export.mesh import extract_mesh, write_mesh

    scene = _load_scene(args)
    mesh = extract_mesh(
        scene, args.frame, _parse_edits(args.edit), resolution=args.resolution, level=args.level,
        remove_ood=args.remove_ood,
    )  # fmt: skip
    write_mesh(mesh, args.output)
    n_ood = int(mesh.part.sum())
    print(f"wrote {args.output}: {len(mesh.vertices)} vertices ({n_ood} OOD), {len(mesh.faces)} triangles")
    return 0


def _cmd_directions_learn(args: argparse.Namespace) -> int:
    import torch

    from .edit.directions import default_directions_dir, save_direction
    from .edit.labelers import make_labeler
    from .edit.learn import GeneratorSource, learn_direction

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    G = _generator(args, device)
    layers = _parse_layers(args.layers)
    labeler = make_labeler(args.labeler, clip_weights=args.clip_weights)
    source = GeneratorSource(G, truncation=args.truncation, yaw_std=args.yaw_std, pitch_std=args.pitch_std)
    direction = learn_direction(
        args.name, source, labeler, samples=args.samples, batch=args.batch, fraction=args.fraction,
        seed=args.seed, layers=layers,
    )  # fmt: skip
    out = Path(args.output or default_directions_dir() / f"{args.name}.safetensors")
    save_direction(direction, out)
    info = direction.info
    print(
        f"wrote {out}: held-out accuracy {info['held_out_accuracy']:.2f}, correlation with the score "
        f"{info['score_correlation']:.2f}, {info['scored']}/{info['samples']} samples scored"
    )
    return 0


def _parse_layers(text: str | None) -> list[int] | None:
    if not text:
        return None
    layers: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            layers += list(range(int(lo), int(hi or lo) + 1))
    except ValueError as exc:
        raise _setting_error(f"--layers takes indices and ranges like 0-7 or 0,1,4-5, got {text!r}") from exc
    if any(not 0 <= i < 14 for i in layers):
        raise _setting_error("--layers must be between 0 and 13 (EG3D has 14 ws)")
    return sorted(set(layers))


def _cmd_directions_show(args: argparse.Namespace) -> int:
    from .edit.directions import default_directions_dir, load_directions

    paths = args.paths or [default_directions_dir()]
    found = load_directions([p for p in paths if Path(p).exists()])
    if not found:
        print("no directions found in " + ", ".join(map(str, paths)))
    for d in found.values():
        layers = "all" if d.layers is None else ",".join(map(str, d.layers))
        print(
            f"{d.name}: range {d.value_range[0]:g}..{d.value_range[1]:g}, scale {d.scale:.3g}, layers {layers}, "
            f"latent space {d.latent_space or 'unknown'}, {d.info}"
        )
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
    p.add_argument(
        "--crop-offset-smoothing", type=float, default=10.0,
        help="smoothing sigma (frames) of the MTCNN-minus-mesh offset that frames the crop (0: MTCNN's own points)",
    )  # fmt: skip
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
    _add_render_parsers(sub)
    return parser


def _add_scene_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scene", help="a scene file written by `fit` (.safetensors)")
    p.add_argument("--frame", type=int, default=0, help="fitted frame for images, meshes and camera paths (default: 0)")
    p.add_argument(
        "--edit", action="append", metavar="NAME=STRENGTH",
        help="apply an edit (a direction or mapper by name), e.g. --edit smile=1.5; repeatable",
    )  # fmt: skip
    p.add_argument(
        "--directions", action="append", metavar="PATH",
        help="direction files or folders (.safetensors or InterfaceGAN .npy) to load, besides pretrained/directions",
    )  # fmt: skip
    p.add_argument(
        "--mapper", action="append", metavar="FILE[:NAME]",
        help="a StyleCLIP levels-mapper checkpoint, used as an edit named NAME (default: the file name); repeatable",
    )  # fmt: skip
    p.add_argument("--remove-ood", action="store_true", help="remove the out-of-distribution object")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")


def _add_render_parsers(sub) -> None:
    p = sub.add_parser("render", help="render a fitted scene: a frame (.png), the edited video or a camera path (.mp4)")
    _add_scene_arguments(p)
    p.add_argument(
        "-o", "--output", required=True,
        help=".png/.jpg: one frame; .mp4: every fitted frame pasted back into the source video with its audio, "
        "or with --orbit/--yaw-sweep a novel-view video of --frame",
    )  # fmt: skip
    p.add_argument(
        "--conditional", metavar="NAME,NAME",
        help="conditional editing: project these directions out of every edit so their attributes stay put",
    )  # fmt: skip
    p.add_argument(
        "--removal", default="global", choices=["global", "mask"],
        help="how --remove-ood removes: global (b = 0 everywhere, default) or mask (b = 0 only inside the "
        "dilated OOD mask, the official variant)",
    )  # fmt: skip
    p.add_argument("--removal-mask", help="for images with --removal mask: PNG mask of what to remove (white = OOD)")
    p.add_argument(
        "--outside-scale", type=float, default=1.0,
        help="with --removal mask: multiply b outside the mask by this (official code: 1.2; default: 1)",
    )  # fmt: skip
    p.add_argument("--camera", metavar="YAW,PITCH", help="render from this camera, degrees from frontal (images only)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--orbit", action="store_true", help="with .mp4: orbit the camera around --frame")
    group.add_argument("--yaw-sweep", action="store_true", help="with .mp4: sweep the camera left-right around --frame")
    p.add_argument("--views", type=int, default=60, help="views in a camera path (default: 60)")
    p.add_argument("--path-yaw", type=float, default=20.0, help="camera path yaw amplitude, degrees (default: 20)")
    p.add_argument("--path-pitch", type=float, default=8.0, help="orbit pitch amplitude, degrees (default: 8)")
    p.add_argument("--fps", type=float, default=25.0, help="frame rate of camera-path videos (default: 25)")
    p.add_argument(
        "--quality", default="full", choices=["preview", "full"],
        help="full: the model's resolution + super-resolution (default); preview: 64px raw render, upsampled",
    )  # fmt: skip
    p.add_argument(
        "--smoothing", default="causal", choices=["none", "causal", "zero-lag"],
        help="temporal smoothing of latents and OOD codes: causal (the official filter, default), zero-lag, none",
    )  # fmt: skip
    p.add_argument("--no-paste", action="store_true", help="videos: write the aligned 512 crops, not pasted back")
    p.add_argument("--no-audio", action="store_true", help="videos: leave the audio out")
    p.add_argument("--source", help="the original video, if it moved since the fit (default: the path in the scene)")
    p.add_argument("--depth", help="images: also write the depth map as a PNG (near = bright)")
    p.add_argument("--blend", help="images: also write the OOD blend map as a PNG (white = OOD)")
    p.set_defaults(func=_cmd_render)

    p = sub.add_parser("mesh", help="extract the geometry of a fitted frame (marching cubes) as .glb or .ply")
    _add_scene_arguments(p)
    p.add_argument("-o", "--output", required=True, help=".glb (parts as meshes 'face' and 'ood') or .ply")
    p.add_argument("--resolution", type=int, default=128, help="grid size per axis (default: 128)")
    p.add_argument("--level", type=float, default=10.0, help="density level of the surface (default: 10, EG3D's)")
    p.set_defaults(func=_cmd_mesh)

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
    q.add_argument("--samples", type=int, default=500, help="latents to sample and label (default: 500)")
    q.add_argument("--batch", type=int, default=8, help="renders per batch (default: 8)")
    q.add_argument("--fraction", type=float, default=0.25, help="top/bottom share used as classes (default: 0.25)")
    q.add_argument("--truncation", type=float, default=0.7, help="truncation psi of the samples (default: 0.7)")
    q.add_argument("--yaw-std", type=float, default=0.0, help="random camera yaw of the renders, radians (default: 0)")
    q.add_argument("--pitch-std", type=float, default=0.0, help="random camera pitch, radians (default: 0)")
    q.add_argument("--layers", help="ws the direction moves, e.g. 0-7 (default: all 14)")
    q.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    q.add_argument("-o", "--output", help="direction file (default: pretrained/directions/NAME.safetensors)")
    q.add_argument(
        "--checkpoint", help="generator .pkl or .safetensors (default: $INNOUT_EG3D_CHECKPOINT, pretrained/)"
    )
    q.add_argument(
        "--random-generator", choices=["tiny", "ffhq"], help="an untrained random generator (to try the flow)"
    )
    q.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    q.set_defaults(func=_cmd_directions_learn)
    q = dsub.add_parser("show", help="list direction files and what they were learned with")
    q.add_argument("paths", nargs="*", help="files or folders (default: pretrained/directions)")
    q.set_defaults(func=_cmd_directions_show)


def main(argv: list[str] | None = None) -> int:
    from .edit.directions import DirectionError
    from .eg3d.checkpoint import CheckpointError
    from .fit.config import SettingError
    from .fit.masks import MaskError
    from .fit.scene_file import SceneFormatError
    from .frames import FramesError
    from .metrics import IdentityModelError, LPIPSWeightsError
    from .preprocess.media import InputError
    from .runtime import keep_freed_memory
    from .scene import RenderError
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
        SceneFormatError,
        DirectionError,
        RenderError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
