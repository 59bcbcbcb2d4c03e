"""The trained prior: a small ``TriPlaneGenerator`` that draws the world's heads.

The attributes of a latent z (7 numbers, one per attribute) are a fixed function of it:
attribute_i = lo_i + (hi_i - lo_i) * Phi(u_i) with u = z / rms(z) and Phi the standard normal CDF
(``attributes_of``). EG3D's mapping network normalises z the same way before anything else, so only u can
matter; a random z gives a random plausible head, and the attributes of every z are known. The generator is trained by
regression against the world's own renders of those heads from random views (yaw within +-35 degrees, pitch
within +-20): many heads, a few views each, pre-rendered once; each step compares random subsets of pixels
(cheap, and every step sees many heads). It is never shown an OOD object.

``python -m innout.world train`` runs it: deterministic (seeded data, seeded steps), resumable (the rendered
data and a checkpoint are kept in the work folder; a killed run continues from its last checkpoint), with
progress bars, and writes the generator in the project's format with its training configuration, losses and
held-out PSNR in the metadata.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ..eg3d.cameras import FRONTAL_PITCH, FRONTAL_YAW, camera_rays, orbit_label
from ..eg3d.config import GeneratorConfig, RenderingConfig
from ..eg3d.generator import TriPlaneGenerator
from ..render import render_rays
from .heads import ATTRIBUTES, Head, HeadAttributes
from .render import render_world

Z_DIM = len(ATTRIBUTES)
WORLD_VERSION = "2"  # the heads, the renderer and attributes_of: part of the training data's cache key
ASSET = Path(__file__).resolve().parents[2] / "assets" / "world_prior.safetensors"


def prior_config() -> GeneratorConfig:
    """The prior's architecture: EG3D's, small (64^2 rays, 16 + 16 samples, 64^2 tri-planes of 16 channels),
    no camera conditioning (a head does not depend on the view), bilinear super-resolution to 512."""
    return GeneratorConfig(
        z_dim=Z_DIM,
        channel_base=4096,
        channel_max=64,
        triplane_resolution=64,
        triplane_channels=16,
        neural_rendering_resolution=64,
        superresolution_module="SuperresolutionBilinear",
        sr_num_fp16_res=0,
        rendering=RenderingConfig(depth_resolution=16, depth_resolution_importance=16, c_gen_conditioning_zero=True),
    )


def attributes_of(z: torch.Tensor) -> list[HeadAttributes]:
    """The attributes of latents z [N, 7]: attribute_i = lo + (hi - lo) * Phi(u_i), u = z / rms(z)."""
    z = z.double()
    u = z / z.square().mean(dim=1, keepdim=True).sqrt().clamp_min(1e-8)
    phi = 0.5 * (1 + torch.erf(u / math.sqrt(2)))
    out = []
    for row in phi:
        values = {n: lo + (hi - lo) * float(p) for (n, (lo, hi)), p in zip(ATTRIBUTES.items(), row, strict=True)}
        out.append(HeadAttributes(**values))
    return out


def random_views(n: int, generator: torch.Generator, yaw_deg: float = 35, pitch_deg: float = 20) -> torch.Tensor:
    """n EG3D cameras [n, 25], yaw and pitch uniform within +-the given degrees of frontal."""
    yaw = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(yaw_deg)
    pitch = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(pitch_deg)
    labels = [orbit_label(FRONTAL_YAW + float(y), FRONTAL_PITCH + float(p)) for y, p in zip(yaw, pitch, strict=True)]
    return torch.cat(labels)


@dataclass
class TrainConfig:
    heads: int = 480  # distinct training heads
    views: int = 3  # views per head
    world_samples: int = 128  # samples per ray of the world's renders
    steps: int = 2800
    batch: int = 8  # images per step
    rays: int = 32  # a step compares rays x rays random pixels of each image
    lr: float = 1e-2  # regression, not a GAN: 5x StyleGAN's rate learns far faster (18.3 vs 17.2 dB at step 200)
    mapping_lr_scale: float = 10.0  # the mapping network's layers have EG3D's lr multiplier 0.01: partly undone
    lr_final: float = 5e-4  # cosine decay to this
    heldout_heads: int = 24
    seed: int = 7
    checkpoint_every: int = 100
    eval_every: int = 500  # held-out PSNR logged every this many steps

    def key(self) -> str:
        payload = json.dumps(
            {"train": dataclasses.asdict(self), "prior": prior_config().to_dict(), "world": WORLD_VERSION},
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def render_dataset(n_heads: int, views: int, seed: int, resolution: int, samples: int, progress: bool = True):
    """(z [H, 7], cameras [H * V, 25], images [H * V, 3, R, R] in [-1, 1]): the world's renders."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(n_heads, Z_DIM, generator=generator)
    cameras = random_views(n_heads * views, generator)
    images = []
    for i, attrs in enumerate(tqdm(attributes_of(z), desc="world renders", unit="head", disable=not progress)):
        cams = cameras[i * views : (i + 1) * views]
        images.append(render_world(Head(attrs), [], cams, resolution, samples=samples).image)
    return z, cameras, torch.cat(images)


