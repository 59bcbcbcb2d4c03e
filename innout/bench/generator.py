"""Generator speed on the full-size FFHQ 512-128 architecture (random weights: timing only).

Each case runs in its own process so its peak memory is its own: resident set size on CPU (VmHWM),
``torch.cuda.max_memory_allocated`` on CUDA. Times are the median of ``--repeats`` warm runs.

``--official PATH`` times the official EG3D code side by side with ours, in the same run. PATH is the user's own
clone of github.com/NVlabs/eg3d (the clone, or its ``eg3d/`` folder, the one holding ``training/triplane.py``,
``torch_utils/`` and ``dnnlib/``). Nothing of it is copied into this repository: it is imported from PATH, put
first on ``sys.path`` in its timing process only. For each case the official generator (random weights, built
with the FFHQ 512-128 init kwargs of ``official_init_kwargs``) runs in its own spawned process right after ours,
with the same allocator setting (``innout.runtime.keep_freed_memory``), threads, batch, inputs and repeats. A
freshly built official generator renders at 64x64; its ``neural_rendering_resolution`` is set to 128, as in the
*-128 checkpoints. Each case prints our line, the official line (``generator/official/<case>: ...``) and
``generator/<case>: ours/official=R.RRx`` (the ratio of the two medians of this run; below 1: ours is faster).
The pieces are timed through the official modules the way its ``synthesis`` calls them (``G.mapping``,
``G.backbone.synthesis``, ``G.ray_sampler`` + ``G.renderer``, ``G.superresolution``; the whole frame is
``G.synthesis(G.mapping(z, c), c)``). The official renderer always samples the tri-planes with ``grid_sample``:
``render128_grid_sample`` is the same-sampler comparison. The official super-resolution runs in fp16 on CUDA only
with ``--fp16`` (as ours; fp16 is the official code's own default on GPUs), never on a CPU. On CUDA the official
code builds its custom ops (torch_utils/ops) with ninja on first use: the warm-up call absorbs that.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from queue import Empty

import torch

from ..errors import UserError
from ..runtime import pick_device

CASES = {
    "mapping": "z -> ws",
    "backbone": "ws -> tri-planes 3x32x256x256",
    "render128": "volume render 128x128, 48+48 samples (tri-planes cached)",
    "render128_grid_sample": "the same with the official grid_sample tri-plane sampler",
    "superres": "super-resolution 128 -> 512",
    "frame": "whole 512 frame: mapping + backbone + render + SR",
    "preview": "preview: 64x64, 24+24 samples, no SR (tri-planes cached)",
    "orbit_frame": "512 frame from cached tri-planes (render + SR), as when orbiting",
}

TARGETS_CPU = {"render128": 1.0, "frame": 4.5, "preview": 0.25}

ARCHS = {"ffhq512": "ffhq512-128", "tiny": "tiny"}  # --arch -> the arch= label of the output lines

OFFICIAL_HINTS = {
    "requests": "pip install requests (dnnlib imports it)",
    "distutils": "pip install setuptools (Python 3.12 removed distutils; dnnlib imports it)",
    "ninja": "pip install ninja (the official code builds its CUDA ops with it)",
}


class OfficialCodeError(UserError):
    """``--official PATH`` is not a usable clone of the official EG3D code, or that code failed."""


def _config(arch: str):
    from innout.eg3d import GeneratorConfig

    return GeneratorConfig.tiny() if arch == "tiny" else GeneratorConfig.ffhq512()


def official_init_kwargs(config) -> dict:
    """The official ``TriPlaneGenerator``'s init kwargs for one of our ``GeneratorConfig``s (for
    ``GeneratorConfig.ffhq512()``: those of EG3D's FFHQ 512-128 models; the training-only regulariser
    settings are the FFHQ defaults, unused at inference)."""
    training_only = {"gpc_reg_prob": 0.5, "density_reg": 0.25, "density_reg_p_dist": 0.004, "reg_type": "l1"}
    rendering = {**config.official_rendering_kwargs(), **training_only}
    return {
        "z_dim": config.z_dim,
        "c_dim": config.c_dim,
        "w_dim": config.w_dim,
        "img_resolution": config.img_resolution,
        "img_channels": config.img_channels,
        "mapping_kwargs": {"num_layers": config.mapping_layers},
        "channel_base": config.channel_base,
        "channel_max": config.channel_max,
        "fused_modconv_default": "inference_only",
        "num_fp16_res": config.num_fp16_res,
        "conv_clamp": config.conv_clamp,
        "sr_num_fp16_res": config.sr_num_fp16_res,
        "sr_kwargs": {
            "channel_base": config.channel_base,
            "channel_max": config.channel_max,
            "fused_modconv_default": "inference_only",
        },
        "rendering_kwargs": rendering,
    }


def _inputs(z_dim: int, device: str, batch: int):
    """The same latent and cameras for both generators: z, the conditioning camera, the rendering camera."""
    from innout.eg3d import frontal_label, orbit_label

    z = torch.randn(batch, z_dim, generator=torch.Generator().manual_seed(0)).to(device)
    c_cond = frontal_label().to(device).repeat(batch, 1)
    c = orbit_label(2.0, 1.4).to(device).repeat(batch, 1)
    return z, c_cond, c


def _setup(case: str, device: str, fp16: bool, batch: int, arch: str = "ffhq512") -> Callable[[], object]:
    from innout.eg3d import TriPlaneGenerator

    torch.manual_seed(0)
    G = TriPlaneGenerator(_config(arch)).to(device).eval().requires_grad_(False)
    z, c_cond, c = _inputs(G.z_dim, device, batch)
    ws = G.mapping(z, c_cond)
    planes = G.synthesize_planes(ws)
    render = G.render_planes(planes, c)
    sr_fp16 = fp16 if device == "cuda" else False

    if case == "mapping":
        return lambda: G.mapping(z, c_cond)
    if case == "backbone":
        return lambda: G.synthesize_planes(ws)
    if case == "render128":
        return lambda: G.render_planes(planes, c)
    if case == "render128_grid_sample":
        return lambda: G.render_planes(planes, c, sampler="grid_sample")
    if case == "superres":
        return lambda: G.super_resolve(render, ws, fp16=sr_fp16)
    if case == "frame":
        return lambda: G.synthesis(G.mapping(z, c_cond), c, sr_fp16=sr_fp16)
    if case == "preview":
        return lambda: G.render_planes(planes, c, resolution=64, depth_resolution=24, depth_resolution_importance=24)
    if case == "orbit_frame":
        return lambda: G.super_resolve(G.render_planes(planes, c), ws, fp16=sr_fp16)
    raise ValueError(f"unknown case {case!r}")


def _official_setup(
    case: str, root: str, device: str, fp16: bool, batch: int, arch: str = "ffhq512"
) -> Callable[[], object]:
    """The same case on the official generator, imported from the user's clone at ``root``."""
    config = _config(arch)  # ours first: nothing of the clone may shadow what innout imports
    sys.path.insert(0, root)
    from training.triplane import TriPlaneGenerator as OfficialGenerator

    torch.manual_seed(0)
    G = OfficialGenerator(**official_init_kwargs(config)).to(device).eval().requires_grad_(False)
    G.neural_rendering_resolution = config.neural_rendering_resolution  # 64 in a freshly built one
    z, c_cond, c = _inputs(G.z_dim, device, batch)
    force_fp32 = not (fp16 and device == "cuda")  # fp16 SR as ours: only with --fp16, only on CUDA
    sr_noise_mode = G.rendering_kwargs["superresolution_noise_mode"]
    channels = config.triplane_channels
    cam2world, intrinsics = c[:, :16].reshape(-1, 4, 4), c[:, 16:25].reshape(-1, 3, 3)

    def synthesize_planes(ws):
        planes = G.backbone.synthesis(ws, update_emas=False, noise_mode="const", force_fp32=force_fp32)
        return planes.view(len(planes), 3, channels, planes.shape[-2], planes.shape[-1])

    def render_planes(planes, resolution=config.neural_rendering_resolution, **options):
        origins, directions = G.ray_sampler(cam2world, intrinsics, resolution)
        features, _depth, _weights = G.renderer(
            planes, G.decoder, origins, directions, {**G.rendering_kwargs, **options}
        )
        return features.permute(0, 2, 1).reshape(len(planes), -1, resolution, resolution).contiguous()

    def super_resolve(feature_image, ws):
        rgb = feature_image[:, :3]
        return G.superresolution(rgb, feature_image, ws, noise_mode=sr_noise_mode, force_fp32=force_fp32)

    ws = G.mapping(z, c_cond, truncation_psi=1)
    planes = synthesize_planes(ws)
    feature_image = render_planes(planes)

    if case == "mapping":
        return lambda: G.mapping(z, c_cond, truncation_psi=1)
    if case == "backbone":
        return lambda: synthesize_planes(ws)
    if case in ("render128", "render128_grid_sample"):  # the official renderer always uses grid_sample
        return lambda: render_planes(planes)
    if case == "superres":
        return lambda: super_resolve(feature_image, ws)
    if case == "frame":
        return lambda: G.synthesis(G.mapping(z, c_cond, truncation_psi=1), c, noise_mode="const", force_fp32=force_fp32)
    if case == "preview":
        return lambda: render_planes(planes, 64, depth_resolution=24, depth_resolution_importance=24)
    if case == "orbit_frame":
        return lambda: super_resolve(render_planes(planes), ws)
    raise ValueError(f"unknown case {case!r}")


