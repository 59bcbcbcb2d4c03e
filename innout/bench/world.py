"""The world benchmark: the method against the baselines on clips whose ground truth comes from the world.

    python -m innout.bench world [--scale test|script|preset] [--objects sunglasses,...] [--object-spec FILE]
        [--methods innout,innout-mask,w+,pti] [--preset preview|fast|paper] [--set KEY=VALUE ...] [--prior FILE]
        [--json FILE] [--images DIR] [--mask-propagation both|flow|geometry] [--curve N,N,...]

Per object type, a clip of one head turning and smiling, with the object (``innout.world``), rendered by the
world's own renderer; the prior is the trained world generator (``assets/world_prior.safetensors``), which
has never seen an object. Every method runs through the same cached pipeline; its scene is then scored
against the world: PSNR and LPIPS of the whole frame and inside the true object mask; IoU of the fitted OOD
opacity (> 0.5) with that mask; the OOD-removed render against the clean clip; PSNR at held-out camera
poses; edit fidelity (smile +1 with the shipped direction against the world with the smile raised by the
direction's measured amount, outside the object) and edit leakage (the change inside the object); seconds
per iteration of the method's main stage. With ``--curve``, the In-N-Out methods are scored again at those joint
iterations of the same fit (snapshots kept by the joint stage): how early the split forms and whether it lasts.
Each In-N-Out row also holds ``decisions``: what the joint stage decided from its first guess (whether the object
moves against the head, and its motion ratio; the head start's depth offset and how much better its views agree).

The prior's super-resolution is a bilinear upsampling, so the scores, the initialisation and the inversion are at
its neural resolution (``compare=raw``). The joint stage keeps the paper's L2 of the SR image all the same: it
repeats the raw L2, but dropping it halves the reconstruction's weight against the blend area term, and with it
the OOD field's reason to exist (measured on the sunglasses clip at the test scale: mask IoU 0.04 without it,
0.23 with it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ..fit.config import FitConfig
from ..fit.data import FitData
from ..fit.mask_warp import PROPAGATIONS, mask_propagator
from ..fit.pipeline import FitPipeline
from ..fit.presets import get_preset
from ..scene import RenderRequest, Scene, load_scene
from ..settings import apply_overrides
from ..world.clips import ClipPlan, WorldClip, render_clip
from ..world.figures import to_uint8
from ..world.heads import HeadAttributes
from ..world.objects import builtin_objects, load_object

METHODS = ("innout", "innout-mask", "w+", "pti")
MAIN_STAGE = {"innout": "joint", "innout-mask": "joint", "w+": "invert", "pti": "pti"}
BASE_HEAD = HeadAttributes(smile=0.0, mouth_open=0.0, age=0.35, skin_tone=0.35, hair_colour=0.3, head_shape=0.5,
                           eye_size=0.5)  # fmt: skip
HELDOUT_YAW_DEG = 15.0  # the novel views: each frame's camera turned this much further

SCALES = {
    "test": {"frames": 3, "overrides": (
        "init.samples=4", "inversion.subset_frames=2", "inversion.subset_epochs=20", "inversion.all_epochs=4",
        "joint.iterations=60", "joint.checkpoint_every=60", "pti.steps=30", "superres.epochs=0",
    )},
    # 50 minutes for every object and method on a 2-core CPU (2026-11-30): LPIPS-Alex and short stages (the joint
    # stage is 1.1 s an iteration here, so the paper's 10,000 iterations would take three hours per fit)
    "script": {"frames": 4, "overrides": (
        "init.samples=32", "inversion.subset_frames=4", "inversion.subset_epochs=30", "inversion.all_epochs=5",
        "inversion.lpips_net=alex", "joint.iterations=150", "joint.checkpoint_every=50", "joint.lpips_net=alex",
        "pti.steps=60", "pti.lpips_net=alex", "superres.epochs=0",
    )},
    # the script scale's clip with the preset's own stage lengths and LPIPS nets: what compares the presets (the
    # prior has no super-resolution weights, so that stage is skipped whatever the preset says)
    "preset": {"frames": 4, "overrides": ()},
}  # fmt: skip


def world_config(preset: str, scale: str, overrides: list[str] | None = None) -> FitConfig:
    """The preset cut to the scale, then ``overrides`` (``section.field=value``, e.g. ablations), for the prior."""
    settings = [*SCALES[scale]["overrides"], *(overrides or [])]
    return for_world_prior(apply_overrides(get_preset(preset), settings))


def for_world_prior(cfg: FitConfig) -> FitConfig:
    """``cfg`` adapted to the world prior: every frame, its own rendering resolution and samples, comparisons at that
    resolution (its SR is bilinear) and an OOD tri-plane of at most 128^2 (the prior's planes are 64^2)."""
    cfg.max_frames = None
    cfg.init.compare = cfg.inversion.compare = "raw"  # the prior's SR is bilinear: nothing to compare at 512
    cfg.init.resolution = cfg.inversion.resolution = cfg.joint.resolution = None  # the prior's own resolution
    cfg.init.samples_per_ray = cfg.inversion.samples_per_ray = cfg.joint.samples_per_ray = None
    cfg.joint.ood_resolution = min(cfg.joint.ood_resolution, 128)
    return cfg


def curve_overrides(curve: tuple[int, ...]) -> list[str]:
    """The fit a curve needs: a joint stage as long as its largest point."""
    if not curve:
        return []
    if min(curve) < 1:
        raise ValueError(f"curve points are joint iterations >= 1, got {list(curve)}")
    return [f"joint.iterations={max(curve)}"]


def heldout_cameras(clip: WorldClip) -> torch.Tensor:
    return clip.plan.cameras(yaw_offset_deg=HELDOUT_YAW_DEG)


def _psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> float | None:
    err = ((a.clamp(-1, 1) - b.clamp(-1, 1)) / 2).square().mean(1, keepdim=True)
    if mask is not None:
        if not mask.any():
            return None
        err = err[mask]
    return float(10 * torch.log10(1 / err.mean().clamp_min(1e-10)))


def _raw(scene: Scene, request: RenderRequest) -> torch.Tensor:
    return scene.render(request).raw[None].cpu()


def score(scene: Scene, clip: WorldClip, heldout: WorldClip | None, smile=None) -> dict:
    """Every figure of a fitted scene against its clip (see the module docstring)."""
    from ..metrics.perceptual import get_lpips

    frames = range(len(clip))
    quality = {"quality": "full"}
    renders = [scene.render(RenderRequest(t, **quality, with_blend=True)) for t in frames]
    image = torch.cat([r.raw[None].cpu() for r in renders])
    mask = clip.object_mask
    row: dict = {
        "psnr": _psnr(image, clip.composite),
        "lpips": float(get_lpips("alex")(image.clamp(-1, 1), clip.composite).mean()),
        "psnr_ood": _psnr(image, clip.composite, mask),
        "psnr_outside": _psnr(image, clip.composite, ~mask),
        "composite_vs_clean_psnr": _psnr(clip.composite, clip.clean),
    }
    if scene.has_ood:
        opacity = torch.stack([torch.from_numpy(r.ood_opacity) for r in renders])[:, None]
        predicted = opacity > 0.5
        row["iou"] = float((predicted & mask).sum() / (predicted | mask).sum().clamp_min(1))
        removed = torch.cat([_raw(scene, RenderRequest(t, **quality, remove_ood=True)) for t in frames])
    else:
        row["iou"], removed = None, image
    row["removal_psnr"] = _psnr(removed, clip.clean)
    # inside the object too: a small object's removal is lost in the whole frame's reconstruction error
    row["removal_psnr_ood"] = _psnr(removed, clip.clean, mask)
    row["input_vs_clean_psnr_ood"] = _psnr(clip.composite, clip.clean, mask)
    if heldout is not None:
        novel = torch.cat([_raw(scene, RenderRequest(t, heldout.cameras[t], **quality)) for t in frames])
        row["novel_view_psnr"] = _psnr(novel, heldout.composite)
    if smile is not None:
        direction, world_edit = smile
        scene.add_direction(direction)
        edited = torch.cat([_raw(scene, RenderRequest(t, edits={"smile": 1.0}, **quality)) for t in frames])
        row["edit_psnr"] = _psnr(edited, world_edit.composite, ~mask)
        change = (edited - image).abs().mean(1, keepdim=True)
        row["edit_leak"] = float(change[mask].mean()) if mask.any() else None
        row["edit_change_outside"] = float(change[~mask].mean())
    return row


def _smile_edit(clip: WorldClip, obj, direction, resolution: int) -> WorldClip:
    """The world's render of the clip with every frame's smile raised by the direction's measured amount."""
    amount = float(direction.info.get("attribute_per_strength", 0.0))
    plan = dataclasses.replace(clip.plan, smile=tuple(min(1.0, s + amount) for s in clip.plan.smile))
    return render_clip(plan, obj, resolution)


def run_world_benchmark(
    scale: str = "test", objects: list[str] | None = None, methods: tuple[str, ...] = METHODS,
    preset: str = "paper", prior: str | None = None, workdir: str | None = None, log=print,
    images: str | None = None, overrides: list[str] | None = None, mask_propagation: str = PROPAGATIONS[0],
    curve: tuple[int, ...] = (),
) -> dict:  # fmt: skip
    """The report (module docstring); with ``images``, a PNG per object there (``write_strips``). ``curve``: joint
    iterations at which the In-N-Out methods' scenes are also scored, within one fit of the largest of them
    (``objects[name][method]["curve"]``)."""
    from ..eg3d.checkpoint import load_generator
    from ..world.directions import ASSET_DIR
    from ..world.prior import ASSET, prior_config

    G = load_generator(prior or ASSET)
    res = prior_config().neural_rendering_resolution
    curve = tuple(sorted(set(curve)))
    cfg = world_config(preset, scale, [*(overrides or []), *curve_overrides(curve)])
    smile_file = ASSET_DIR / "smile.safetensors"
    direction = None
    if smile_file.is_file():
        from ..edit.directions import load_direction

        direction = load_direction(smile_file)
    report: dict = {"scale": scale, "preset": preset, "overrides": list(overrides or []), "resolution": res,
                    "mask_propagation": mask_propagation, "curve": list(curve), "objects": {}}  # fmt: skip
    plan = ClipPlan(BASE_HEAD, frames=SCALES[scale]["frames"])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(workdir or tmp)
        report["prior"] = prior_checks(G, Path(prior or ASSET), plan, cfg, root / "clean", res)
        log("world/prior: " + " ".join(_fmt(k, v) for k, v in report["prior"].items()))
        for name in objects or builtin_objects():
            obj = load_object(name)
            if obj.name in report["objects"]:
                raise ValueError(f"two objects are named {obj.name!r}: the report keys objects by their spec's name")
            clip = render_clip(plan, obj, res)
            heldout = render_clip(plan, obj, res, cameras=heldout_cameras(clip))
            smile = None if direction is None else (direction, _smile_edit(clip, obj, direction, res))
            results, timings, strips = {}, {}, ({} if images else None)
            for method in methods:
                results[method] = _run_method(G, clip, cfg, method, root / obj.name, heldout, smile, timings,
                                              strips, mask_propagation, curve)  # fmt: skip
                shown = {k: v for k, v in results[method].items() if k not in ("curve", "decisions")}
                log(f"world/{obj.name}/{method}: " + " ".join(_fmt(k, v) for k, v in shown.items()))
                if results[method].get("decisions"):
                    decided = results[method]["decisions"].items()
                    log(f"world/{obj.name}/{method}/decisions: " + " ".join(_fmt(k, v) for k, v in decided))
                for point in results[method].get("curve", []):
                    log(f"world/{obj.name}/{method}/curve: " + " ".join(_fmt(k, v) for k, v in point.items()))
            if images:
                write_strips(Path(images) / f"world_{obj.name}.png", clip, strips)
            report["objects"][obj.name] = results
    return report


def prior_checks(G, prior: Path, plan: ClipPlan, cfg: FitConfig, workdir: Path, res: int) -> dict:
    """Can the prior draw the world? Its training metadata (held-out PSNR of random heads and views), and a
    W+ inversion of the clip without any object, scored against it."""
    import contextlib

    from ..eg3d.weights_file import read_safetensors_metadata

    meta = {}
    with contextlib.suppress(OSError, ValueError):
        meta = json.loads(read_safetensors_metadata(prior).get("innout_world_prior", "{}"))
    clean = render_clip(plan, None, res)
    row = _run_method(G, clean, cfg, "w+", workdir, None, None, {})
    return {"heldout_psnr": meta.get("heldout_psnr"), "clean_inversion_psnr": row["psnr"],
            "clean_inversion_lpips": row["lpips"]}  # fmt: skip


def _run_method(
    G, clip: WorldClip, cfg: FitConfig, method: str, workdir: Path, heldout, smile, timings: dict,
    strips: dict | None = None, mask_propagation: str = PROPAGATIONS[0], curve: tuple[int, ...] = (),
) -> dict:  # fmt: skip
    """Fit ``clip`` with ``method`` and score it. ``timings``: seconds per step of every stage computed so far
    for this clip (shared by its methods, whose common stages are computed once and then read from the cache).
    ``curve``: joint iterations at which an In-N-Out fit is scored too (``row["curve"]``)."""
    masks = None
    if method == "innout-mask":
        crops = to_uint8(clip.composite)
        propagate = mask_propagator(mask_propagation, G, clip.cameras)
        masks = torch.from_numpy(propagate(crops, clip.object_mask[0, 0].numpy())).float()[:, None]
    data = FitData(clip.composite, clip.cameras, key=f"world-{clip.object_name}-{len(clip)}", ood_masks=masks)
    stage_times: dict[str, list[float]] = {}
    last = [time.perf_counter()]

    def progress(stage, done, total, losses):
        now = time.perf_counter()
        if total > 1:  # a stage read from the cache reports (1, 1) once
            stage_times.setdefault(stage, []).append(now - last[0])
        last[0] = now

    pipeline_method = "innout" if method.startswith("innout") else method
    start = time.perf_counter()
    # one cache folder per clip: the stages are keyed by content, so the methods share their common stages
    keep = curve if pipeline_method == "innout" else ()
    pipeline = FitPipeline(G, data, cfg, workdir, progress=progress, joint_snapshots=keep)
    path = pipeline.run(pipeline_method)
    seconds = time.perf_counter() - start
    scene = Scene(load_scene(path))
    row = score(scene, clip, heldout, smile)
    if pipeline_method == "innout":  # what the joint stage decided from its first guess (motion, head-start depth)
        row["decisions"] = dict(pipeline.decisions.get("joint", {}))
    if keep:
        row["curve"] = [
            {"iterations": n, **score(Scene(load_scene(pipeline.snapshot_scene(n, workdir / f"curve-{n}.safetensors"))),
                                      clip, heldout, smile)}
            for n in keep
        ]  # fmt: skip
    if strips is not None:
        strips[method] = method_strip(scene, clip)
    for stage, times in stage_times.items():
        timings.setdefault(stage, times)
    steps = stage_times.get(MAIN_STAGE[method]) or timings.get(MAIN_STAGE[method], [])
    row["s_per_iteration"] = float(np.median(steps[1:] or steps)) if steps else None
    row["seconds"] = seconds  # the stages this method computed (common stages computed once, by the first)
    return row


def method_strip(scene: Scene, clip: WorldClip) -> torch.Tensor:
    """For the middle frame: the fitted render, its OOD opacity (white = OOD) and the OOD-removed render."""
    t = len(clip) // 2
    out = scene.render(RenderRequest(t, quality="full", with_blend=True))
    fitted = out.raw[None].cpu()
    opacity = torch.zeros_like(fitted) - 1
    if out.ood_opacity is not None:
        opacity = torch.from_numpy(out.ood_opacity).float().reshape(1, 1, *fitted.shape[-2:]).expand_as(fitted) * 2 - 1
    removed = _raw(scene, RenderRequest(t, quality="full", remove_ood=True)) if scene.has_ood else fitted
    return torch.cat([fitted, opacity, removed])


def write_strips(path: Path, clip: WorldClip, strips: dict) -> None:
    """One PNG per object: the input, the clean frame and the true mask, then a row per method."""
    from PIL import Image

    from ..world.figures import grid

    t = len(clip) // 2
    truth = torch.cat([clip.composite[t : t + 1], clip.clean[t : t + 1],
                       clip.object_mask[t : t + 1].float().expand(1, 3, -1, -1) * 2 - 1])  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid([truth, *strips.values()])).save(path)


