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


class RenderError(UserError, ValueError):
    """A render request the scene cannot serve (frame out of range, unknown edit, bad option)."""


class SceneEdits:
    """The per-frame latents ``ws`` [F, 14, 512] (and OOD codes), the edits loaded for them, and their
    smoothed versions (computed once per smoothing)."""

    def __init__(self, generator: torch.nn.Module, ws: torch.Tensor, ood_codes: torch.Tensor | None) -> None:
        self.ws, self.ood_codes = ws, ood_codes
        self.latent_space = latent_space_digest(generator)
        self.directions: dict[str, Direction] = {}
        self.mappers: dict[str, LevelsMapper] = {}
        self._smoothed: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}

    @property
    def names(self) -> list[str]:
        return sorted([*self.directions, *self.mappers])

    def add_direction(self, direction: Direction) -> None:
        """Make a direction available; it must belong to this scene's latent space."""
        direction.check_space(self.latent_space)
        self.directions[direction.name] = direction

    def add_mapper(self, mapper: LevelsMapper) -> None:
        self.mappers[mapper.name] = mapper.to(self.ws.device)

    def load_directions(self, paths: list[str | os.PathLike]) -> list[str]:
        """Add the directions found in files/folders that belong to this latent space; returns a note for
        each one left out (learned for another generator)."""
        from ..edit.directions import DirectionMismatchError, load_directions

        skipped = []
        for direction in load_directions([p for p in paths if Path(p).exists()]).values():
            try:
                self.add_direction(direction)
            except DirectionMismatchError as exc:
                skipped.append(str(exc))
        return skipped

    def check(self, edits: dict[str, float] | None) -> None:
        """Raise ``RenderError`` naming the edits that have no direction or mapper here."""
        unknown = [k for k in edits or {} if k not in self.directions and k not in self.mappers]
        if unknown:
            known = ", ".join(self.names) or "none loaded (learn one with `python -m innout directions learn`)"
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