def _time(fn: Callable[[], object], device: str, repeats: int) -> tuple[float, float, str]:
    """Median and best of ``repeats`` warm calls, and the process's peak memory."""
    from innout.runtime import peak_memory_mb

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    fn()  # warm-up (the first call allocates and picks kernels)
    sync()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    if device == "cuda":
        mem = f"peak_gpu_mem={torch.cuda.max_memory_allocated() / 2**30:.2f}GiB"
    else:
        mem = f"peak_rss={peak_memory_mb() / 1024:.2f}GiB"
    return statistics.median(times), min(times), mem


def _process_settings(threads: int | None) -> None:
    """The same for ours and the official code: glibc keeps freed memory, and the torch CPU threads."""
    from innout.runtime import keep_freed_memory

    keep_freed_memory()
    if threads:
        torch.set_num_threads(threads)


def _run_case(
    case: str, device: str, fp16: bool, batch: int, repeats: int, threads: int | None, arch: str, queue
) -> None:
    _process_settings(threads)
    with torch.no_grad():
        queue.put(("ok", *_time(_setup(case, device, fp16, batch, arch), device, repeats)))


def _describe_failure(exc: BaseException, root: str) -> str:
    """One line: what failed, and where in the official code (no traceback)."""
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        top = exc.name.split(".")[0]
        hint = OFFICIAL_HINTS.get(top)
        return f"module {exc.name!r} is missing" + (f": {hint}" if hint else "")
    where = ""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(root)]
    if frames:
        where = f" (at {frames[-1].filename}:{frames[-1].lineno})"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}{where}"


