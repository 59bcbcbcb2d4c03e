"""Least-recently-used caches of face tri-planes: orbiting, toggling removal or re-rendering the same edit
must not run the StyleGAN backbone again."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable

import torch


def plane_key(frame: int, edits: dict[str, float] | None, smoothing: str | None, conditional) -> tuple:
    """What the tri-planes of a frame depend on (zero-strength edits and their order do not count)."""
    return (
        int(frame),
        smoothing or "none",
        tuple(sorted((k, round(float(v), 6)) for k, v in (edits or {}).items() if float(v) != 0)),
        tuple(conditional or ()),
    )


class PlaneCache:
    """At most ``limit`` entries; the least recently used one goes first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._entries: OrderedDict[Hashable, torch.Tensor] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, make: Callable[[], torch.Tensor]) -> torch.Tensor:
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        value = self._entries[key] = make()
        while len(self._entries) > self.limit:
            self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        self._entries.clear()
