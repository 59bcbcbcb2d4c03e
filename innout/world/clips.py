"""Clips of the world: a head turning and changing expression, with or without an OOD object, and the ground
truth a benchmark needs (the clean clip, the object's mask, the cameras, every frame's attributes)."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..eg3d.cameras import FRONTAL_PITCH, FRONTAL_YAW, orbit_label
from .heads import Head, HeadAttributes
from .objects import ObjectSpec
from .render import render_world


@dataclass
class ClipPlan:
    """What a clip shows: a head (``base``), a yaw sweep of +-``yaw_deg`` with a pitch sway of +-``pitch_deg``,
    and the smile going from ``smile[0]`` to ``smile[1]`` (the mouth opening a little in between)."""

    base: HeadAttributes
    frames: int = 8
    yaw_deg: float = 25.0
    pitch_deg: float = 6.0
    smile: tuple[float, float] = (0.0, 0.8)

    def cameras(self, yaw_offset_deg: float = 0.0) -> torch.Tensor:
        """Each frame's camera [F, 25]; ``yaw_offset_deg`` turns every one further (held-out views)."""
        labels = []
        for t in self.times():
            yaw = math.radians(self.yaw_deg) * (2 * t - 1) + math.radians(yaw_offset_deg)
            pitch = math.radians(self.pitch_deg) * math.sin(2 * math.pi * t)
            labels.append(orbit_label(FRONTAL_YAW + yaw, FRONTAL_PITCH + pitch))
        return torch.cat(labels)

    def times(self) -> list[float]:
        return [i / max(1, self.frames - 1) for i in range(self.frames)]

    def attributes(self) -> list[HeadAttributes]:
        lo, hi = self.smile
        out = []
        for t in self.times():
            mouth = min(1.0, self.base.mouth_open + 0.4 * math.sin(math.pi * t))  # it opens a little mid-clip
            out.append(self.base.replace(smile=lo + (hi - lo) * t, mouth_open=mouth))
        return out


@dataclass
class WorldClip:
    composite: torch.Tensor  # [F, 3, R, R] in [-1, 1]: the head with the object
    clean: torch.Tensor  # [F, 3, R, R]: the same frames without the object
    object_mask: torch.Tensor  # [F, 1, R, R] bool: where the object gives more than half the colour
    cameras: torch.Tensor  # [F, 25]
    attributes: list[HeadAttributes]
    object_name: str | None
    plan: ClipPlan

    def __len__(self) -> int:
        return len(self.cameras)

    def write(self, folder: str | os.PathLike) -> Path:
        """The clip as EG3D's dataset layout: ``frames/img%08d.png`` and ``dataset.json`` with the labels, plus
        ``world.json`` (the attributes and the object), so the app and the CLI can take it as prepared input."""
        from ..images import save_image

        folder = Path(folder)
        (folder / "frames").mkdir(parents=True, exist_ok=True)
        labels = []
        for i, (image, camera) in enumerate(zip(self.composite, self.cameras, strict=True)):
            name = f"img{i:08d}.png"
            save_image(image, folder / "frames" / name)
            labels.append([name, [float(v) for v in camera]])
        (folder / "dataset.json").write_text(json.dumps({"labels": labels}))
        (folder / "world.json").write_text(json.dumps({
            "object": self.object_name, "attributes": [a.__dict__ for a in self.attributes],
        }, indent=1))  # fmt: skip
        return folder


def render_clip(
    plan: ClipPlan, obj: ObjectSpec | None, resolution: int, *, samples: int = 192, cameras: torch.Tensor | None = None
) -> WorldClip:
    """Render ``plan`` with ``obj`` (moving along its motion over the clip), at its own cameras or at
    ``cameras`` [F, 25] (held-out views of the same frames)."""
    cams = plan.cameras() if cameras is None else cameras
    composite, clean, masks = [], [], []
    for t, attrs, camera in zip(plan.times(), plan.attributes(), cams, strict=True):
        head = Head(attrs)
        placed = [obj.at(t)] if obj is not None else []
        with_object = render_world(head, placed, camera[None], resolution, samples=samples)
        composite.append(with_object.image)
        masks.append(with_object.object_mask)
        alone = render_world(head, [], camera[None], resolution, samples=samples) if placed else with_object
        clean.append(alone.image)
    return WorldClip(
        composite=torch.cat(composite),
        clean=torch.cat(clean),
        object_mask=torch.cat(masks),
        cameras=cams,
        attributes=plan.attributes(),
        object_name=obj.name if obj is not None else None,
        plan=plan,
    )