def _check_official(root: str, device: str, queue) -> None:
    """In a spawned process: does the official generator import from ``root`` (and, on CUDA, is ninja there)?"""
    try:
        sys.path.insert(0, root)
        from training.triplane import TriPlaneGenerator  # noqa: F401 - the import is the check
    except Exception as exc:
        queue.put(("error", f"cannot import training.triplane from {root}: {_describe_failure(exc, root)}"))
        return
    if device == "cuda":
        from torch.utils.cpp_extension import is_ninja_available

        if not is_ninja_available():
            queue.put(("error", f"the build tool 'ninja' is missing: {OFFICIAL_HINTS['ninja']}"))
            return
    queue.put(("ok",))


def _run_official_case(
    case: str, root: str, device: str, fp16: bool, batch: int, repeats: int, threads: int | None, arch: str, queue
) -> None:
    _process_settings(threads)
    try:
        with torch.no_grad():
            queue.put(("ok", *_time(_official_setup(case, root, device, fp16, batch, arch), device, repeats)))
    except Exception as exc:
        queue.put(("error", _describe_failure(exc, root)))


def _spawn(ctx, target, args: tuple) -> tuple:
    """Run ``target(*args, queue)`` in a spawned process and return what it put on the queue, or
    ('died', exit code) when it ended without a word (killed, out of memory, a crash)."""
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    try:
        while True:
            try:
                return queue.get(timeout=1.0)
            except Empty:
                if not proc.is_alive():
                    try:
                        return queue.get(timeout=1.0)
                    except Empty:
                        return ("died", proc.exitcode)
    finally:
        proc.join()


