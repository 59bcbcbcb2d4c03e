"""How long fits took on this machine: each finished fit is recorded (preset, frames, seconds, device), and
the Fit tab quotes the latest one for the preset picked, so the estimate a user reads was measured here, not
on the machine the documentation was written on. Kept beside the caches (``fit_times.json``), written
atomically; a damaged file is ignored, never fatal.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ..places import cache_root
from ..storage import append_journal, read_journal


def times_file() -> Path:
    return cache_root() / "fit_times.json"


def record_fit(preset: str, frames: int, seconds: float, device: str, *, path: Path | None = None) -> None:
    """Add a finished fit (the latest 50 are kept). A cache hit is not a measurement: record real work only."""
    today = dt.date.today().isoformat()
    row = {"preset": preset, "frames": int(frames), "seconds": float(seconds), "device": device, "date": today}
    append_journal(path or times_file(), row)


def measured_hint(preset: str, device: str, *, path: Path | None = None) -> str | None:
    """'measured here: ...' for the latest fit of ``preset`` on ``device`` (None when there was none)."""
    rows = [r for r in read_journal(path or times_file()) if r.get("preset") == preset and r.get("device") == device]
    if not rows:
        return None
    last = rows[-1]
    minutes = float(last.get("seconds", 0)) / 60
    return f"measured here: {last.get('frames')} frames in {minutes:.1f} min ({device}, {last.get('date')})"
