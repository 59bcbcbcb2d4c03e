"""The studio's words: status lines, the header, the setup and the no-directions notes."""

from __future__ import annotations

import math
import traceback

from .runtime import Runtime, device_notice
from .session import FitCancelledError, StudioError, View


def ok(text: str) -> str:
    return f"**Done.** {text}"


def fail(exc: BaseException) -> str:
    if isinstance(exc, FitCancelledError):
        return f"**Cancelled.** {exc}"
    if isinstance(exc, StudioError):
        return f"**Problem:** {exc}"
    traceback.print_exc()
    return f"**Problem:** unexpected error ({type(exc).__name__}): {exc}. The app is still usable; please report this."


def describe(view: View, what: str, seconds: float) -> str:
    parts = [what, f"frame {view.frame}", f"yaw {math.degrees(view.yaw):+.0f}°"]
    parts.append(f"pitch {math.degrees(view.pitch):+.0f}°")
    parts += [f"{k} {v:+.1f}" for k, v in sorted((view.edits or {}).items())]
    parts.append("OOD removed" if view.remove_ood else "OOD kept")
    return " · ".join(parts) + f" · {seconds:.2f} s"


def header(runtime: Runtime) -> str:
    device = f"**Device:** {device_notice(runtime.device)}"
    if runtime.demo or not runtime.ready:
        return device  # the banner above names the demo generator, or says there is none
    return f"**Generator:** {runtime.label}  \n{device}"


HOW_TO_ADD_WEIGHTS = (
    "To edit real faces, get `ffhqrebalanced512-128.pkl` (EG3D, FFHQ 512-128, NVIDIA Source Code License): "
    "`python -m innout download eg3d` (needs access to NVIDIA's NGC catalog), or put the file in `pretrained/`, "
    "or start with `python app.py --checkpoint /path/to/file`, then restart the app."
)


def banner(runtime: Runtime) -> str:
    """The page's top line: what it runs on, in plain view (empty for EG3D on a GPU)."""
    lines = []
    if runtime.demo:
        why = f" The EG3D weights are not in use: {runtime.problem}" if runtime.problem else ""
        label = runtime.label.removeprefix("DEMO ")
        lines.append(f"**DEMO:** {label}.{why} {HOW_TO_ADD_WEIGHTS if runtime.problem else ''}".strip())
    elif not runtime.ready:
        lines.append(f"**No generator:** {runtime.problem} {HOW_TO_ADD_WEIGHTS}")
    if not runtime.device.startswith("cuda"):
        lines.append(
            "**CPU only:** editing a fitted scene is interactive; fitting is slow (use the preview preset)."
        )
    return "  \n".join(lines)


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


def no_directions_text(runtime: Runtime) -> str:
    notes = "".join(f"\n- skipped: {n}" for n in runtime.direction_notes)
    return (
        "No edit directions are installed for this generator. Learn one, e.g. "
        "`python -m innout directions learn smile --labeler smile`, then restart the app." + notes
    )