def _parse_curve(parser: argparse.ArgumentParser, text: str | None, settings: list[str]) -> tuple[int, ...]:
    if not text:
        return ()
    try:
        curve = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        parser.error(f"--curve takes joint iterations separated by commas (e.g. 50,150,400), got {text!r}")
    if not curve or curve[0] < 1:
        parser.error(f"--curve takes joint iterations >= 1, got {text!r}")
    if any(item.split("=", 1)[0].strip() == "joint.iterations" for item in settings):
        parser.error("--curve sets joint.iterations (its largest point): leave out --set joint.iterations")
    return curve


def _fmt(key: str, value) -> str:
    return f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m innout.bench world", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=tuple(SCALES), default="script")
    parser.add_argument("--objects", help=f"comma-separated built-in objects (default: all: {builtin_objects()})")
    parser.add_argument("--object-spec", action="append", default=[], help="an object spec JSON file; repeatable")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, from {METHODS}")
    parser.add_argument("--preset", default="paper", choices=("paper", "fast", "preview"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting after the scale's, e.g. joint.blend_warmup=0.5 (repeatable)")
    parser.add_argument("--prior", help="the prior generator (default: assets/world_prior.safetensors)")
    parser.add_argument("--workdir", help="keep the stage caches here (default: a temporary folder)")
    parser.add_argument("--json", help="write the report as JSON")
    parser.add_argument("--images", help="write a PNG per object here: truth, then fit / OOD opacity / removal")
    parser.add_argument("--curve", metavar="N,N,...",
                        help="score the In-N-Out methods also at these joint iterations, within one fit of the "
                             "largest (which sets joint.iterations), e.g. 50,150,400")
    parser.add_argument("--mask-propagation", choices=PROPAGATIONS, default=PROPAGATIONS[0],
                        help="innout-mask: how the first frame's true mask reaches the others (default: %(default)s)")
    args = parser.parse_args(argv)
    objects = [o for o in (args.objects or "").split(",") if o] or (None if not args.object_spec else [])
    objects = (objects or ([] if args.object_spec else builtin_objects())) + args.object_spec
    methods = tuple(m for m in args.methods.split(",") if m)
    unknown = set(methods) - set(METHODS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; choose from {METHODS}")
    curve = _parse_curve(parser, args.curve, args.set)
    report = run_world_benchmark(args.scale, objects, methods, args.preset, args.prior, args.workdir,
                                 images=args.images, overrides=args.set,
                                 mask_propagation=args.mask_propagation, curve=curve)  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0
