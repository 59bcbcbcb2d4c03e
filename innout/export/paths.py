"""Camera paths for novel-view videos, as (yaw, pitch) offsets from frontal in radians."""

from __future__ import annotations

import math

from ..errors import UserError
from ..numbers import Range

CAMERA_PATHS = ("orbit", "yaw-sweep")
VIEWS = Range(1, 1000, integer=True)
YAW_AMPLITUDE = Range(-math.pi, math.pi, unit="radians")
PITCH_AMPLITUDE = Range(-math.pi / 2, math.pi / 2, unit="radians")


class CameraPathError(UserError, ValueError):
    """A camera path that cannot be made: an unknown kind, a view count or amplitude out of range."""


def camera_path(kind: str, n_views: int, *, yaw: float = 0.35, pitch: float = 0.15) -> list[tuple[float, float]]:
    """``orbit``: one loop of an ellipse (yaw amplitude ``yaw``, pitch amplitude ``pitch``), as EG3D's
    videos; ``yaw-sweep``: left to right and back at the frame's level, a smooth cosine."""
    n_views = VIEWS.check(n_views, "the number of views in a camera path", CameraPathError)
    yaw = YAW_AMPLITUDE.check(yaw, "the camera path's yaw amplitude", CameraPathError)
    pitch = PITCH_AMPLITUDE.check(pitch, "the camera path's pitch amplitude", CameraPathError)
    t = [i / n_views for i in range(n_views)]
    if kind == "orbit":
        return [(yaw * math.sin(2 * math.pi * s), pitch * math.cos(2 * math.pi * s)) for s in t]
    if kind == "yaw-sweep":
        return [(-yaw * math.cos(2 * math.pi * s), 0.0) for s in t]
    raise CameraPathError(f"camera path must be one of {CAMERA_PATHS}, got {kind!r}")
