"""A head start for the OOD field: put it where the face model cannot explain the frames (docs/method.md).

Without it the joint stage's blend terms push b to 0 everywhere within tens of iterations, long before
the OOD field's density has grown where the object is, and the field collapses (b ~ 0, the face latents
absorb the object). So before the joint stage the OOD field is regressed, point by point (no rendering,
no generator), onto a first guess of the object:

- where: masks of the pixels the object covers. With the user's masks (semi-supervised) those; without,
  ``residual_masks``: where the regularised inversion's render differs most from the frame (the per-pixel
  error over 3x3 pixels, Otsu's threshold over the whole clip, never below ``floor``);
- at what depth: the inversion's expected depth at that pixel (the object is what the inversion's surface
  tried to reproduce there);
- what: along a masked ray a dense shell of the pixel's colour around that depth with b = 1 (``shell``: its
  half-thickness, at least the coarse sample spacing, so that the render's samples find it), nothing in front of
  it. By default b = 1 also in that empty space in front (``blend_span``): the joint stage's entropy term
  acts on every sample and its area term on each ray's largest b, so a b of 1 on a few samples only is worn
  down by the area term, while a whole ray at b = 1 is held there by the entropy (measured on the world
  benchmark: docs/differences.md). b = 0 everywhere else, and behind the shell.

The joint stage then refines the guess with the paper's losses, guided towards it at a fading weight when there
are no masks (``joint.lambda_guide``); a wrong guess is unlearned there (the pseudo-mask covers part of the face
when the inversion fails there too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ..eg3d.cameras import camera_rays, pixel_centres, project_points
from ..eg3d.generator import TriPlaneGenerator
from ..progress import Progress
from ..scene.ood_field import OODField
from .config import BLEND_SPANS, EMPTY_SPANS
from .data import FitData
from .latents import LatentCodes, RenderSettings

STAGE = "ood head start"  # the name progress reports carry
SHELL_DENSITY = 20.0  # raw density of the shell at the surface (softplus(19) ~ 19 per unit: opaque in ~0.1)
EMPTY_DENSITY = -10.0  # raw density in front of the surface


@dataclass
class FirstGuess:
    """Per frame at the joint resolution: masks [F, 1, R, R] (1 = object), depths [F, 1, R, R] and the
    targets [F, 3, R, R] in [-1, 1]."""

    masks: torch.Tensor
    depths: torch.Tensor
    targets: torch.Tensor


def otsu_threshold(values: torch.Tensor, bins: int = 256) -> float:
    """The threshold that maximises the between-class variance of ``values`` (Otsu 1979)."""
    top = float(values.max())
    if top <= 0:
        return 0.0
    hist = torch.histc(values.float().flatten(), bins, 0.0, top)
    centres = (torch.arange(bins, dtype=torch.float32) + 0.5) * top / bins
    below = hist.cumsum(0)
    above = hist.sum() - below
    mass = (hist * centres).cumsum(0)
    mean_below = mass / below.clamp_min(1)
    mean_above = (mass[-1] - mass) / above.clamp_min(1)
    between = below * above * (mean_below - mean_above).square()
    return float(centres[int(between.argmax())])


def residual_masks(renders: torch.Tensor, targets: torch.Tensor, floor: float) -> torch.Tensor:
    """Where renders [F, 3, R, R] fail to explain targets (both in [-1, 1]): the mean absolute error over the
    channels (in [0, 1] units), averaged over 3x3 pixels, above Otsu's threshold over the clip and above
    ``floor``. Returns bool [F, 1, R, R]."""
    error = (renders.clamp(-1, 1) - targets.clamp(-1, 1)).abs().mean(dim=1, keepdim=True) / 2
    error = F.avg_pool2d(error, 3, stride=1, padding=1, count_include_pad=False)
    return error > max(otsu_threshold(error), floor)


@torch.no_grad()
def first_guess(
    G: TriPlaneGenerator,
    data: FitData,
    codes: LatentCodes,
    settings: RenderSettings,
    floor: float,
) -> FirstGuess:
    """The inversion's renders (deterministic samples), hence the masks (the data's own when it has some) and
    the depths, one frame at a time."""
    resolution = settings.size(G)
    renders, depths = [], []
    for t in range(len(data)):
        frame = torch.tensor([t], device=data.cameras.device)
        planes = G.synthesize_planes(codes(frame), noise_mode="const")
        out = G.render_planes(planes, data.cameras[frame], resolution=resolution, deterministic=True,
                              **settings.kwargs())  # fmt: skip
        renders.append(out.image_raw)
        depths.append(out.depth_image)
    frames = torch.arange(len(data), device=data.cameras.device)
    targets = data.target(frames, resolution)
    given = data.mask(frames, resolution)
    masks = given > 0.5 if given is not None else residual_masks(torch.cat(renders), targets, floor)
    return FirstGuess(masks=masks, depths=torch.cat(depths), targets=targets)


# 'auto' motion: the object moves when in some frame it is this many of its image radii from where the head would
# carry it. Measured on the world (test scale, two seeds): objects fixed to the head 0.10-0.98 (the clown nose
# stands in front of the face's surface: parallax), the card crossing the face 2.48-5.60 (docs/results.md).
MOTION_RATIO = 1.5


def _centroids(guess: FirstGuess, origins: torch.Tensor, directions: torch.Tensor):
    """Per frame: the centroid [F, 3] of the masked pixels' surface points (origins + depth * directions, rays
    [F, R*R, 3]) and whether the frame has a masked pixel [F]."""
    n = guess.masks.shape[0]
    masks = guess.masks.reshape(n, -1, 1).to(origins.dtype)
    points = origins + guess.depths.reshape(n, -1, 1).to(origins.dtype) * directions
    count = masks.sum(dim=1)
    centroids = (points * masks).sum(dim=1) / count.clamp_min(1)
    return centroids, count[:, 0] > 0


@torch.no_grad()
def centroid_offsets(guess: FirstGuess, origins: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Each frame's translation of the object [F, 3] from the first guess: the centroid of its masked pixels'
    surface points less the median centroid over the frames, so that an object fixed to the head starts with
    offsets near zero. A frame without a masked pixel takes the median (offset zero)."""
    centroids, seen = _centroids(guess, origins, directions)
    return _less_median(centroids, seen)


