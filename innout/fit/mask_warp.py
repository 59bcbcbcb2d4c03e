"""Propagate a first-frame OOD mask by the head's geometry instead of by optical flow.

Every prepared frame has a camera (the head's pose relative to it). A pixel of frame t is carried back to
frame 0 through a 3D point: the ray of frame t's pixel meets the generator's mean face (w_avg, the most
typical head the prior knows) at its rendered depth; that point, seen from frame 0's camera, lands on a pixel of
frame 0, whose mask value it takes. Rays that miss the mean face (hair, background, glasses' arms) meet the plane
through the camera pivot facing the camera instead. A point that frame 0 saw behind something nearer (the cheek
behind the nose) is not in frame 0's mask.

Why: flow between consecutive crops loses small objects and drifts on large head turns (a clown nose or a
moving card vanish after one 25-degree step of the world benchmark), while the cameras are already known and
exact for anything attached to the head. It cannot follow an object that moves on its own (a hand, a card) or
an expression the mean face does not make; ``refine`` lets optical flow correct what is left, from frame 0
warped into frame t (one short step, no drift).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..eg3d.cameras import CAMERA_PIVOT, camera_rays, split_label
from ..eg3d.generator import TriPlaneGenerator
from .mask_colour import refine_by_colour
from .masks import MaskError, Propagator, propagate_mask

PROPAGATIONS = ("colour", "both", "flow", "geometry")  # the first is the default

OCCLUSION_TOLERANCE = 0.05  # world units (the head is about 1 across): nearer than this is "the same surface"
GEOMETRY_RESOLUTION = 64  # rays per side of the mean face's depth: the warp is smooth, the mask keeps its detail
GEOMETRY_SAMPLES = 24  # coarse and fine samples per ray at most (EG3D's 48 + 48 cost 4x for a depth no one sees)


@torch.no_grad()
def mean_face_depth(
    G: TriPlaneGenerator, cameras: torch.Tensor, resolution: int, batch: int = 4
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ray depth and opacity [F, R, R] of the prior's mean face (w_avg) seen by each camera [F, 25], with at most
    ``GEOMETRY_SAMPLES`` coarse and fine samples per ray."""
    device = G.backbone.mapping.w_avg.device
    ws = G.backbone.mapping.w_avg.reshape(1, 1, -1).expand(1, G.backbone.mapping.num_ws, -1)
    planes = G.synthesize_planes(ws)
    depths, opacities = [], []
    for start in range(0, len(cameras), batch):
        c = cameras[start : start + batch].to(device).float()
        render = G.render_planes(
            planes.expand(len(c), -1, -1, -1, -1), c, resolution=resolution, deterministic=True,
            depth_resolution=min(GEOMETRY_SAMPLES, G.rendering.depth_resolution),
            depth_resolution_importance=min(GEOMETRY_SAMPLES, G.rendering.depth_resolution_importance),
        )  # fmt: skip
        depths.append(render.depth_image[:, 0].cpu())
        opacities.append(render.weight_image[:, 0].clamp(0, 1).cpu())
    return torch.cat(depths), torch.cat(opacities)


def _pivot_plane_depth(origins: torch.Tensor, directions: torch.Tensor, forward: torch.Tensor) -> torch.Tensor:
    """Ray distance [N, M] to the plane through the camera pivot facing the camera (``forward`` [N, 3])."""
    pivot = torch.tensor(CAMERA_PIVOT, dtype=origins.dtype)
    along = ((pivot - origins) * forward[:, None]).sum(-1)
    return along / (directions * forward[:, None]).sum(-1).clamp_min(1e-6)


