"""A scene's latents and what moves them: edit directions, StyleCLIP mappers and temporal smoothing.

Edits move the in-distribution latents only (linear directions, then mappers); the OOD field is never
touched, so an edit leaves the pixels the OOD object covers as they are.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..edit.directions import Direction, apply_directions, latent_space_digest
from ..edit.mapper import LevelsMapper
from ..edit.smoothing import smooth
from ..errors import UserError
from ..numbers import Range

EDIT_STRENGTH = Range(-50, 50)
"""Strengths an edit may be given. A learned direction's slider spans -3..3 (standard deviations of the
latents) and a mapper's 0..2; far beyond that the latents leave the face space and, at NaN or infinity,
the render is black. Within the bound extrapolation is allowed; beyond it, or not finite, it is refused."""

DIRECTION_SCALE = Range(0, 1e3, lo_open=True)
"""A direction's scale: the spread of the latents along it (learned) or 1 (imported)."""


class RenderError(UserError, ValueError):
    """A render request the scene cannot serve (frame out of range, unknown edit, bad option)."""


def check_strengths(edits: dict[str, float] | None) -> dict[str, float]:
    """``edits`` as {name: float}, each strength finite and within ``EDIT_STRENGTH``; else ``RenderError``
    naming the edit and its value."""
    if edits is None:
        return {}
    if not isinstance(edits, dict):
        raise RenderError(f"edits must be a mapping of edit names to strengths, got {type(edits).__name__}")
    checked = {}
    for name, strength in edits.items():
        if not isinstance(name, str) or not name:
            raise RenderError(f"an edit's name must be a non-empty text, got {name!r}")
        checked[name] = EDIT_STRENGTH.check(strength, f"the strength of edit {name!r}", RenderError)
    return checked


def check_finite(tensor: torch.Tensor | None, what: str) -> None:
    """Refuse a tensor with NaN or infinite entries: it would render as a black image."""
    if tensor is not None and not bool(torch.isfinite(tensor).all()):
        raise RenderError(f"{what} hold NaN or infinite numbers; a render of them would be black")


def same_direction(a: Direction, b: Direction) -> bool:
    """Whether two directions make the same edit (the same numbers, scale, layers and range)."""

    def same(x: torch.Tensor | None, y: torch.Tensor | None) -> bool:
        return (x is None and y is None) or (x is not None and y is not None and x.shape == y.shape
                                             and torch.equal(x.cpu(), y.cpu()))  # fmt: skip

    return (a is b) or (same(a.normal, b.normal) and same(a.offsets, b.offsets) and a.scale == b.scale
                        and a.layers == b.layers and tuple(a.value_range) == tuple(b.value_range))  # fmt: skip