def _less_median(centroids: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """Centroids [F, 3] less the median of the seen ones; zero for the unseen (and for all when none is seen)."""
    if not seen.any():
        return torch.zeros_like(centroids)
    middle = centroids[seen].median(dim=0).values
    return torch.where(seen[:, None], centroids - middle, torch.zeros_like(centroids))


@torch.no_grad()
def motion_ratio(guess: FirstGuess, origins: torch.Tensor, directions: torch.Tensor, cameras: torch.Tensor) -> float:
    """How far the first guess's object moves against the head, judged in the image plane: the reference frame's
    (the middle seen frame's) masked pixels are lifted onto the head at one depth, carried to every seen frame by
    its camera [F, 25], and where their centre lands is compared with the centre of that frame's masked pixels.
    The ratio: the largest distance between the two over the frames, in the object's image radius (the median over
    frames of sqrt(masked pixels / pi)); 0 when fewer than two frames have a masked pixel.

    The depth is the median of the reference pixels that hit the head (nearer than halfway between the clip's
    nearest and farthest depth); when none does, that of the frame's head pixels. A card reaching past the face
    has pixels whose depth is the background's: lifted there, or measured in 3D, they inflate the object's size
    and its crossing does not count (docs/results.md)."""
    n, _, res, _ = guess.masks.shape
    masks = guess.masks.reshape(n, -1)
    seen = masks.any(dim=1).nonzero()[:, 0]
    if len(seen) < 2:
        return 0.0
    depths = guess.depths.reshape(n, -1).to(origins.dtype)
    halfway = _halfway(depths)
    ref = int(seen[len(seen) // 2])
    own = depths[ref][masks[ref]]
    on_head = own[own < halfway]
    if len(on_head) == 0:
        on_head = depths[ref][depths[ref] < halfway]
    depth = (on_head if len(on_head) else own).median()
    lifted = origins[ref][masks[ref]] + depth * directions[ref][masks[ref]]
    carried = project_points(cameras[seen], lifted.expand(len(seen), -1, -1)).mean(dim=1)
    v, u = pixel_centres(res, origins.device)
    pixels = torch.stack([u.reshape(-1), v.reshape(-1)], dim=-1).to(origins.dtype)
    weights = masks[seen].to(origins.dtype)
    count = weights.sum(dim=1, keepdim=True)
    centres = weights @ pixels / count
    radius = (count[:, 0] / torch.pi).sqrt().median() / res
    return float(((centres - carried.to(centres.dtype)).norm(dim=-1) / radius).max())


def _halfway(depths: torch.Tensor) -> torch.Tensor:
    """Halfway between the clip's nearest and farthest depth: nearer, a ray hits the head; farther, the background."""
    return 0.5 * (depths.min() + depths.max())


@torch.no_grad()
def background_onto_object(guess: FirstGuess) -> FirstGuess:
    """The guess with its masked pixels that see the background (depth past ``_halfway``) moved to the object's
    depth: the median of the frame's masked pixels on the head, or of the clip's when the frame has none. The
    inversion's depth there is the background's, far behind the head, where an object in front of the face (a
    card reaching past the chin, a mask's edge) is not; the head start would build it there. Unchanged when no
    masked pixel sees the background or none is on the head."""
    masks, depths = guess.masks, guess.depths
    far = masks & (depths >= _halfway(depths))
    near = masks & ~far
    if not far.any() or not near.any():
        return guess
    clip_depth = depths[near].median()
    per_frame = torch.stack([depths[t][near[t]].median() if near[t].any() else clip_depth for t in range(len(depths))])
    moved = torch.where(far, per_frame.reshape(-1, 1, 1, 1).to(depths.dtype), depths)
    return FirstGuess(masks=masks, depths=moved, targets=guess.targets)


DEPTH_SEARCH = 0.25  # 'views' depth: offsets tried along the rays, -0.25 to +0.25 (the head is about 0.5 deep)
DEPTH_STEP = 0.01  # ... in steps of 0.01 (the world's coarse samples are 0.02 apart, the shell at least 0.03 thick)
DEPTH_FRAMES = 8  # ... judged on at most this many reference frames, each against at most this many others
# ... and taken only when its views agree this much better than at the surface (the share of lifted pixels that land on
# the masks). Set from the world (test scale, two seeds): the offsets that helped gained 0.10-0.62 (clown nose,
# sunglasses), those that hurt 0.004-0.045 (face paint, surgical mask: small offsets of objects on the skin).
DEPTH_MIN_GAIN = 0.07


class DepthChoice(NamedTuple):
    """The 'views' depth decision: ``offset`` the one taken (0 unless ``gain`` reaches ``DEPTH_MIN_GAIN``), ``best``
    the offset at which the views agree best, ``gain`` how much better they agree there than at the surface (also
    when it is too small and the offset not taken)."""

    offset: float
    best: float
    gain: float


@torch.no_grad()
def views_depth_choice(guess: FirstGuess, origins: torch.Tensor, directions: torch.Tensor, cameras: torch.Tensor,
                       ) -> DepthChoice:  # fmt: skip
    """The offset along the rays at which the object's views agree. Each reference frame's masked pixels are lifted to
    their depth plus the offset and carried to other frames by their cameras [F, 25]; the score is the mean share that
    lands on those frames' masks, the best offset the best of -``DEPTH_SEARCH`` .. +``DEPTH_SEARCH`` (ties: the one
    nearest 0), taken when it scores ``DEPTH_MIN_GAIN`` more than 0. The inversion's depth is the face's surface,
    which an object standing off the face (a clown nose, sunglasses) is not on: its views then agree some hundredths
    in front (docs/results.md). All 0 with fewer than two frames with a masked pixel."""
    n, _, res, _ = guess.masks.shape
    masks = guess.masks.reshape(n, -1)
    seen = masks.any(dim=1).nonzero()[:, 0].tolist()
    if len(seen) < 2:
        return DepthChoice(0.0, 0.0, 0.0)
    depths = guess.depths.reshape(n, -1).to(origins.dtype)
    refs = seen[:: max(1, len(seen) // DEPTH_FRAMES)][:DEPTH_FRAMES]
    steps = round(DEPTH_SEARCH / DEPTH_STEP)
    offsets = sorted((DEPTH_STEP * i for i in range(-steps, steps + 1)), key=lambda o: (abs(o), o))
    scores = torch.zeros(len(offsets), dtype=torch.float64, device=origins.device)  # no host sync per offset
    for ref in refs:
        others = [f for f in seen if f != ref]
        others = others[:: max(1, len(others) // DEPTH_FRAMES)][:DEPTH_FRAMES]
        pixels = masks[ref]
        starts, rays, surface = origins[ref][pixels], directions[ref][pixels], depths[ref][pixels]
        their_cameras, their_masks = cameras[others], masks[others]
        for k, offset in enumerate(offsets):
            lifted = starts + (surface + offset)[:, None] * rays
            where = (project_points(their_cameras, lifted.expand(len(others), -1, -1)) * res).floor().long()
            inside = ((where >= 0) & (where < res)).all(dim=-1)
            index = where[..., 1].clamp(0, res - 1) * res + where[..., 0].clamp(0, res - 1)
            landed = torch.gather(their_masks, 1, index) & inside
            scores[k] += landed.double().mean(dim=1).sum() / (len(others) * len(refs))
    best = int(scores.argmax())  # the first best: the nearest 0 of the ties
    gain = float(scores[best] - scores[0])  # offsets[0] is 0
    return DepthChoice(float(offsets[best]) if gain >= DEPTH_MIN_GAIN else 0.0, float(offsets[best]), gain)


def at_depth_offset(guess: FirstGuess, offset: float) -> FirstGuess:
    """The guess with its masked pixels' depths moved ``offset`` along their rays (the rest as they are)."""
    if offset == 0.0:
        return guess
    depths = torch.where(guess.masks, guess.depths + offset, guess.depths)
    return FirstGuess(masks=guess.masks, depths=depths, targets=guess.targets)


def blend_cross_entropy(b: torch.Tensor, positive: torch.Tensor, balanced: bool) -> torch.Tensor:
    """Binary cross-entropy of the blend weights ``b`` against ``positive`` (True: b should be 1): the mean over
    all samples, or with ``balanced`` the average of the two classes' means (a class without samples counts 0)."""
    per_sample = F.binary_cross_entropy(b.clamp(1e-6, 1 - 1e-6), positive.float(), reduction="none")
    if not balanced:
        return per_sample.mean()
    pos, neg = positive.float(), (~positive).float()
    return 0.5 * ((per_sample * pos).sum() / pos.sum().clamp_min(1) + (per_sample * neg).sum() / neg.sum().clamp_min(1))


def bootstrap_ood(
    ood: OODField,
    guess: FirstGuess,
    cameras: torch.Tensor,
    rendering,
    *,
    steps: int,
    lr: float,
    rays_per_step: int = 2048,
    samples_per_ray: int = 16,
    shell: float = 0.03,
    seed: int = 0,
    balanced: bool = False,
    blend_span: str = "front",
    empty_span: str = "front",
    start_offsets: torch.Tensor | None = None,
    progress: Progress | None = None,
) -> list[dict[str, float]]:
    """Regress ``ood`` onto the first guess for ``steps`` Adam steps at ``lr`` (the joint stage's lr):
    random rays of random frames, random depths along them, half of the rays drawn from the masks. Returns the
    loss history (``b``: binary cross-entropy of b, ``density``, ``colour``). ``balanced``: the cross-entropy
    is the mean of the shell samples' and the other samples' (the shell holds a few percent of the samples, so
    the plain mean leaves b there well short of 1). ``blend_span``: where b = 1 on a masked ray (``BLEND_SPANS``):
    the shell; also the empty space in front of it (its density stays empty), so that most of the ray, not a few
    samples, holds the object's blend weight; or the whole ray. ``empty_span`` (``EMPTY_SPANS``): where the density is
    taught to be empty: in front of the shell on the masked rays only, or at every sample but the shell's.
    ``start_offsets`` [F, 3] (a field with motion): its translations start there and are trained with it; None: they
    stay as they are."""
    if blend_span not in BLEND_SPANS:
        raise ValueError(f"blend_span must be one of {BLEND_SPANS}, got {blend_span!r}")
    if empty_span not in EMPTY_SPANS:
        raise ValueError(f"empty_span must be one of {EMPTY_SPANS}, got {empty_span!r}")
    if start_offsets is not None:  # also without steps: the translations start there all the same
        with torch.no_grad():
            ood.offsets.copy_(start_offsets)
    if steps <= 0:
        return []
    device = guess.masks.device
    generator = torch.Generator().manual_seed(seed + 104729)
    n, _, res, _ = guess.masks.shape
    origins, directions = camera_rays(cameras, res)  # [F, R*R, 3]
    masks = guess.masks.reshape(n, -1)
    depths = guess.depths.reshape(n, -1)
    colours = guess.targets.reshape(n, 3, -1).permute(0, 2, 1) * 0.5 + 0.5  # the decoder's colours are in [0, 1]
    inside = masks.nonzero()
    moving = [ood.offsets] if start_offsets is not None else []
    optimizer = torch.optim.Adam([ood.triplanes, *ood.decoder.parameters(), ood.codes, *moving], lr=lr)
    history = []
    for _ in range(steps):
        picks = torch.randint(0, n * res * res, (rays_per_step,), generator=generator)
        frame, ray = picks // (res * res), picks % (res * res)
        if len(inside):  # half the rays on the object: it is small
            chosen = inside[torch.randint(0, len(inside), (rays_per_step // 2,), generator=generator)]
            frame[: len(chosen)], ray[: len(chosen)] = chosen[:, 0].cpu(), chosen[:, 1].cpu()
        frame, ray = frame.to(device), ray.to(device)
        u = torch.rand(rays_per_step, samples_per_ray, generator=generator).to(device)
        t = rendering.ray_start + u * (rendering.ray_end - rendering.ray_start)
        surface = depths[frame, ray].unsqueeze(1)
        on_object = masks[frame, ray].unsqueeze(1)
        near = (t - surface).abs() < shell
        points = origins[frame, ray].unsqueeze(1) + t.unsqueeze(-1) * directions[frame, ray].unsqueeze(1)
        # one "frame" per ray: the field takes points [N, M, 3] with one code per row. The codes are picked by a
        # one-hot product: indexing with repeated frames back-propagates through scattered adds, whose order (and
        # so the last bits) varies between runs on a CPU; a resumed fit must equal a straight one
        codes = F.one_hot(frame, n).to(ood.codes.dtype) @ ood.codes
        out = ood(points, frame, codes)  # the offsets (with motion) are picked the same way inside
        b = out.blend.reshape(rays_per_step, samples_per_ray)
        sigma = out.sigma.reshape(rays_per_step, samples_per_ray)
        rgb = out.rgb[:, :3].reshape(rays_per_step, samples_per_ray, 3)
        shell_points = on_object & near
        shaped = on_object & (t < surface + shell)  # the shell and the empty space in front of it
        blend_target = {"shell": shell_points, "front": shaped, "ray": on_object.expand_as(t)}[blend_span]
        loss_b = blend_cross_entropy(b, blend_target, balanced)
        sigma_error = (sigma - torch.where(shell_points, SHELL_DENSITY, EMPTY_DENSITY)).square()
        if empty_span == "front":
            loss_sigma = (sigma_error * shaped).sum() / shaped.sum().clamp_min(1) / 100
        else:  # the shell's and the rest's means, averaged: the shell is a few percent of the samples
            rest = ~shell_points
            loss_sigma = 0.5 * ((sigma_error * shell_points).sum() / shell_points.sum().clamp_min(1)
                                + (sigma_error * rest).sum() / rest.sum().clamp_min(1)) / 100  # fmt: skip
        colour = colours[frame, ray].unsqueeze(1).expand_as(rgb)
        loss_rgb = ((rgb - colour).square().sum(-1) * shell_points).sum() / shell_points.sum().clamp_min(1)
        loss = loss_b + loss_sigma + loss_rgb
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        terms = {"loss": loss, "b": loss_b, "density": loss_sigma, "colour": loss_rgb}
        history.append({k: float(v.detach()) for k, v in terms.items()})
        if progress is not None:
            progress(STAGE, len(history), steps, history[-1])
    return history
