"""Procedural heads: an analytic 3D head family with named attributes, in EG3D's world.

EG3D's conventions (docs/conventions.md): the face at the origin looking towards +z, y up, inside the
[-0.5, 0.5]^3 box; cameras on the radius-2.7 sphere around (0, 0, 0.2). A head is built from signed
distances (``innout.world.shapes``): skull, jaw, nose, ears and neck joined smoothly; eyeballs with an iris
and a pupil; brows; a hair cap; a mouth whose corners lift with ``smile`` and which opens with
``mouth_open`` (a cavity in the face). Colour comes from the part nearest to the point, then from regions
painted on the skin (lips, creases, the hairline).

Every attribute lies in [0, 1] except ``smile`` in [-1, 1] (frown .. smile); ``ATTRIBUTES`` lists them with
their ranges.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from . import shapes

ATTRIBUTES: dict[str, tuple[float, float]] = {
    "smile": (-1.0, 1.0),  # mouth corners down .. up, and a wider mouth
    "mouth_open": (0.0, 1.0),  # closed .. open (a dark cavity between the lips)
    "age": (0.0, 1.0),  # young .. old: grey hair, duller skin, forehead and cheek creases
    "skin_tone": (0.0, 1.0),  # light .. dark
    "hair_colour": (0.0, 1.0),  # black -> brown -> blond -> auburn
    "head_shape": (0.0, 1.0),  # narrow .. wide
    "eye_size": (0.0, 1.0),  # small .. large eyes
}

SKIN_LIGHT, SKIN_DARK = (0.93, 0.76, 0.65), (0.42, 0.28, 0.2)
HAIR_PALETTE = ((0.07, 0.06, 0.05), (0.36, 0.21, 0.1), (0.86, 0.72, 0.42), (0.58, 0.22, 0.09))
GREY_HAIR = (0.78, 0.78, 0.78)
LIPS, MOUTH_INSIDE = (0.72, 0.32, 0.33), (0.22, 0.04, 0.05)
SCLERA, PUPIL = (0.95, 0.95, 0.93), (0.03, 0.03, 0.03)
IRIS_BROWN, IRIS_BLUE = (0.34, 0.2, 0.09), (0.25, 0.45, 0.7)

MOUTH_Y = -0.12  # the mouth's centre height
EYE_Y, EYE_X, EYE_Z = 0.06, 0.062, 0.155  # eyeball centres (+- x)


@dataclass(frozen=True)
class HeadAttributes:
    smile: float = 0.0
    mouth_open: float = 0.0
    age: float = 0.3
    skin_tone: float = 0.3
    hair_colour: float = 0.3
    head_shape: float = 0.5
    eye_size: float = 0.5

    def __post_init__(self) -> None:
        for name, (lo, hi) in ATTRIBUTES.items():
            value = getattr(self, name)
            if not lo - 1e-6 <= value <= hi + 1e-6:
                raise ValueError(f"head attribute {name}={value} is outside [{lo}, {hi}]")

    def replace(self, **changes: float) -> HeadAttributes:
        return dataclasses.replace(self, **changes)

    def as_tensor(self) -> torch.Tensor:
        return torch.tensor([getattr(self, n) for n in ATTRIBUTES])

    @classmethod
    def from_tensor(cls, values: torch.Tensor) -> HeadAttributes:
        return cls(**{n: float(v) for n, v in zip(ATTRIBUTES, values.tolist(), strict=True)})


def _mix(a, b, t: torch.Tensor | float) -> torch.Tensor:
    a_, b_ = torch.as_tensor(a), torch.as_tensor(b)
    return a_ + (b_ - a_) * torch.as_tensor(t)


def hair_colour(value: float, age: float) -> torch.Tensor:
    """Along the palette black -> brown -> blond -> auburn, turning grey with age."""
    x = min(max(value, 0.0), 1.0) * (len(HAIR_PALETTE) - 1)
    i = min(int(x), len(HAIR_PALETTE) - 2)
    base = _mix(HAIR_PALETTE[i], HAIR_PALETTE[i + 1], x - i)
    return _mix(base, GREY_HAIR, max(0.0, (age - 0.35) / 0.65) ** 1.2)


def skin_colour(tone: float, age: float) -> torch.Tensor:
    skin = _mix(SKIN_LIGHT, SKIN_DARK, tone)
    dull = skin * 0.82 + 0.06
    return _mix(skin, dull, age * 0.7)


class Head:
    """A head as a field: ``head(points [P, 3])`` -> (density [P], colour [P, 3]); ``head.sdf(points)``."""

    def __init__(self, attributes: HeadAttributes) -> None:
        self.a = attributes
        self.width = 0.92 + 0.16 * attributes.head_shape
        self.eye_radius = 0.024 * (0.85 + 0.3 * attributes.eye_size)
        self.mouth_half_width = 0.052 + 0.012 * max(attributes.smile, 0.0)
        self.open_half_height = 0.018 * attributes.mouth_open
        self.skin = skin_colour(attributes.skin_tone, attributes.age)
        self.hair = hair_colour(attributes.hair_colour, attributes.age)
        self.iris = torch.as_tensor(IRIS_BLUE if attributes.hair_colour > 0.55 else IRIS_BROWN)

    # --- geometry -------------------------------------------------------------------------------
    def _mouth_curve(self, p: torch.Tensor) -> torch.Tensor:
        """Height of the mouth line at each point's x: the corners lift with the smile."""
        x = p[:, 0] / self.mouth_half_width
        return MOUTH_Y + 0.022 * self.a.smile * x.square().clamp_max(1.5)

    def _mouth_cavity(self, p: torch.Tensor) -> torch.Tensor:
        dy = (p[:, 1] - self._mouth_curve(p)).abs() - self.open_half_height
        dx = p[:, 0].abs() - 0.85 * self.mouth_half_width
        dz = 0.125 - p[:, 2]  # from the face's surface down to a back wall at z = 0.125
        return torch.stack([dx, dy, dz], dim=-1).max(dim=-1).values

    def parts(self, p: torch.Tensor) -> dict[str, torch.Tensor]:
        """Signed distance of every part [P]."""
        w = self.width
        skull = shapes.ellipsoid(p, (0, 0.06, -0.03), (0.185 * w, 0.235, 0.215))
        jaw = shapes.ellipsoid(p, (0, -0.08, 0.02), (0.145 * w, 0.19, 0.175))
        nose = torch.minimum(
            shapes.capsule(p, (0, 0.05, 0.185), (0, -0.035, 0.232), 0.02),
            shapes.sphere(p, (0, -0.045, 0.222), 0.027),
        )
        ears = torch.minimum(
            shapes.ellipsoid(p, (0.185 * w, 0.02, -0.03), (0.022, 0.05, 0.035)),
            shapes.ellipsoid(p, (-0.185 * w, 0.02, -0.03), (0.022, 0.05, 0.035)),
        )
        neck = shapes.capsule(p, (0, -0.2, -0.05), (0, -0.6, -0.06), 0.085)
        skin = shapes.smooth_union(shapes.smooth_union(skull, jaw, 0.04), nose, 0.015)
        skin = shapes.smooth_union(torch.minimum(skin, ears), neck, 0.03)
        if self.a.mouth_open > 0:
            skin = torch.maximum(skin, -self._mouth_cavity(p))
        r = self.eye_radius
        eyes = torch.minimum(
            shapes.sphere(p, (EYE_X, EYE_Y, EYE_Z), r), shapes.sphere(p, (-EYE_X, EYE_Y, EYE_Z), r)
        )
        brows = torch.minimum(
            shapes.capsule(p, (0.028, EYE_Y + 0.047, 0.19), (0.1, EYE_Y + 0.042, 0.165), 0.008),
            shapes.capsule(p, (-0.028, EYE_Y + 0.047, 0.19), (-0.1, EYE_Y + 0.042, 0.165), 0.008),
        )
        hair = shapes.ellipsoid(p, (0, 0.065, -0.035), (0.185 * w + 0.02, 0.255, 0.235))
        hairline = torch.where(p[:, 2] > 0.06, 0.145, 0.145 - (0.06 - p[:, 2]) * 1.6).clamp_min(-0.16)
        hair = torch.maximum(hair, hairline - p[:, 1])
        return {"skin": skin, "eyes": eyes, "brows": brows, "hair": hair}

    def sdf(self, p: torch.Tensor) -> torch.Tensor:
        """Signed distance of the whole head, in world units (``WORLD_SCALE`` applied)."""
        s = shapes.WORLD_SCALE
        return torch.stack(list(self.parts(p / s).values())).min(dim=0).values * s

    # --- colour ---------------------------------------------------------------------------------
    def _skin_paint(self, p: torch.Tensor) -> torch.Tensor:
        colour = self.skin.to(p).expand(len(p), 3).clone()
        x, y, z = p.unbind(-1)
        # lips: a band along the mouth line, as wide as the mouth
        band = (y - self._mouth_curve(p)).abs() - (0.011 + self.open_half_height)
        lips = torch.sigmoid(-band / 0.003) * torch.sigmoid((self.mouth_half_width - x.abs()) / 0.004)
        lips = lips * (z > 0.12)
        colour = torch.lerp(colour, torch.as_tensor(LIPS).to(p), lips[:, None])
        inside = (self._mouth_cavity(p) < 0.004) & (self.a.mouth_open > 0)
        colour[inside] = torch.as_tensor(MOUTH_INSIDE).to(p)
        # age: forehead lines and cheek folds, darker with age
        if self.a.age > 0:
            forehead = (y > EYE_Y + 0.06) & (y < 0.2) & (z > 0.1) & (x.abs() < 0.09)
            lines = forehead & (torch.sin(y * 160) > 0.75)
            fold_x = self.mouth_half_width + 0.012 + (y - MOUTH_Y) * 0.35
            folds = (y > MOUTH_Y - 0.01) & (y < -0.03) & ((x.abs() - fold_x).abs() < 0.0035) & (z > 0.1)
            dark = (lines | folds).float() * 0.4 * self.a.age
            colour = colour * (1 - dark[:, None])
        return colour

    def _eye_paint(self, p: torch.Tensor) -> torch.Tensor:
        side = torch.where(p[:, 0] > 0, EYE_X, -EYE_X)
        centre = torch.stack([side, torch.full_like(side, EYE_Y), torch.full_like(side, EYE_Z)], dim=-1)
        d = p - centre
        cos = d[:, 2] / d.norm(dim=-1).clamp_min(1e-8)  # angle from the gaze direction (+z)
        colour = torch.as_tensor(SCLERA).to(p).expand(len(p), 3).clone()
        colour[cos > 0.9] = self.iris.to(p)
        colour[cos > 0.985] = torch.as_tensor(PUPIL).to(p)
        return colour

    def __call__(self, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(density [P], colour [P, 3] in [0, 1], on the skin [P] bool) at world points [P, 3]."""
        s = shapes.WORLD_SCALE
        p = p / s  # the head is designed at nominal size
        parts = self.parts(p)
        stacked = torch.stack(list(parts.values()))
        nearest = stacked.argmin(dim=0)
        colour = self._skin_paint(p)
        colour[nearest == 1] = self._eye_paint(p[nearest == 1])
        colour[nearest == 2] = (self.hair * 0.8).to(p)
        colour[nearest == 3] = self.hair.to(p)
        return shapes.density(stacked.min(dim=0).values * s), colour, nearest == 0