def _cached_dataset(folder: Path, name: str, n_heads: int, cfg: TrainConfig, seed: int, resolution: int):
    from .. import storage

    path = folder / f"{name}.safetensors"
    if path.is_file():
        try:
            t = storage.load_tensors(path)[0]
            return t["z"], t["cameras"], t["images"].float()
        except storage.CorruptEntryError as exc:
            storage.discard(path, str(exc))
    z, cameras, images = render_dataset(n_heads, cfg.views, seed, resolution, cfg.world_samples)
    storage.save_tensors({"z": z, "cameras": cameras, "images": images.half()}, path)
    return z, cameras, images.half().float()


def render_subset(G: TriPlaneGenerator, ws: torch.Tensor, cameras: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """G's raw RGB [N, 3, P] at pixel indices [N, P] (P a square number) of its neural render of cameras."""
    origins, directions = camera_rays(cameras, G.neural_rendering_resolution)
    index = pixels[..., None].expand(-1, -1, 3)
    o, d = origins.gather(1, index), directions.gather(1, index)
    planes = G.synthesize_planes(ws, noise_mode="const")
    out = render_rays([G.face_field(planes)], o, d, G.rendering)
    return out.image_raw.flatten(2)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.clamp(-1, 1) - b.clamp(-1, 1)) / 2).square().mean())
    return 10 * math.log10(1 / max(mse, 1e-12))


@torch.no_grad()
def heldout_psnr(G: TriPlaneGenerator, z: torch.Tensor, cameras: torch.Tensor, images: torch.Tensor) -> float:
    """PSNR of G's neural renders against the world's, over held-out heads and views."""
    views = len(cameras) // len(z)
    ws = G.mapping(z.repeat_interleave(views, 0), cameras)
    renders = [G.render_planes(G.synthesize_planes(w[None]), c[None], deterministic=True).image_raw
               for w, c in zip(ws, cameras, strict=True)]  # fmt: skip
    return psnr(torch.cat(renders), images)


W_AVG_SAMPLES = 65536


@torch.no_grad()
def estimate_w_avg(G: TriPlaneGenerator, samples: int = W_AVG_SAMPLES, seed: int = 0) -> torch.Tensor:
    """Set and return the mapping's ``w_avg``: the mean of w over ``samples`` random z (seeded).

    EG3D tracks it as a running average while it trains; the regression trainer here never calls the mapping in
    that mode, so without this it stays at zero, a w that draws no head. The joint stage's L_w pulls every
    frame's w towards it, truncation pulls towards it, and the geometric mask propagation renders it as the mean face.
    """
    mapping = G.backbone.mapping
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(samples, mapping.z_dim, generator=generator).to(mapping.w_avg.device)
    c = torch.zeros(samples, mapping.c_dim, device=z.device)
    total = torch.zeros_like(mapping.w_avg)
    for chunk_z, chunk_c in zip(z.split(8192), c.split(8192), strict=True):
        total += G.mapping(chunk_z, chunk_c)[:, 0].sum(0)
    mapping.w_avg.copy_(total / samples)
    return mapping.w_avg


def set_prior_w_avg(path: str | os.PathLike, output: str | os.PathLike | None = None) -> Path:
    """Rewrite the prior at ``path`` (to ``output``, default in place) with ``estimate_w_avg``'s w_avg, every other
    tensor and its metadata kept; the metadata records how w_avg was made."""
    from ..eg3d.checkpoint import load_generator
    from ..eg3d.weights_file import read_safetensors_metadata, save_generator

    G = load_generator(path, "cpu")
    estimate_w_avg(G)
    metadata = read_safetensors_metadata(path)
    kept = {k: v for k, v in metadata.items() if k not in ("format", "version", "config", "innout_sha256")}
    kept["innout_w_avg"] = json.dumps({"samples": W_AVG_SAMPLES, "seed": 0, "what": "mean of mapped random z"})
    return save_generator(G, Path(output or path), kept)


