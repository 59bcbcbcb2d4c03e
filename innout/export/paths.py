"""Camera paths for novel-view videos, as (yaw, pitch) offsets from frontal in radians."""

from __future__ import annotations

import math

CAMERA_PATHS = ("orbit", "yaw-sweep")


def camera_path(kind: str, n_views: int, *, yaw: float = 0.35, pitch: float = 0.15) -> list[tuple[float, float]]:
    """``orbit``: one loop of an ellipse (yaw amplitude ``yaw``, pitch amplitude ``pitch``), as EG3D's
    videos; ``yaw-sweep``: left to right and back at the frame's level, a smooth cosine."""
    if n_views < 1:
        raise ValueError("a camera path needs at least one view")
    t = [i / n_views for i in range(n_views)]
    if kind == "orbit":
        return [(yaw * math.sin(2 * math.pi * s), pitch * math.cos(2 * math.pi * s)) for s in t]
    if kind == "yaw-sweep":
        return [(-yaw * math.cos(2 * math.pi * s), 0.0) for s in t]
    raise ValueError(f"camera path must be one of {CAMERA_PATHS}, got {kind!r}")
