"""EG3D camera labels: 25 numbers = OpenCV cam2world 4x4 (row-major) + normalised intrinsics 3x3.

See docs/conventions.md (cameras).

Camera axes: +x right, +y down, +z forward. World: y up, the face at the origin looking towards +z.
"""

from __future__ import annotations

import math

import torch

from ..errors import UserError
from ..numbers import Range


class CameraError(UserError, ValueError):
    """A camera that cannot be built or used: non-finite angles or positions, a focal length or radius that
    is not positive, a label of the wrong shape or with NaN entries (it would render a black image)."""


FOCAL = Range(0, 100, lo_open=True, unit="normalised focal length; FFHQ's is 4.26")
RADIUS = Range(0, 1e3, lo_open=True, unit="distance of the camera from the origin")


def _check_finite(values: float | torch.Tensor | tuple, what: str) -> None:
    tensor = torch.as_tensor(values, dtype=torch.float64 if not torch.is_tensor(values) else None)
    if not bool(torch.isfinite(tensor).all()):
        shown = tensor.tolist() if tensor.numel() <= 4 else f"a tensor of shape {tuple(tensor.shape)}"
        raise CameraError(f"{what} must be finite, got {shown}")


FFHQ_FOCAL = 4.2647  # 2985.29 px / 700 px: the focal length of every FFHQ data label
FOV_18_837_FOCAL = 4.26339  # FOV_to_intrinsics(18.837), EG3D's generation scripts
INO_FOCAL = 4.4652  # FOV_to_intrinsics(18): the truncated --fov-deg, used by In-N-Out's conditioning
CAMERA_RADIUS = 2.7
CAMERA_PIVOT = (0.0, 0.0, 0.2)
FRONTAL_YAW = math.pi / 2
FRONTAL_PITCH = math.pi / 2


def fov_to_focal(fov_degrees: float) -> float:
    """EG3D's ``FOV_to_intrinsics`` focal length (it uses 3.14159 and 1.414, kept for identical numbers)."""
    return float(1 / (math.tan(fov_degrees * 3.14159 / 360) * 1.414))


def intrinsics(focal: float = FFHQ_FOCAL, principal: float = 0.5) -> torch.Tensor:
    focal = FOCAL.check(focal, "the camera's focal length", CameraError)
    _check_finite(principal, "the camera's principal point")
    return torch.tensor([[focal, 0.0, principal], [0.0, focal, principal], [0.0, 0.0, 1.0]])


def _normalize(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True)


