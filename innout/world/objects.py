"""OOD objects as data: a small JSON spec per object, no code.

An object is ``solid`` (its own geometry, composited with the head by density) or ``paint`` (no geometry: it
recolours the skin inside its parts). Spec fields (see ``innout/world/objects/*.json`` for the five built-in
ones, and docs/world.md):

- ``name``; ``kind``: "solid" or "paint"; ``colour``: [r, g, b] in [0, 1];
- ``parts``: primitives in world coordinates (the nominal head: docs/conventions.md), each one of
  ``{"shape": "sphere", "centre": [x, y, z], "radius": r}``, ``{"shape": "ellipsoid", "centre", "radii"}``,
  ``{"shape": "box", "centre", "half_size"}``, ``{"shape": "capsule", "a", "b", "radius"}``,
  ``{"shape": "shell", "centre", "radii", "thickness"}``, each with an optional ``"clip"``: a list of
  ``{"axis": "x"|"y"|"z", "below": v}`` or ``{"axis": ..., "above": v}`` half-spaces it is cut to;
- ``pattern`` (optional): ``{"type": "stripes", "axis": "x", "period": p, "colours": [[r, g, b], ...]}``;
- ``motion`` (optional): ``{"keyframes": [[t, [dx, dy, dz]], ...]}``, a translation over the clip's time
  t in [0, 1], linear between keyframes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UserError
from . import shapes

BUILTIN_DIR = Path(__file__).resolve().parent / "objects"
AXES = {"x": 0, "y": 1, "z": 2}
SHAPE_FIELDS = {
    "sphere": ("centre", "radius"),
    "ellipsoid": ("centre", "radii"),
    "box": ("centre", "half_size"),
    "capsule": ("a", "b", "radius"),
    "shell": ("centre", "radii", "thickness"),
}


class ObjectSpecError(UserError, ValueError):
    """An object spec that cannot be used; the message names the field."""


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    kind: str
    colour: tuple[float, float, float]
    parts: tuple[dict, ...]
    pattern: dict | None = None
    motion: tuple[tuple[float, tuple[float, float, float]], ...] = ()

    @classmethod
    def from_dict(cls, data: dict, source: str = "spec") -> ObjectSpec:
        def fail(message: str) -> ObjectSpecError:
            return ObjectSpecError(f"{source}: {message}")

        try:
            kind = data.get("kind", "solid")
            if kind not in ("solid", "paint"):
                raise fail(f"kind must be 'solid' or 'paint', got {kind!r}")
            colour = tuple(float(c) for c in data["colour"])
            parts = tuple(data["parts"])
            if len(colour) != 3 or not parts:
                raise fail("needs a colour [r, g, b] and at least one part")
            for part in parts:
                shape = part.get("shape")
                if shape not in SHAPE_FIELDS:
                    raise fail(f"unknown shape {shape!r} (known: {', '.join(SHAPE_FIELDS)})")
                missing = [f for f in SHAPE_FIELDS[shape] if f not in part]
                if missing:
                    raise fail(f"a {shape} needs {', '.join(missing)}")
                for clip in part.get("clip", []):
                    if clip.get("axis") not in AXES or not ({"below", "above"} & set(clip)):
                        raise fail(f"a clip needs an axis (x, y, z) and 'below' or 'above': {clip}")
            keyframes = (data.get("motion") or {}).get("keyframes", [])
            motion = tuple((float(t), tuple(float(v) for v in d)) for t, d in keyframes)
            return cls(str(data["name"]), kind, colour, parts, data.get("pattern"), motion)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ObjectSpecError):
                raise
            raise fail(f"malformed ({type(exc).__name__}: {exc})") from exc

    def at(self, time: float) -> PlacedObject:
        """This object at clip time ``time`` in [0, 1]."""
        return PlacedObject(self, self.offset(time))

    def offset(self, time: float) -> tuple[float, float, float]:
        if not self.motion:
            return (0.0, 0.0, 0.0)
        frames = sorted(self.motion)
        if time <= frames[0][0]:
            return frames[0][1]
        for (t0, d0), (t1, d1) in zip(frames, frames[1:], strict=False):
            if time <= t1:
                u = (time - t0) / max(t1 - t0, 1e-8)
                return tuple(a + (b - a) * u for a, b in zip(d0, d1, strict=True))
        return frames[-1][1]


def load_object(name_or_path: str | os.PathLike) -> ObjectSpec:
    """A built-in object by name (``BUILTIN_OBJECTS``) or a spec file."""
    path = Path(name_or_path)
    if not path.suffix and (BUILTIN_DIR / f"{name_or_path}.json").is_file():
        path = BUILTIN_DIR / f"{name_or_path}.json"
    if not path.is_file():
        raise ObjectSpecError(f"no object spec {name_or_path} (built-in: {', '.join(builtin_objects())})")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ObjectSpecError(f"{path}: not a JSON object spec ({exc})") from exc
    return ObjectSpec.from_dict(data, str(path))


def builtin_objects() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.json"))


class PlacedObject:
    """An object at one time: its signed distance, and its density/colour (solid) or coverage/colour
    (paint) at points."""

    def __init__(self, spec: ObjectSpec, offset: tuple[float, float, float]) -> None:
        self.spec, self.offset = spec, offset
        self.paint = spec.kind == "paint"

    def sdf(self, points: torch.Tensor) -> torch.Tensor:
        """Signed distance in world units; the spec's coordinates are the nominal head's (``WORLD_SCALE``)."""
        s = shapes.WORLD_SCALE
        p = points / s - points.new_tensor(self.offset)
        out = None
        for part in self.spec.parts:
            shape = part["shape"]
            args = [part[f] for f in SHAPE_FIELDS[shape]]
            d = getattr(shapes, shape)(p, *args)
            for clip in part.get("clip", []):
                axis = AXES[clip["axis"]]
                d = shapes.clip_below(d, p, axis, clip["below"]) if "below" in clip else d
                d = shapes.clip_above(d, p, axis, clip["above"]) if "above" in clip else d
            out = d if out is None else torch.minimum(out, d)
        return out * s

    def colour_at(self, points: torch.Tensor) -> torch.Tensor:
        points = points / shapes.WORLD_SCALE
        base = points.new_tensor(self.spec.colour).expand(len(points), 3)
        pattern = self.spec.pattern
        if not pattern:
            return base
        colours = points.new_tensor(pattern["colours"])
        coordinate = points[:, AXES[pattern.get("axis", "x")]] - self.offset[AXES[pattern.get("axis", "x")]]
        index = torch.floor(coordinate / float(pattern["period"])).long() % len(colours)
        return colours[index]

    def solid_at(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return shapes.density(self.sdf(points)), self.colour_at(points)

    def paint_at(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(coverage in [0, 1], colour) of the paint at points on the skin."""
        t = (0.5 - self.sdf(points) / 0.008).clamp(0, 1)  # a 4 mm smoothstep edge, nothing beyond it
        return t * t * (3 - 2 * t), self.colour_at(points)
