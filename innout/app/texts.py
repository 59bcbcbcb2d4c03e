"""The studio's words: status lines, the header, the setup and the no-directions notes."""

from __future__ import annotations

import math
import traceback

from .runtime import Runtime, device_notice
from .session import StudioError, View


def ok(text: str) -> str:
    return f"**Done.** {text}"


def fail(exc: BaseException) -> str:
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
    gen = runtime.label if runtime.ready else "no generator yet (see the setup panel)"
    return f"**Generator:** {gen}  \n**Device:** {device_notice(runtime.device)}"


def setup_text(runtime: Runtime) -> str:
    if runtime.ready:
        return ok(f"Generator ready: {runtime.label}.")
    return (
        "### Setup: the EG3D weights are missing\n"
        f"{runtime.problem}\n\n"
        "Provide `ffhqrebalanced512-128.pkl` (EG3D, FFHQ 512-128, NVIDIA Source Code License) in one of these "
        "ways: put it in `pretrained/`, set `INNOUT_EG3D_CHECKPOINT=/path/to/file`, start with "
        "`python app.py --checkpoint /path/to/file`, paste its path below, or retry the download "
        "(needs access to NVIDIA's NGC catalog). To try the flow without weights: "
        "`python app.py --demo-generator tiny`."
    )


def no_directions_text(runtime: Runtime) -> str:
    notes = "".join(f"\n- skipped: {n}" for n in runtime.direction_notes)
    return (
        "No edit directions are installed for this generator. Learn one, e.g. "
        "`python -m innout directions learn smile --labeler smile`, then restart the app." + notes
    )