def official_root(path: str) -> Path:
    """The official code's package root in a user's clone (PATH, or PATH/eg3d), or a clear error."""
    p = Path(path).expanduser()
    if not p.exists():
        raise OfficialCodeError(f"--official {path}: no such folder (give your clone of github.com/NVlabs/eg3d)")
    if not p.is_dir():
        raise OfficialCodeError(f"--official {path}: not a folder (give your clone of github.com/NVlabs/eg3d)")
    for root in (p, p / "eg3d"):
        if (root / "training" / "triplane.py").is_file():
            return root.resolve()
    raise OfficialCodeError(
        f"--official {path}: neither {p / 'training' / 'triplane.py'} nor {p / 'eg3d' / 'training' / 'triplane.py'} "
        "exists; give your clone of github.com/NVlabs/eg3d (or its eg3d/ folder)"
    )


def _line(name: str, median: float, best: float, mem: str, case: str, args, extra: str = "") -> str:
    gpu = torch.cuda.get_device_name() if args.device == "cuda" else "-"
    threads = args.threads or torch.get_num_threads()
    fps = f" fps={args.batch / median:.1f}" if case in ("frame", "orbit_frame") else ""
    return (
        f"{name}: median={median:.3f}s min={best:.3f}s{fps} {mem}{extra} | "
        f"device={args.device} gpu={gpu} threads={threads} batch={args.batch} fp16_sr={args.fp16} "
        f"arch={ARCHS[args.arch]} ({CASES[case]})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m innout.bench generator",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("cases", nargs="*", default=list(CASES), help=f"cases to run (default: all): {list(CASES)}")
    parser.add_argument("--device", default=pick_device(), help="torch device (default: cuda if available)")
    parser.add_argument("--fp16", action="store_true", help="run the super-resolution in fp16 (CUDA only)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--official",
        metavar="PATH",
        default=None,
        help="also time the official EG3D code of your own clone of github.com/NVlabs/eg3d at PATH (the clone or "
        "its eg3d/ folder; imported from there, never copied), each case right after ours, and print "
        "ours/official; its neural rendering resolution is set to 128",
    )
    parser.add_argument(
        "--arch",
        choices=list(ARCHS),
        default="ffhq512",
        help="architecture of both generators (default: ffhq512, EG3D FFHQ 512-128); 'tiny' (a few channels, "
        "32x32 rendering) only checks this command quickly, its times mean nothing",
    )
    args = parser.parse_args(argv)
    for case in args.cases:
        if case not in CASES:
            parser.error(f"unknown case {case!r}")
    try:
        return _run(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args) -> int:
    ctx = mp.get_context("spawn")
    root = None
    if args.official:
        root = str(official_root(args.official))
        status = _spawn(ctx, _check_official, (root, args.device))
        if status[0] != "ok":
            raise OfficialCodeError(f"--official {args.official}: {_status_text(status)}")
    settings = (args.device, args.fp16, args.batch, args.repeats, args.threads, args.arch)
    for case in args.cases:
        status = _spawn(ctx, _run_case, (case, *settings))
        if status[0] != "ok":
            raise RuntimeError(f"generator/{case}: the timing process failed: {_status_text(status)}")
        _, median, best, mem = status
        target = TARGETS_CPU.get(case) if args.device == "cpu" and args.arch == "ffhq512" else None
        note = f" target<={target}s {'OK' if median <= target else 'MISSED'}" if target else ""
        print(_line(f"generator/{case}", median, best, mem, case, args, note), flush=True)
        if root is None:
            continue
        status = _spawn(ctx, _run_official_case, (case, root, *settings))
        if status[0] != "ok":
            raise OfficialCodeError(f"generator/{case}: the official code at {root} failed: {_status_text(status)}")
        _, off_median, off_best, off_mem = status
        nrr = _config(args.arch).neural_rendering_resolution
        extra = f" neural_rendering_resolution={nrr} code={root}"
        print(_line(f"generator/official/{case}", off_median, off_best, off_mem, case, args, extra), flush=True)
        print(
            f"generator/{case}: ours/official={median / max(off_median, 1e-9):.2f}x "
            f"(medians {median:.3f}s / {off_median:.3f}s, this run; below 1: ours is faster)",
            flush=True,
        )
    return 0


def _status_text(status: tuple) -> str:
    if status[0] == "died":
        return f"its process ended with exit code {status[1]} before reporting (out of memory?)"
    return status[1]