def train_prior(
    workdir: str | os.PathLike, cfg: TrainConfig | None = None, *, output: str | os.PathLike | None = None,
    progress: bool = True, log=print,
) -> Path:  # fmt: skip
    """Train (or resume training) the prior in ``workdir``; write it to ``output`` (default: the asset)."""
    from .. import storage
    from ..eg3d.weights_file import save_generator

    cfg = cfg or TrainConfig()
    folder = Path(workdir) / f"prior-{cfg.key()}"
    folder.mkdir(parents=True, exist_ok=True)
    res = prior_config().neural_rendering_resolution
    started = time.perf_counter()
    z, cameras, images = _cached_dataset(folder, "train", cfg.heads, cfg, cfg.seed, res)
    hz, hcams, himages = _cached_dataset(folder, "heldout", cfg.heldout_heads, cfg, cfg.seed + 1000, res)
    torch.manual_seed(cfg.seed)
    G = TriPlaneGenerator(prior_config())
    mapping = [p for n, p in G.named_parameters() if n.startswith("backbone.mapping.")]
    others = [p for n, p in G.named_parameters() if not n.startswith("backbone.mapping.")]
    groups = [{"params": others, "scale": 1.0}, {"params": mapping, "scale": cfg.mapping_lr_scale}]
    optimizer = torch.optim.Adam(groups, lr=cfg.lr, betas=(0.9, 0.99))
    step, history = 0, []
    checkpoint = storage.latest_checkpoint(folder)
    if checkpoint is not None:
        saved = storage.load_checkpoint(checkpoint)
        G.load_state_dict(saved["generator"])
        optimizer.load_state_dict(saved["optimizer"])
        step, history = saved["step"], saved["history"]
        log(f"resuming the prior's training at step {step} ({checkpoint})")
    views = cfg.views
    pixels_per_image = cfg.rays * cfg.rays
    bar = tqdm(total=cfg.steps, initial=step, desc="prior", unit="step", disable=not progress)
    while step < cfg.steps:
        generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        pick = torch.randint(len(images), (cfg.batch,), generator=generator)
        pixels = torch.stack([torch.randperm(res * res, generator=generator)[:pixels_per_image] for _ in pick])
        lr = cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1 + math.cos(math.pi * step / cfg.steps))
        for group in optimizer.param_groups:
            group["lr"] = lr * group["scale"]
        torch.manual_seed(cfg.seed + step)  # the ray jitter of this step
        ws = G.mapping(z[pick // views], cameras[pick])
        rendered = render_subset(G, ws, cameras[pick], pixels)
        target = images[pick].flatten(2).gather(2, pixels[:, None, :].expand(-1, 3, -1))
        loss = (rendered - target).square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        history.append(float(loss.detach()))
        bar.update(1)
        bar.set_postfix(loss=f"{history[-1]:.4f}", refresh=False)
        if step % cfg.eval_every == 0 and step < cfg.steps:
            G.eval()
            log(f"prior step {step}: held-out PSNR {heldout_psnr(G, hz, hcams, himages):.2f} dB")
            G.train()
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            storage.save_checkpoint({"generator": G.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                                     "history": history}, folder)  # fmt: skip
    bar.close()
    G.eval()
    estimate_w_avg(G)
    score = heldout_psnr(G, hz, hcams, himages)
    train_score = heldout_psnr(G, z[:8], cameras[: 8 * views], images[: 8 * views])
    log(f"prior: held-out PSNR {score:.2f} dB, training-head PSNR {train_score:.2f} dB")
    metadata = {
        "innout_world_prior": json.dumps({
            "train_config": dataclasses.asdict(cfg), "heldout_psnr": score, "train_psnr": train_score,
            "final_loss": sum(history[-50:]) / max(1, len(history[-50:])),
            "seconds_this_run": time.perf_counter() - started, "attributes": ATTRIBUTES,
        }),
        "innout_w_avg": json.dumps({"samples": W_AVG_SAMPLES, "seed": 0, "what": "mean of mapped random z"}),
    }  # fmt: skip
    out = Path(output) if output else ASSET
    out.parent.mkdir(parents=True, exist_ok=True)
    return save_generator(G, out, metadata)