class SceneEdits:
    """The per-frame latents ``ws`` [F, 14, 512] (and OOD codes), the edits loaded for them, and their
    smoothed versions (computed once per smoothing)."""

    def __init__(self, generator: torch.nn.Module, ws: torch.Tensor, ood_codes: torch.Tensor | None) -> None:
        check_finite(ws, "the scene's latents (ws)")
        check_finite(ood_codes, "the scene's OOD codes")
        self.ws, self.ood_codes = ws, ood_codes
        self.latent_space = latent_space_digest(generator)
        self.directions: dict[str, Direction] = {}
        self.mappers: dict[str, LevelsMapper] = {}
        self._smoothed: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}

    @property
    def names(self) -> list[str]:
        return sorted([*self.directions, *self.mappers])

    def add_direction(self, direction: Direction) -> bool:
        """Make a direction available; it must belong to this scene's latent space. True when it replaced a
        different edit of the same name (whatever was computed with the old one is then stale)."""
        direction.check_space(self.latent_space)
        check_direction_numbers(direction, self.ws.shape[1])
        old = self.directions.get(direction.name)
        replaced = (old is not None and not same_direction(old, direction)) or direction.name in self.mappers
        self.mappers.pop(direction.name, None)
        self.directions[direction.name] = direction
        return replaced

    def add_mapper(self, mapper: LevelsMapper) -> bool:
        """Make a StyleCLIP mapper available; its weights must be finite numbers. True when it replaced an edit
        of the same name."""
        for name, tensor in mapper.state_dict().items():
            check_finite(tensor, f"the weights of mapper {mapper.name!r} ({name})")
        replaced = mapper.name in self.mappers or mapper.name in self.directions
        self.directions.pop(mapper.name, None)
        self.mappers[mapper.name] = mapper.to(self.ws.device)
        return replaced

    def load_directions(self, paths: list[str | os.PathLike]) -> tuple[list[str], list[str]]:
        """Add the directions found in files/folders that belong to this latent space; returns a note for
        each one left out (learned for another generator) and the names whose edit was replaced by a different
        one."""
        from ..edit.directions import DirectionMismatchError, load_directions

        skipped, replaced = [], []
        for direction in load_directions([p for p in paths if Path(p).exists()]).values():
            try:
                if self.add_direction(direction):
                    replaced.append(direction.name)
            except DirectionMismatchError as exc:
                skipped.append(str(exc))
        return skipped, replaced

    def check(self, edits: dict[str, float] | None) -> None:
        """Raise ``RenderError`` naming the edits that have no direction or mapper here, or whose strength
        is not a finite number within ``EDIT_STRENGTH``."""
        check_strengths(edits)
        unknown = [k for k in edits or {} if k not in self.directions and k not in self.mappers]
        if unknown:
            known = ", ".join(self.names) or (
                "none loaded (learn one with `python -m innout directions learn`, or give a direction file or folder "
                "with --directions)"
            )
            raise RenderError(f"unknown edit(s) {', '.join(unknown)}; available: {known}")

    def sequence(self, smoothing: str | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(ws, OOD codes) of every frame under ``smoothing`` (None, 'causal', 'zero-lag', ...)."""
        key = smoothing or "none"
        if key not in self._smoothed:
            codes = None if self.ood_codes is None else smooth(self.ood_codes, key)
            self._smoothed[key] = (smooth(self.ws, key), codes)
        return self._smoothed[key]

    def frame_ws(
        self, frame: int, edits: dict[str, float] | None = None, *, smoothing: str | None = None,
        conditional: tuple[str, ...] | list[str] = (),
    ) -> torch.Tensor:  # fmt: skip
        """ws [1, 14, 512] of a frame after edits and smoothing. As the official code, mapper edits are made
        on every frame's own latents and the edited sequence is smoothed; linear directions add the same offset
        to every frame, which smoothing (weights summing to 1) leaves as it is, so they are added last."""
        self.check(edits)
        edits = {k: float(v) for k, v in (edits or {}).items() if float(v) != 0}
        mapped = {k: v for k, v in edits.items() if k in self.mappers}
        if mapped and smoothing not in (None, "none"):
            sequence = self.ws
            for name, strength in mapped.items():
                sequence = self.mappers[name].edit(sequence, strength)
            ws = smooth(sequence, smoothing)[frame][None]
        else:
            ws = self.sequence(smoothing)[0][frame][None]
            for name, strength in mapped.items():
                ws = self.mappers[name].edit(ws, strength)
        linear = {k: v for k, v in edits.items() if k in self.directions}
        if linear:
            ws = apply_directions(ws, linear, self.directions, conditional=list(conditional) or None)
        return ws

    def range(self, name: str) -> tuple[float, float]:
        """The slider range of an edit (a direction's own; mappers: 0 to 2, the official strengths)."""
        self.check({name: 1.0})
        if name in self.directions:
            lo, hi = self.directions[name].value_range
            return float(lo), float(hi)
        return 0.0, 2.0

    def knots(self, name: str, count: int) -> list[float]:
        """``count`` strengths evenly across the edit's range, and 0: where drag previews are exact."""
        lo, hi = self.range(name)
        return sorted({round(float(v), 6) for v in np.linspace(lo, hi, count)} | {0.0})


def check_direction_numbers(direction: Direction, num_ws: int) -> None:
    """A direction's numbers as rendering needs them: a finite normal, a positive finite scale, a finite
    slider range (low < high) and layers among the scene's ``num_ws`` latents."""
    of = f"of direction {direction.name!r}"
    check_finite(torch.as_tensor(direction.normal), f"the normal {of}")
    DIRECTION_SCALE.check(direction.scale, f"the scale {of}", RenderError)
    bounds = [EDIT_STRENGTH.check(v, f"the slider range {of}", RenderError) for v in direction.value_range]
    if len(bounds) != 2 or not bounds[0] < bounds[1]:
        raise RenderError(f"the slider range {of} must go from low to high, got {direction.value_range}")
    layer = Range(0, num_ws - 1, integer=True)
    for index in direction.layers or []:
        layer.check(index, f"a layer {of}", RenderError)
    if direction.offsets is not None:
        check_finite(direction.offsets, f"the W+ offsets {of}")
        if len(direction.offsets) != num_ws:
            raise RenderError(f"the W+ offsets {of} are for {len(direction.offsets)} ws; this scene has {num_ws}")
