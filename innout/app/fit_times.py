"""How long fits take on this machine, and how long the next one will: each finished fit is recorded (preset,
frames, effort, seconds, device, and the seconds per step of each stage that ran), and the Fit tab's estimate is
those per-step times x the steps the fit about to run will take (its frames, effort and preset: ``planned_steps``).
So the figure a user reads was measured here, on this device, and scales with what they chose. Kept beside the
caches (``fit_times.json``), written atomically; a damaged file is ignored, never fatal.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

from ..fit import FitConfig, planned_steps
from ..places import cache_root
from ..storage import append_journal, read_journal
from .progress import duration


def times_file() -> Path:
    return cache_root() / "fit_times.json"


class StagePace:
    """How long each stage of a fit took, from its progress reports: a stage starts when the one before it last
    reported (or the fit started) and ends at its own last report; some stages report only their end (the init,
    the OOD head start), so their time is the span, not a pace between reports."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.latest = clock()
        self.spans: dict[str, list[float]] = {}  # stage -> [start, end]
        self.ran: set[str] = set()  # stages that did work (a cached stage reports 1 of 1 and nothing else)

    def report(self, stage: str, done: int, total: int) -> None:
        now = self.clock()
        self.spans.setdefault(stage, [self.latest, now])[1] = now
        self.latest = now
        if total != 1 or done != 1:
            self.ran.add(stage)

    def seconds_per_step(self, steps: dict[str, float]) -> dict[str, float]:
        """Each stage's seconds over its ``steps`` (``planned_steps`` of the fit that ran); a stage read from the
        cache gives no pace."""
        return {
            stage: (end - start) / steps[stage]
            for stage, (start, end) in self.spans.items()
            if stage in self.ran and steps.get(stage, 0) > 0
        }


def record_fit(
    preset: str, frames: int, seconds: float, device: str, *, effort: float = 1.0,
    step_seconds: dict[str, float] | None = None, path: Path | None = None,
) -> None:  # fmt: skip
    """Add a finished fit (the latest 50 are kept). A cache hit is not a measurement: record real work only."""
    today = dt.date.today().isoformat()
    row = {"preset": preset, "frames": int(frames), "effort": float(effort), "seconds": float(seconds),
           "device": device, "date": today, "step_seconds": dict(step_seconds or {})}  # fmt: skip
    append_journal(path or times_file(), row)


def _rows(preset: str, device: str, path: Path | None) -> list[dict]:
    return [r for r in read_journal(path or times_file()) if r.get("preset") == preset and r.get("device") == device]


def estimate_seconds(
    preset: str, config: FitConfig, frames: int, device: str, *, path: Path | None = None
) -> tuple[float, dict] | None:
    """Seconds a fit with ``config`` on ``frames`` frames will take here: for every stage it runs, its steps x the
    seconds per step measured in the latest fit of ``preset`` on ``device`` that ran that stage. None when some
    stage it runs has never been timed here (no guess is made for it). Also returns the row it came from."""
    steps = {s: n for s, n in planned_steps(config, frames).items() if n > 0 and s != "superres_cache"}
    rows = _rows(preset, device, path)
    pace: dict[str, float] = {}
    for row in rows:  # the latest measurement of each stage wins
        for stage, seconds in (row.get("step_seconds") or {}).items():
            if isinstance(seconds, int | float) and seconds > 0:
                pace[stage] = float(seconds)
    if not rows or any(stage not in pace for stage in steps):
        return None
    return sum(n * pace[stage] for stage, n in steps.items()), rows[-1]


def estimate_text(preset: str, config: FitConfig, frames: int, device: str, *, path: Path | None = None) -> str | None:
    found = estimate_seconds(preset, config, frames, device, path=path)
    if found is None:
        return None
    seconds, row = found
    return (f"about {duration(seconds)} here for {frames} frames (the seconds per step of each stage, measured in "
            f"a fit on {row.get('date')}, times this fit's steps)")  # fmt: skip


def measured_hint(preset: str, device: str, *, path: Path | None = None) -> str | None:
    """'measured here: ...' for the latest fit of ``preset`` on ``device`` (None when there was none)."""
    rows = _rows(preset, device, path)
    if not rows:
        return None
    last = rows[-1]
    minutes = float(last.get("seconds", 0)) / 60
    effort = float(last.get("effort", 1.0))
    at = f", effort {effort:g}" if effort != 1.0 else ""
    return f"measured here: {last.get('frames')} frames{at} in {minutes:.1f} min ({device}, {last.get('date')})"
