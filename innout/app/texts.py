"""The studio's words: status lines, the header, the setup and the no-directions notes."""

from __future__ import annotations

import math
import traceback

from ..errors import UserError
from .runtime import Runtime, device_notice
from .session import FitCancelledError, View


def ok(text: str) -> str:
    return f"**Done.** {text}"


def fail(exc: BaseException) -> str:
    if isinstance(exc, FitCancelledError):
        return f"**Cancelled.** {exc}"
    if isinstance(exc, UserError):  # the page's own (StudioError) and the package's: their message says it all
        return f"**Problem:** {exc}"
    traceback.print_exc()
    return f"**Problem:** unexpected error ({type(exc).__name__}): {exc}. The app is still usable; please report this."


def describe(view: View, what: str, seconds: float) -> str:
    parts = [what, f"frame {view.frame}", f"yaw {math.degrees(view.yaw):+.0f}°"]
    parts.append(f"pitch {math.degrees(view.pitch):+.0f}°")
    parts += [f"{k} {v:+.1f}" for k, v in sorted((view.edits or {}).items())]
    parts.append("OOD removed" if view.remove_ood else "OOD kept" if view.blend >= 1 else f"OOD x{view.blend:.2f}")
    return " · ".join(parts) + f" · {seconds:.2f} s"


def header(runtime: Runtime) -> str:
    """The generator and the device, when the banner has not said them already (it names a demo and a CPU)."""
    gpu = runtime.device.startswith("cuda")
    device = f"**Device:** {device_notice(runtime.device)}" if gpu else ""
    if runtime.demo or not runtime.ready:
        return device
    return f"**Generator:** {runtime.label}" + (f"  \n{device}" if device else "")


HOW_TO_ADD_WEIGHTS = (
    "To edit real faces, get `ffhqrebalanced512-128.pkl` (EG3D, FFHQ 512-128, NVIDIA Source Code License): "
    "`python -m innout download eg3d` (needs access to NVIDIA's NGC catalog), or put the file in `pretrained/`, "
    "or start with `python app.py --checkpoint /path/to/file`, then restart the app."
)


def banner(runtime: Runtime) -> str:
    """The page's top lines, said once each: what it runs on and what is missing (empty for EG3D on a GPU)."""
    lines = []
    if runtime.demo:
        label = runtime.label.removeprefix("DEMO ")
        missing = ""
        if runtime.problem:
            reason = runtime.problem.strip().splitlines()[0].rstrip(".")
            missing = (f" The EG3D weights are not in use ({reason}): `python -m innout download eg3d`, a file in "
                       "`pretrained/`, or `--checkpoint PATH`, then restart.")  # fmt: skip
        lines.append(f"**DEMO:** {label}.{missing}")
    elif not runtime.ready:
        lines.append(f"**No generator:** {runtime.problem.strip().splitlines()[0]} {HOW_TO_ADD_WEIGHTS}")
    if not runtime.device.startswith("cuda"):
        lines.append(
            f"**CPU only** ({torch_threads()} threads): editing a fitted scene is interactive; fitting is slow "
            "(use the preview preset here, a GPU for fast and paper)."
        )
    return "  \n".join(lines)


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def setup_text(runtime: Runtime) -> str:
    if runtime.ready and runtime.demo is None:
        return ok(f"Generator ready: {runtime.label}.")
    return (
        "### Setup: the EG3D weights are missing\n"
        f"{runtime.problem}\n\n"
        "Paste the path of `ffhqrebalanced512-128.pkl` on this machine, or retry the download (needs access to "
        "NVIDIA's NGC catalog). The new generator is used by this page and pages opened after; other open pages "
        "keep theirs."
    )


def standard_edits(runtime: Runtime) -> list[str]:
    """The edits 'Learn ...' makes for this generator (``innout.edit.plan.standard_edits``)."""
    from ..edit.plan import standard_edits as edits_of

    return edits_of(runtime.demo)


def can_learn(runtime: Runtime) -> bool:
    """The learn button is offered while some standard edit of this generator is missing."""
    return runtime.ready and any(name not in runtime.directions for name in standard_edits(runtime))


def learn_label(runtime: Runtime) -> str:
    """'Learn smile, age, ... (about N min here)': the estimate measured on this device, when there is one."""
    from ..edit.plan import default_samples, duration_text, measured_seconds_per_sample, plan_key

    names = standard_edits(runtime)
    samples = default_samples(runtime.device)
    per_sample = measured_seconds_per_sample(plan_key(runtime.demo, runtime.demo is None), runtime.device)
    when = (
        f"about {duration_text(per_sample * samples)} here, measured"
        if per_sample
        else "the time is measured on the first samples and shown in the progress bar"
    )
    return f"Learn {', '.join(names)} ({samples} samples; {when})"


def directions_text(runtime: Runtime, shown: list[str]) -> str:
    notes = "".join(f"\n- left out: {n}" for n in runtime.direction_notes[:5])
    if shown:
        more = len(runtime.directions) - len(shown)
        extra = f" ({more} more installed: the first {len(shown)} are shown)" if more > 0 else ""
        return f"Edit sliders: the directions installed for this generator{extra}." + notes
    if not runtime.ready:
        return "No generator yet: see the setup panel."
    return (
        "No edit directions are installed for this generator yet. Learn the standard ones with the button "
        "below (or `python -m innout directions learn-standard`); the sliders appear when it finishes." + notes
    )
