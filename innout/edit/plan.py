"""Which standard directions a generator gets, labelled how, and how long learning them takes here.

- EG3D (real weights): the renders labelled by the face mesh (smile, mouth_open, eyes_open; yaw and pitch
  to condition on) and, unless turned off, by CLIP zero-shot contrasts (age, glasses, gender, blond_hair;
  CLIP fetched on first use, ``innout.edit.clip_weights``). Saved in pretrained/directions/.
- The ``faces`` demo generator (the world's prior): its latents' exact attributes. pretrained/directions/demo-faces.
- The ``tiny`` demo generator (untrained, no faces): brightness and warmth. pretrained/directions/demo-tiny.

Default sample counts come from ``python -m innout.bench directions`` (docs/directions.md): with labels
as noisy as a real labeller's, the angle between two independent runs is about 11° at 500 samples, 9.5°
at 1000 and 6° at 2000; a GPU labels 2000 in minutes, a CPU takes about as long for 500.
Learning times are recorded per device and labelling (``learn_times.json`` beside the directions), so the
estimate a user reads before starting was measured on their machine.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..places import directions_dir
from ..storage import append_journal, read_journal
from .labelers import IMAGE_ATTRIBUTES
from .standard import CLIP_EDITS, FACE_MESH_EDITS, Labellers, SampleSource

DEFAULT_SAMPLES = {"cuda": 2000, "cpu": 500}


def default_samples(device: str) -> int:
    return DEFAULT_SAMPLES["cuda" if str(device).startswith("cuda") else "cpu"]


class ColourLabellers:
    """Brightness and warmth of whole images (``ImageLabeler``): for the untrained demo generator."""

    def __init__(self, names=IMAGE_ATTRIBUTES) -> None:
        from .labelers import ImageLabeler

        self.names, self.key = tuple(names), "colour:" + ",".join(names)
        self.labellers = [ImageLabeler(n) for n in names]

    def __call__(self, images) -> np.ndarray:
        return np.stack([np.asarray(lab(images), dtype=np.float64) for lab in self.labellers], axis=1)


@dataclass
class StandardPlan:
    source: SampleSource
    labellers: list[Labellers]
    edits: list[str]
    folder: Path  # where the directions are saved (and the sample batches cached)
    what: str  # one line for the user: the generator and the labelling

    @property
    def key(self) -> str:
        """What its learning time depends on (``plan_key``)."""
        return plan_key(self.demo, any(lab.key.startswith("clip:") for lab in self.labellers))

    demo: str | None = None


def plan_key(demo: str | None, with_clip: bool) -> str:
    """The generator kind and the labelling: the key of the measured learning times."""
    return f"{demo or 'eg3d'}{' + clip' if with_clip else ''}"


@dataclass(frozen=True)
class DemoPlan:
    """How a demo generator's standard set is learned: its edits, and the plan for a generator and names.
    Registered by the package that knows the generator (``register_demo_plan``), so that ``edit`` never
    imports what sits above it (the world registers the ``faces`` prior's)."""

    edits: tuple[str, ...]
    make: Callable[[object, list[str], Path], StandardPlan]  # (G, names, directions root) -> the plan


DEMO_PLANS: dict[str, DemoPlan] = {}


def register_demo_plan(demo: str, plan: DemoPlan) -> None:
    DEMO_PLANS[demo] = plan


def _demo_plan(demo: str) -> DemoPlan:
    if demo not in DEMO_PLANS:
        known = ", ".join(sorted(DEMO_PLANS)) or "none"
        raise KeyError(f"no standard plan registered for the demo generator {demo!r} (registered: {known})")
    return DEMO_PLANS[demo]


def standard_edits(demo: str | None, *, use_clip: bool = True) -> list[str]:
    """The edits the standard set of a generator holds (an EG3D generator: the face-mesh ones, and CLIP's
    unless ``use_clip`` is off; a demo generator: its registered plan's): what ``standard_plan`` learns and
    the page's Learn button names."""
    if demo is not None:
        return list(_demo_plan(demo).edits)
    return [*FACE_MESH_EDITS, *(CLIP_EDITS if use_clip else {})]


def standard_plan(
    G,
    *,
    demo: str | None = None,
    use_clip: bool = True,
    clip_weights: str | os.PathLike | None = None,
    clip_download: bool = True,
    edits: list[str] | None = None,
    super_resolution: bool = True,
    truncation: float = 0.7,
) -> StandardPlan:
    root = directions_dir()
    if demo is not None:
        return _demo_plan(demo).make(G, list(edits or standard_edits(demo)), root)
    from .learn import GeneratorSource
    from .standard import FaceMeshLabellers

    wanted = list(edits or standard_edits(demo, use_clip=use_clip))
    unknown = [e for e in wanted if e not in FACE_MESH_EDITS and e not in CLIP_EDITS]
    if unknown:
        from .directions import DirectionError

        known = ", ".join([*FACE_MESH_EDITS, *CLIP_EDITS])
        raise DirectionError(f"no standard edit named {', '.join(unknown)} (known: {known})")
    labellers: list[Labellers] = [FaceMeshLabellers()]
    clip_wanted = {e: CLIP_EDITS[e] for e in wanted if e in CLIP_EDITS}
    what = "face mesh"
    if clip_wanted:
        from .clip_weights import resolve_clip_weights
        from .standard import CLIPContrastLabellers

        folder = resolve_clip_weights(clip_weights, download=clip_download)
        labellers.append(CLIPContrastLabellers(folder, clip_wanted))
        what += " + CLIP zero-shot"
    source = GeneratorSource(G, truncation=truncation, super_resolution=super_resolution)
    return StandardPlan(source, labellers, wanted, root, what)


def _colour_plan(G, names: list[str], root: Path) -> StandardPlan:
    from .learn import GeneratorSource

    source = GeneratorSource(G, super_resolution=False)
    return StandardPlan(source, [ColourLabellers(names)], names, root / "demo-tiny", "image colour statistics", "tiny")


register_demo_plan("tiny", DemoPlan(tuple(IMAGE_ATTRIBUTES), _colour_plan))


# --- measured times ---------------------------------------------------------------------------------
def times_file() -> Path:
    return directions_dir() / "learn_times.json"


def record_learn_time(key: str, device: str, seconds_per_sample: float, *, path: Path | None = None) -> None:
    """Keep the measured seconds per sample of a labelling on a device (the latest 50 runs)."""
    if not np.isfinite(seconds_per_sample) or seconds_per_sample <= 0:
        return
    row = {"key": key, "device": device, "seconds_per_sample": float(seconds_per_sample),
           "date": dt.date.today().isoformat()}  # fmt: skip
    append_journal(path or times_file(), row)


def measured_seconds_per_sample(key: str, device: str, *, path: Path | None = None) -> float | None:
    rows = [r for r in read_journal(path or times_file()) if r.get("key") == key and r.get("device") == device]
    value = rows[-1].get("seconds_per_sample") if rows else None
    return float(value) if isinstance(value, int | float) and value > 0 else None


def duration_text(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