def look_at_cam2world(position: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """cam2world [N, 4, 4] for cameras at ``position`` [N, 3] looking at ``target`` [3] or [N, 3], world up +y."""
    _check_finite(position, "camera positions")
    _check_finite(target, "the camera's target")
    position = position.float()
    if bool(((target.float().expand_as(position) - position).norm(dim=-1) == 0).any()):
        raise CameraError("a camera cannot look at its own position")
    forward = _normalize(target.float().expand_as(position) - position)
    up = torch.tensor([0.0, 1.0, 0.0], device=position.device).expand_as(forward)
    right = -_normalize(torch.linalg.cross(up, forward, dim=-1))
    up = _normalize(torch.linalg.cross(forward, right, dim=-1))
    cam2world = torch.eye(4, device=position.device).repeat(position.shape[0], 1, 1)
    cam2world[:, :3, :3] = torch.stack((right, up, forward), dim=-1)
    cam2world[:, :3, 3] = position
    return cam2world


def orbit_cam2world(
    yaw: float | torch.Tensor,
    pitch: float | torch.Tensor,
    *,
    radius: float = CAMERA_RADIUS,
    lookat: tuple[float, float, float] = CAMERA_PIVOT,
) -> torch.Tensor:
    """EG3D's ``LookAtPoseSampler.sample`` without noise: yaw = pitch = pi/2 is the frontal camera.

    The camera sits on a sphere of ``radius`` around the world origin (not around the pivot) and looks
    at ``lookat``. Larger yaw moves the camera towards +x; smaller pitch moves it up.
    """
    _check_finite(yaw, "camera yaw")
    _check_finite(pitch, "camera pitch")
    RADIUS.check(radius, "the camera's orbit radius", CameraError)
    yaw_t = torch.as_tensor(yaw, dtype=torch.float32).reshape(-1, 1)
    pitch_t = torch.as_tensor(pitch, dtype=torch.float32).reshape(-1, 1)
    yaw_t, pitch_t = torch.broadcast_tensors(yaw_t, pitch_t)
    v = pitch_t.clamp(1e-5, math.pi - 1e-5) / math.pi
    phi = torch.arccos(1 - 2 * v)
    position = torch.cat(
        [
            radius * torch.sin(phi) * torch.cos(math.pi - yaw_t),
            radius * torch.cos(phi),
            radius * torch.sin(phi) * torch.sin(math.pi - yaw_t),
        ],
        dim=1,
    )
    return look_at_cam2world(position, torch.tensor(lookat))


def make_label(cam2world: torch.Tensor, focal: float = FFHQ_FOCAL) -> torch.Tensor:
    """25-d labels [N, 25] from cam2world [N, 4, 4]."""
    _check_finite(cam2world, "camera poses (cam2world)")
    k = intrinsics(focal).to(cam2world.device).reshape(1, 9).expand(cam2world.shape[0], 9)
    return torch.cat([cam2world.reshape(-1, 16), k], dim=1)


def orbit_label(
    yaw: float | torch.Tensor, pitch: float | torch.Tensor, *, focal: float = FFHQ_FOCAL, radius: float = CAMERA_RADIUS
) -> torch.Tensor:
    return make_label(orbit_cam2world(yaw, pitch, radius=radius), focal)


def orbit_angles(c: torch.Tensor, *, lookat: tuple[float, float, float] = CAMERA_PIVOT) -> tuple[float, float]:
    """(yaw, pitch) in radians of a camera label [25] or [1, 25], the inverse of ``orbit_cam2world`` for
    the camera's position (frontal = (pi/2, pi/2)); for any camera, the orbit point nearest to it."""
    position = c.reshape(-1)[:16].reshape(4, 4)[:3, 3].double()
    _check_finite(position, "the camera's position")
    r = float(position.norm())
    if r == 0:
        raise CameraError("a camera at the origin has no orbit angles")
    phi = math.acos(max(-1.0, min(1.0, float(position[1]) / r)))
    pitch = math.pi * (1 - math.cos(phi)) / 2
    return math.pi - math.atan2(float(position[2]), float(position[0])), pitch


def frontal_label(focal: float = FFHQ_FOCAL) -> torch.Tensor:
    """The conditioning camera EG3D's scripts pass to the mapping network."""
    return orbit_label(FRONTAL_YAW, FRONTAL_PITCH, focal=focal)


def split_label(c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[N, 25] -> cam2world [N, 4, 4], intrinsics [N, 3, 3]."""
    if c.ndim != 2 or c.shape[1] != 25:
        raise CameraError(f"camera labels must have shape [N, 25], got {tuple(c.shape)}")
    return c[:, :16].reshape(-1, 4, 4), c[:, 16:25].reshape(-1, 3, 3)


def pixel_centres(resolution: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Image coordinates (v down, u right; each [R, R], 0..1 across the image) of the pixel centres that
    ``camera_rays`` shoots its rays through and ``project_points`` lands on."""
    coords = torch.arange(resolution, dtype=torch.float32, device=device) * (1.0 / resolution) + (0.5 / resolution)
    v, u = torch.meshgrid(coords, coords, indexing="ij")
    return v, u


def camera_rays(c: torch.Tensor, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ray origins and unit directions [N, R*R, 3] through pixel centres, row-major (as EG3D's RaySampler)."""
    cam2world, k = split_label(c.float())
    n = c.shape[0]
    fx, fy, cx, cy, sk = (k[:, 0, 0, None], k[:, 1, 1, None], k[:, 0, 2, None], k[:, 1, 2, None], k[:, 0, 1, None])
    v, u = pixel_centres(resolution, c.device)
    u = u.reshape(1, -1)
    v = v.reshape(1, -1)
    x_cam = (u - cx + cy * sk / fy - sk * v / fy) / fx
    y_cam = (v - cy) / fy
    ones = torch.ones_like(x_cam.expand(n, -1))
    points = torch.stack([x_cam.expand(n, -1), y_cam.expand(n, -1), ones, ones], dim=-1)
    world = torch.bmm(cam2world, points.transpose(1, 2)).transpose(1, 2)[..., :3]
    origins = cam2world[:, None, :3, 3]
    dirs = torch.nn.functional.normalize(world - origins, dim=2)
    return origins.expand_as(dirs), dirs


def project_points(c: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """World points [N, P, 3] seen by cameras [N, 25] -> image coordinates [N, P, 2] (u right, v down, 0..1 across
    the image, pixel i's centre at (i + 0.5) / R): the inverse of ``camera_rays``."""
    cam2world, k = split_label(c.float())
    world2cam = torch.linalg.inv(cam2world)
    in_camera = points.float() @ world2cam[:, :3, :3].transpose(1, 2) + world2cam[:, None, :3, 3]
    on_image = in_camera @ k.transpose(1, 2)
    return on_image[..., :2] / on_image[..., 2:3]