def _project(points: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """World points [M, 3] seen by one camera [25] -> normalised image coordinates [M, 2] (0..1) and ray distance."""
    cam2world, k = split_label(c[None].float())
    world2cam = torch.linalg.inv(cam2world[0])
    local = points @ world2cam[:3, :3].T + world2cam[:3, 3]
    z = local[:, 2].clamp_min(1e-6)
    k = k[0]
    u = (k[0, 0] * local[:, 0] + k[0, 1] * local[:, 1]) / z + k[0, 2]
    v = k[1, 1] * local[:, 1] / z + k[1, 2]
    distance = (points - cam2world[0, :3, 3]).norm(dim=-1)
    return torch.stack([u, v], dim=-1), distance


def frame0_coordinates(
    G: TriPlaneGenerator, cameras: torch.Tensor, resolution: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """For every frame's pixel (at the render ``resolution``), where it lies in frame 0 (normalised 0..1 coordinates
    [F, R, R, 2]) and whether frame 0 saw that point (bool [F, R, R]). Default ``resolution``: the generator's
    neural resolution, at most ``GEOMETRY_RESOLUTION``."""
    res = resolution or min(GEOMETRY_RESOLUTION, G.neural_rendering_resolution)
    cameras = cameras.float().cpu()
    depth, opacity = mean_face_depth(G, cameras, res)
    origins, directions = camera_rays(cameras, res)
    forward = split_label(cameras)[0][:, :3, 2]
    plane = _pivot_plane_depth(origins, directions, forward)
    ray_depth = opacity.flatten(1) * depth.flatten(1) + (1 - opacity.flatten(1)) * plane
    points = origins + directions * ray_depth[..., None]
    # frame 0's own surface, to tell points it saw from points behind its nearer surface
    surface0 = ray_depth[0].reshape(1, 1, res, res)
    coords, seen = [], []
    for t in range(len(cameras)):
        uv, distance = _project(points[t], cameras[0])
        grid = (uv * 2 - 1).reshape(1, 1, -1, 2)
        nearest = F.grid_sample(surface0, grid, mode="bilinear", padding_mode="border", align_corners=False)
        inside = ((uv >= 0) & (uv <= 1)).all(-1)
        coords.append(uv.reshape(res, res, 2))
        seen.append((inside & ((distance - nearest.flatten()).abs() <= OCCLUSION_TOLERANCE)).reshape(res, res))
    return torch.stack(coords), torch.stack(seen)


def propagate_mask_by_geometry(
    G: TriPlaneGenerator, cameras: torch.Tensor, first: np.ndarray, crops: np.ndarray | None = None,
    *, refine: bool = False, resolution: int | None = None, frames: list[int] | None = None,
) -> np.ndarray:  # fmt: skip
    """bool masks [F, H, W] from frame 0's bool mask [H, W] and the frames' cameras [F, 25] (module docstring).
    ``refine`` (needs the uint8 ``crops`` [F, H, W, 3]): correct each warp with optical flow between frame t and
    frame 0 warped into it. ``frames``: compute only these (a fit's kept frames: the mean face is rendered once per
    frame, about a second on a CPU with EG3D); the others are left empty."""
    if first.ndim != 2:
        raise MaskError(f"the first-frame mask must be [H, W], got shape {first.shape}")
    if refine and (crops is None or crops.shape[1:3] != first.shape):
        raise MaskError("refining the warped masks needs the crops, at the mask's size")
    h, w = first.shape
    count = len(cameras)
    wanted = sorted({int(t) for t in (range(count) if frames is None else frames)} - {0})
    if any(t < 0 or t >= count for t in wanted):
        raise MaskError(f"frames {wanted} are not all among the {count} frames")
    coords, seen = frame0_coordinates(G, torch.as_tensor(cameras)[[0, *wanted]], resolution)
    # the warp at the crops' size: coordinates and visibility are smooth, the mask keeps its own detail
    coords = F.interpolate(coords.permute(0, 3, 1, 2), size=(h, w), mode="bilinear", align_corners=False)
    seen = F.interpolate(seen[:, None].float(), size=(h, w), mode="bilinear", align_corners=False)[:, 0] > 0.5
    map_x = (coords[:, 0] * w - 0.5).numpy().astype(np.float32)  # pixel centres: u = (x + 0.5) / w
    map_y = (coords[:, 1] * h - 0.5).numpy().astype(np.float32)
    first_f = first.astype(np.float32)
    masks = np.zeros((count, h, w), dtype=bool)
    masks[0] = first
    for j, t in enumerate(wanted, start=1):
        mx, my = map_x[j], map_y[j]
        if refine:
            mx, my = _refined_maps(crops[0], crops[t], mx, my)
        warped = cv2.remap(first_f, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        masks[t] = (warped > 0.5) & seen[j].numpy()
    return masks


def _refined_maps(crop0: np.ndarray, crop_t: np.ndarray, map_x: np.ndarray, map_y: np.ndarray):
    """The geometric maps (frame t pixel -> frame 0 pixel) corrected by the flow from frame t to frame 0 warped
    into frame t, so what the mean face got wrong is the only motion the flow has to find."""
    predicted = cv2.remap(crop0, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    current = cv2.cvtColor(np.asarray(crop_t), cv2.COLOR_RGB2GRAY)
    flow = cv2.calcOpticalFlowFarneback(current, cv2.cvtColor(predicted, cv2.COLOR_RGB2GRAY), None, 0.5, 4, 21, 3, 5,
                                        1.1, 0)  # fmt: skip
    h, w = map_x.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    # residual: current pixel p sits where the prediction had p + flow(p); that point came from map(p + flow(p))
    mx = cv2.remap(map_x, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    my = cv2.remap(map_y, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return mx, my


def check_propagation(how: str) -> None:
    """``MaskError`` unless ``how`` names one of ``PROPAGATIONS``."""
    if how not in PROPAGATIONS:
        raise MaskError(f"unknown mask propagation {how!r}; choose one of {', '.join(PROPAGATIONS)}")


def mask_propagator(
    how: str, G: TriPlaneGenerator | None = None, cameras: torch.Tensor | None = None,
    frames: list[int] | None = None,
) -> Propagator:  # fmt: skip
    """The propagator named ``how``: 'flow' (``propagate_mask``), 'geometry' (the mean face's geometry, refined
    by flow from frame 0), 'both' (a pixel is the object's when either carries frame 0's object there) or 'colour'
    ('both' as the prior of a per-pixel decision by frame 0's object and background colours,
    ``innout.fit.mask_colour``). ``frames``: where the geometry is computed (default: every frame); elsewhere 'both'
    and 'colour' start from the flow's mask and 'geometry' is empty.

    'colour' is the default: mean IoU with the true mask over frames 1..F-1 of the world clips (4 frames, 50 degrees
    of yaw; clown nose, face paint, moving card, sunglasses, surgical mask): flow .027 .578 .065 .434 .854,
    geometry .199 .717 .009 .716 .656, both .163 .643 .071 .544 .861, colour 1.000 .903 .988 .833 .996. The world's
    objects are flat-coloured, which is the colour model's best case (docs/method.md).
    """
    check_propagation(how)
    if how == "flow":
        return propagate_mask
    if G is None or cameras is None:
        raise MaskError(f"mask propagation {how!r} needs the generator and the frames' cameras")

    def by_geometry(crops: np.ndarray, first: np.ndarray) -> np.ndarray:
        masks = propagate_mask_by_geometry(G, cameras, first, crops, refine=True, frames=frames)
        if how == "geometry":
            return masks
        masks = masks | propagate_mask(crops, first)
        return refine_by_colour(crops, first, masks) if how == "colour" else masks

    return by_geometry
