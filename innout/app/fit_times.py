"""How long fits took on this machine: each finished fit is recorded (preset, frames, seconds, device), and
the Fit tab quotes the latest one for the preset picked, so the estimate a user reads was measured here, not
on the machine the documentation was written on. Kept beside the caches (``fit_times.json``), written
atomically; a damaged file is ignored, never fatal.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path

from ..preprocess.pipeline import default_cache_dir


def times_file() -> Path:
    return default_cache_dir().parent / "fit_times.json"


def _read(path: Path) -> list[dict]:
    try:
        rows = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def record_fit(preset: str, frames: int, seconds: float, device: str, *, path: Path | None = None) -> None:
    """Add a finished fit (the latest 50 are kept). A cache hit is not a measurement: record real work only."""
    path = path or times_file()
    rows = _read(path)[-49:]
    today = dt.date.today().isoformat()
    rows.append({"preset": preset, "frames": int(frames), "seconds": float(seconds), "device": device, "date": today})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
            json.dump(rows, f)
        os.replace(f.name, path)
    except OSError:
        return  # a read-only cache: the estimate stays the documented one


def measured_hint(preset: str, device: str, *, path: Path | None = None) -> str | None:
    """'measured here: ...' for the latest fit of ``preset`` on ``device`` (None when there was none)."""
    rows = [r for r in _read(path or times_file()) if r.get("preset") == preset and r.get("device") == device]
    if not rows:
        return None
    last = rows[-1]
    minutes = float(last.get("seconds", 0)) / 60
    return f"measured here: {last.get('frames')} frames in {minutes:.1f} min ({device}, {last.get('date')})"
