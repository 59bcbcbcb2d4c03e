"""``render`` and ``mesh``: a fitted scene to images, videos and geometry."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..numbers import Range
from .common import FRAME_INDEX, UsageError, add_device_argument, finite_float, note, number, parse_angles, parse_edits

FPS = Range(0, 240, lo_open=True, unit="frames per second")
VIEWS = Range(1, 1000, integer=True)
PATH_YAW = Range(0, 180, unit="degrees")
PATH_PITCH = Range(0, 90, unit="degrees")
OUTSIDE_SCALE = Range(0, 4)  # the same bound as RenderRequest's
MESH_RESOLUTION = Range(8, 512, integer=True)  # innout.export.mesh's MIN/MAX_MESH_RESOLUTION


def load_scene(args: argparse.Namespace):
    """The scene file with the directions found (the faces demo's shipped ones, ``--directions`` and
    pretrained/directions) and mappers."""
    from ..edit.mapper import load_mapper
    from ..places import directions_dir
    from ..runtime import pick_device
    from ..scene import Scene
    from ..world.directions import ASSET_DIR as WORLD_DIRECTIONS

    scene = Scene.load(args.scene, pick_device(args.device))
    # the faces demo's shipped directions (assets/world_directions), where the app also looks: they load for a scene
    # fitted with the world's prior; any other scene skips them without a word (they were never its directions)
    scene.load_directions([WORLD_DIRECTIONS])
    for skipped in scene.load_directions([*(args.directions or []), directions_dir()]):
        note(skipped)
    for spec in args.mapper or []:
        path, _, name = spec.partition(":")
        scene.add_mapper(load_mapper(path, name or None))
    return scene


def render_request(args: argparse.Namespace):
    from ..scene import RenderRequest

    return RenderRequest(
        frame=args.frame,
        edits=parse_edits(args.edit),
        conditional=tuple(c for c in (args.conditional or "").split(",") if c),
        remove_ood=args.remove_ood,
        removal=args.removal,
        outside_scale=args.outside_scale,
        quality=args.quality,
        smoothing=None if args.smoothing == "none" else args.smoothing,
    )


def render(args: argparse.Namespace) -> int:
    import dataclasses

    import numpy as np

    from ..export import camera_path, export_camera_path, export_video
    from ..fit import read_mask
    from ..images import save_image
    from ..progress import tqdm_progress

    out = Path(args.output)
    suffix = out.suffix.lower()
    if suffix not in (".png", ".jpg", ".jpeg", ".mp4"):
        raise UsageError(f"output must end in .png, .jpg or .mp4, got {out.name}")
    camera = parse_angles(args.camera)
    path_kind = "orbit" if args.orbit else "yaw-sweep" if args.yaw_sweep else None
    if suffix == ".mp4" and not path_kind:
        if camera is not None:
            raise UsageError("a video of every frame from one fixed --camera is not supported; use --orbit")
        if args.removal_mask:
            raise UsageError("--removal-mask is for single frames; videos use each frame's own OOD opacity")
    if args.removal_mask and args.removal != "mask":
        raise UsageError("--removal-mask needs --removal mask (and --remove-ood)")
    request = render_request(args)
    scene = load_scene(args)
    scene.edits.check(request.edits)  # before any source video is read
    if suffix in (".png", ".jpg", ".jpeg"):
        mask = read_mask(args.removal_mask, scene.G.img_resolution) if args.removal_mask else None
        request = dataclasses.replace(
            request, camera=camera, removal_mask=mask, with_depth=bool(args.depth), with_blend=bool(args.blend)
        )
        result = scene.render(request)
        save_image(result.image, out)
        if args.depth:
            d = result.depth
            save_image(((d.max() - d) / max(float(np.ptp(d)), 1e-6) * 255).astype(np.uint8), args.depth)
        if args.blend:
            save_image((result.ood_opacity * 255).round().astype(np.uint8), args.blend)
    elif path_kind:
        yaw, pitch = math.radians(args.path_yaw), math.radians(args.path_pitch)
        views = camera_path(path_kind, args.views, yaw=yaw, pitch=pitch)
        export_camera_path(scene, out, args.frame, views, request, fps=args.fps, progress=tqdm_progress())
    else:
        export_video(
            scene, out, request, paste=not args.no_paste, audio=not args.no_audio, source=args.source,
            progress=tqdm_progress(),
        )  # fmt: skip
    print(f"wrote {out}")
    return 0


def mesh(args: argparse.Namespace) -> int:
    from ..export.mesh import extract_mesh, write_mesh

    scene = load_scene(args)
    result = extract_mesh(
        scene, args.frame, parse_edits(args.edit), resolution=args.resolution, level=args.level,
        remove_ood=args.remove_ood,
    )  # fmt: skip
    write_mesh(result, args.output)
    n_ood = int(result.part.sum())
    print(
        f"wrote {args.output}: {len(result.vertices)} vertices ({n_ood} OOD), {len(result.faces)} triangles, "
        f"density level {result.level:.3g}"
    )
    return 0


def add_scene_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scene", help="a scene file written by `fit` (.safetensors)")
    p.add_argument(
        "--frame", type=number(FRAME_INDEX), default=0,
        help="fitted frame for images, meshes and camera paths, 0 to the scene's last (default: 0)",
    )  # fmt: skip
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
    add_device_argument(p)


def register(sub) -> None:
    p = sub.add_parser("render", help="render a fitted scene: a frame (.png), the edited video or a camera path (.mp4)")
    add_scene_arguments(p)
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
        "--outside-scale", type=number(OUTSIDE_SCALE), default=1.0,
        help="with --removal mask: multiply b outside the mask by this, 0-4 (official code: 1.2; default: 1)",
    )  # fmt: skip
    p.add_argument(
        "--camera", metavar="YAW,PITCH",
        help="render from this camera, degrees from frontal: yaw -180..180, pitch -90..90 (images only)",
    )  # fmt: skip
    group = p.add_mutually_exclusive_group()
    group.add_argument("--orbit", action="store_true", help="with .mp4: orbit the camera around --frame")
    group.add_argument("--yaw-sweep", action="store_true", help="with .mp4: sweep the camera left-right around --frame")
    p.add_argument("--views", type=number(VIEWS), default=60, help="views in a camera path, 1-1000 (default: 60)")
    p.add_argument(
        "--path-yaw", type=number(PATH_YAW), default=20.0, help="camera path yaw amplitude, 0-180 degrees (default: 20)"
    )
    p.add_argument(
        "--path-pitch", type=number(PATH_PITCH), default=8.0, help="orbit pitch amplitude, 0-90 degrees (default: 8)"
    )
    p.add_argument(
        "--fps", type=number(FPS), default=25.0, help="frame rate of camera-path videos, 0 < fps <= 240 (default: 25)"
    )
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
    p.set_defaults(func=render)

    p = sub.add_parser("mesh", help="extract the geometry of a fitted frame (marching cubes) as .glb or .ply")
    add_scene_arguments(p)
    p.add_argument("-o", "--output", required=True, help=".glb (parts as meshes 'face' and 'ood') or .ply")
    p.add_argument(
        "--resolution", type=number(MESH_RESOLUTION), default=128,
        help="grid points per axis, 8-512 (512 needs about 1.5 GB of memory; default: 128)",
    )  # fmt: skip
    p.add_argument(
        "--level", type=finite_float, default=None,
        help="density level of the surface, finite (default: read off the density, where a frontal ray becomes "
        "half opaque; EG3D's own export uses 10)",
    )  # fmt: skip
    p.set_defaults(func=mesh)
