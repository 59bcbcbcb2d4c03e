"""The Gradio studio: input -> preprocessing preview -> fit -> live edits -> exports.

Only wiring lives here: every handler calls ``StudioSession`` (innout.app.session), which calls the
package's public APIs. Handlers never raise into the page: a ``StudioError`` becomes a message in the
step's status box and the app stays usable.

What the page can be trusted with:
- No event takes a path on the server from the client (uploads are Gradio's own files), and nothing a
  page does changes the generator of another page. The setup actions (a local weights file, the
  download) exist only with ``allow_setup`` (``app.py --allow-setup``, which only binds to this machine).
- The edit tab's controls are the one source of truth for the view: every render and every export reads
  them, the preset-view buttons set them in the browser before their render, and a new scene resets them.
- Work that needs the compute (prepare, fit, exports) runs in the "compute" queue; the cheap checks in
  front of it (is this a video, is there a prepared clip) answer at once, never behind another page's fit.
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass, field

import gradio as gr
import numpy as np

from ..preprocess.pipeline import PrepareOptions
from . import plots, texts
from .fit_times import measured_hint
from .progress import OverallProgress, planned_stages
from .runtime import Runtime, example_clips, gpu, load_runtime, world_example_clip, world_example_scene
from .session import StudioError, StudioSession, View

MAX_EDITS = 6  # slider slots; directions beyond this are listed but not shown
PRESET_HINTS = {
    "preview": "12 frames at most, 64² rays: 5 min 13 s for the 8-frame synthetic example with the faces demo "
    "generator on a 2-core CPU (measured 2026-11-30); longer with EG3D",
    "fast": "every frame and every loss term of the paper, batched: about 33 min for 200 frames on an H200 "
    "(extrapolated from its measured steps, 2026-11-30); GPU only (hours on a CPU)",
    "paper": "the paper's settings: about 46-48 min for 200 frames on an H200 (extrapolated from its measured steps, "
    "2026-11-30; the paper: about 3 h on an RTX A4000); days on a CPU",
}
PAPER_URL = "https://arxiv.org/abs/2302.04871"
PRESET_VIEWS = {"Input view": (0, 0), "Left": (-25, 0), "Right": (25, 0), "Above": (0, 15)}  # degrees
CSS = """
#render img, #blend img {image-rendering: auto;}
.status {min-height: 1.5em;}
#banner {border-left: 6px solid #d97706; background: #fef3c7; color: #451a03; padding: 0.4em 0.8em;}
#banner:empty, #banner.hidden {display: none;}
@media (max-width: 768px) {  /* phones: the images first, the controls under them */
  #edit-row {flex-direction: column-reverse;}
}
"""
THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="amber", neutral_hue="slate")
COMPUTE = "compute"  # prepare, fit, exports: one at a time (each takes the whole CPU or GPU)
RENDER = "render"  # edit-screen renders
CHECK = {"concurrency_limit": None}  # cheap checks in front of the compute: never wait for a free slot


@dataclass
class AppConfig:
    max_seconds: float = 60.0
    tmp_root: str | None = None  # where session folders go
    fit_workdir: str | None = None
    prepare_options: PrepareOptions | None = None
    allow_setup: bool = False  # offer the setup actions in the page (app.py --allow-setup, local only)


class Sessions:
    """The pages open now, by Gradio's session hash: a closed page's files are removed at once, and every
    page's when the server stops. ``runtime`` is the generator new pages get."""

    def __init__(self, runtime: Runtime, tmp_root: str | None) -> None:
        self.runtime = runtime
        self.tmp_root = tmp_root
        self._open: dict[str, StudioSession] = {}
        self._lock = threading.Lock()

    def open(self, request: gr.Request) -> StudioSession:
        session = StudioSession(self.runtime, tmp_root=self.tmp_root)
        with self._lock:
            old = self._open.pop(request.session_hash, None)
            self._open[request.session_hash] = session
        if old is not None:
            old.close()
        return session

    def close(self, request: gr.Request) -> None:
        with self._lock:
            session = self._open.pop(request.session_hash, None)
        if session is not None:
            session.close()

    def close_all(self) -> None:
        with self._lock:
            sessions, self._open = list(self._open.values()), {}
        for session in sessions:
            session.close()

    def __len__(self) -> int:
        return len(self._open)


# --- the tabs -----------------------------------------------------------------------------------------
@dataclass
class InputTab:
    upload: gr.File
    prepare: gr.Button
    world: gr.Button
    world_clip: str | None
    open_example: gr.Button  # the faces demo: the world clip already fitted
    example_scene: str | None
    status: gr.Markdown
    crops: gr.Gallery
    trajectory: gr.Plot
    ticket: gr.State  # bumped when an input passes the cheap checks: that starts the preparation


def input_tab(runtime: Runtime) -> InputTab:
    with gr.Tab("1. Input", id="input"), gr.Row():
        with gr.Column(scale=1):
            upload = gr.File(
                label="A face video or photo", file_types=["video", "image", ".mp4", ".mov", ".webm", ".mkv",
                ".gif"], elem_id="upload",
            )  # fmt: skip
            if example_clips():
                with gr.Row(equal_height=True):
                    gr.Image(plots.thumbnail(example_clips()[0]), label="The example's first frame", height=140,
                             interactive=False, buttons=[], elem_id="example-thumb", scale=1)  # fmt: skip
                    with gr.Column(scale=2):
                        gr.Examples(example_clips(), inputs=[upload], label="Example (LivePortrait, MIT licence)")
            prepare = gr.Button("Prepare", variant="primary", elem_id="prepare", interactive=False)
            world_clip = world_example_clip()
            world = gr.Button(
                "Or: the synthetic example (a world head behind sunglasses, known cameras, no face detection)",
                visible=world_clip is not None, elem_id="world-example", size="sm", interactive=False,
            )  # fmt: skip
            example_scene = world_example_scene() if runtime.demo == "faces" and world_clip else None
            open_example = gr.Button(
                "Or open that example already fitted (instant): the preview preset, ready to edit",
                visible=example_scene is not None, elem_id="open-example", size="sm", interactive=False,
            )  # fmt: skip
            status = gr.Markdown(elem_id="prepare-status", elem_classes="status")
        with gr.Column(scale=2):
            crops = gr.Gallery(label="Aligned crops with landmarks", columns=4, height=330, elem_id="crops")
            trajectory = gr.Plot(label="Camera trajectory", elem_id="trajectory")
    return InputTab(upload, prepare, world, world_clip, open_example, example_scene, status, crops, trajectory,
                    gr.State(0))  # fmt: skip


@dataclass
class FitTab:
    preset: gr.Radio
    preset_note: gr.Markdown
    max_frames: gr.Slider
    effort: gr.Slider
    mask: gr.ImageEditor
    fit: gr.Button
    cancel: gr.Button
    status: gr.Markdown
    scene_upload: gr.File
    losses: gr.Plot
    ood_plot: gr.Plot
    ticket: gr.State  # bumped when a fit is requested: that starts it in the compute queue


def fit_tab() -> FitTab:
    with gr.Tab("2. Fit", id="fit"), gr.Row():
        with gr.Column():
            preset = gr.Radio(
                ["preview", "fast", "paper"], value="preview", label="Preset",
                info=" · ".join(f"{k}: {v}" for k, v in PRESET_HINTS.items()), elem_id="preset",
            )  # fmt: skip
            preset_note = gr.Markdown(elem_id="preset-note")  # a warning / the time measured here, when picked
            with gr.Accordion("Advanced", open=False):
                max_frames = gr.Slider(
                    0, 300, value=0, step=1, label="Frames to fit (0 = the preset's)", elem_id="max-frames"
                )
                effort = gr.Slider(
                    0.05, 1.0, value=1.0, step=0.05, label="Effort (share of the preset's optimisation steps)",
                    elem_id="effort",
                )  # fmt: skip
            with gr.Accordion("Optional: paint the OOD object on the first frame", open=False):
                gr.Markdown(
                    "Paint it on this frame only, in any colour: the head's pose and the motion carry it to the other "
                    "frames, and the colours you painted over decide its edges there, so cover the object, not its "
                    "surroundings. Leave it empty for a fully automatic fit."
                )
                mask = gr.ImageEditor(
                    label="Paint over the object",
                    type="numpy", sources=[], layers=False, height=360, elem_id="mask",
                )  # fmt: skip
            with gr.Row():
                fit = gr.Button("Fit", variant="primary", elem_id="fit-button", interactive=False)
                cancel = gr.Button("Cancel", variant="stop", elem_id="cancel")
            status = gr.Markdown(elem_id="fit-status", elem_classes="status")
            scene_upload = gr.File(
                label="Or open a saved scene (.safetensors)", file_types=[".safetensors"], elem_id="scene-upload"
            )
        with gr.Column():
            losses = gr.Plot(label="Losses", elem_id="losses")
            ood_plot = gr.Plot(label="OOD opacity per frame", elem_id="ood-plot")
    return FitTab(preset, preset_note, max_frames, effort, mask, fit, cancel, status, scene_upload, losses, ood_plot,
                  gr.State(0))  # fmt: skip


@dataclass
class EditTab:
    tab: gr.Tab
    frame: gr.Slider
    yaw: gr.Slider
    pitch: gr.Slider
    follow: gr.Checkbox
    remove: gr.Checkbox
    edits: list[gr.Slider]  # MAX_EDITS slots; which direction each shows is the session's ``shown_edits``
    directions_note: gr.Markdown
    learn: gr.Button
    view_buttons: dict[str, gr.Button]
    full_on_release: gr.Checkbox
    before: gr.Image
    image: gr.Image
    blend: gr.Image
    status: gr.Markdown
    scene_outputs: list = field(default_factory=list)  # what a new scene updates (set once every tab exists)

    @property
    def view_inputs(self) -> list:
        """The controls a ``View`` is made of, in ``view_of``'s order: the one source of truth."""
        return [self.frame, self.yaw, self.pitch, self.follow, self.remove, *self.edits]

    @property
    def direction_outputs(self) -> list:
        """What ``direction_updates`` sets: the slots, the note and the learn button."""
        return [*self.edits, self.directions_note, self.learn]


def edit_tab(runtime: Runtime) -> EditTab:
    edit_names = sorted(runtime.directions)[:MAX_EDITS]  # as the page opens; each page's load event updates them
    with gr.Tab("3. Edit", id="edit") as tab, gr.Row(elem_id="edit-row"):
        with gr.Column(scale=1, min_width=280):
            frame = gr.Slider(0, 1, value=0, step=1, label="Frame", elem_id="frame")
            yaw = gr.Slider(-45, 45, value=0, step=1, label="Orbit: yaw (degrees)", elem_id="yaw")
            pitch = gr.Slider(-30, 30, value=0, step=1, label="Orbit: pitch (degrees)", elem_id="pitch")
            follow = gr.Checkbox(
                True, label="Orbit around the frame's own view (off: around frontal)", elem_id="follow"
            )
            with gr.Row():
                view_buttons = {
                    name: gr.Button(name, size="sm", elem_id=f"view-{name.split()[0].lower()}") for name in PRESET_VIEWS
                }  # fmt: skip
            edits = []
            for i in range(MAX_EDITS):
                name = edit_names[i] if i < len(edit_names) else f"edit{i}"
                # the direction's own range: the drag preview's knots span exactly this range
                lo, hi = runtime.directions[name].value_range if name in runtime.directions else (-3, 3)
                edits.append(
                    gr.Slider(lo, hi, value=0, step=0.1, label=name, visible=i < len(edit_names),
                              elem_id=f"edit-slot-{i}", elem_classes="edit-slot")  # fmt: skip
                )
            directions_note = gr.Markdown(texts.directions_text(runtime, edit_names), elem_id="directions-note")
            # enabled by the page's load event, with its session (an earlier click would find none)
            learn = gr.Button(texts.learn_label(runtime), visible=texts.can_learn(runtime), size="sm",
                              elem_id="learn-directions", interactive=False)  # fmt: skip
            remove = gr.Checkbox(False, label="Remove the OOD object (blend weight b = 0)", elem_id="remove")
            full_on_release = gr.Checkbox(True, label="Full quality when a slider is released")
        with gr.Column(scale=2):
            with gr.Row(equal_height=True):
                before = gr.Image(label="Input (the aligned frame)", height=400, elem_id="before", interactive=False)
                image = gr.Image(label="Render", height=400, elem_id="render", interactive=False)
            status = gr.Markdown(elem_id="render-status", elem_classes="status")
            blend = gr.Image(label="Blend map: the OOD opacity of each pixel (what the model decided is not face)",
                             height=440, elem_id="blend", interactive=False)  # fmt: skip
    return EditTab(tab, frame, yaw, pitch, follow, remove, edits, directions_note, learn, view_buttons,
                   full_on_release, before, image, blend, status)  # fmt: skip


@dataclass
class ExportTab:
    quality: gr.Radio
    every_frame: gr.Checkbox
    note: gr.Markdown  # what a video export will hold, said before it
    buttons: dict[str, gr.Button]  # kind -> button
    orbit_path: gr.Dropdown
    orbit_views: gr.Slider
    status: gr.Markdown
    video: gr.Video
    file: gr.File
    model3d: gr.Model3D

    @property
    def outputs(self) -> list:
        return [self.status, self.video, self.file, self.model3d]


EXPORT_KINDS = {
    "video": "Edited video (pasted back, with audio)",
    "crops": "Aligned edited clip",
    "orbit": "Novel-view clip of this frame",
    "png": "PNG of this frame",
    "mesh": "Geometry (.glb)",
}


def export_tab() -> ExportTab:
    with gr.Tab("4. Export", id="export"), gr.Row():
        with gr.Column(scale=1):
            quality = gr.Radio(["preview", "full"], value="full", label="Export quality", elem_id="export-quality")
            every_frame = gr.Checkbox(True, label="Every source frame (frames between fitted ones interpolated)",
                                      elem_id="every-frame")  # fmt: skip
            note = gr.Markdown(elem_id="video-note")
            buttons = {}
            for kind, label in EXPORT_KINDS.items():
                if kind == "orbit":
                    with gr.Row():
                        orbit_path = gr.Dropdown(["orbit", "yaw-sweep"], value="orbit", label="Camera path")
                        orbit_views = gr.Slider(8, 120, value=48, step=1, label="Views")
                buttons[kind] = gr.Button(label, elem_id=f"export-{kind}", interactive=False)
            status = gr.Markdown(elem_id="export-status", elem_classes="status")
        with gr.Column(scale=2):
            video = gr.Video(label="Exported video", elem_id="export-player")
            file = gr.File(label="Download", elem_id="export-file")
            model3d = gr.Model3D(label="Geometry", elem_id="model3d")
    return ExportTab(quality, every_frame, note, buttons, orbit_path, orbit_views, status, video, file, model3d)


@dataclass
class SetupPanel:
    text: gr.Markdown
    group: gr.Group
    path: gr.Textbox
    use_path: gr.Button
    retry: gr.Button


def setup_panel(runtime: Runtime) -> SetupPanel:
    """Only built with ``allow_setup``: its events act on files and downloads of this machine."""
    with gr.Group(visible=runtime.problem is not None, elem_id="setup") as group:
        text = gr.Markdown(texts.setup_text(runtime))
        with gr.Row():
            path = gr.Textbox(label="Local path of ffhqrebalanced512-128.pkl", scale=3)
            use_path = gr.Button("Use this file", scale=1, variant="secondary")
            retry = gr.Button("Retry the download", scale=1, variant="secondary")
    return SetupPanel(text, group, path, use_path, retry)


# --- handlers (module level: each takes the session first) ---------------------------------------------
def live(session: StudioSession | None) -> StudioSession:
    """The page's session; a StudioError while the page is still connecting (its load event not yet done)."""
    if session is None:
        raise StudioError("The page is still connecting: try again in a moment.")
    return session


def view_of(edit_names: list[str], frame_v, yaw_v, pitch_v, follow_v, remove_v, *edit_values) -> View:
    """The view the controls show; ``edit_names`` are the slots' directions (the session's ``shown_edits``)."""
    edits = {n: float(v) for n, v in zip(edit_names, edit_values, strict=False) if float(v or 0) != 0}
    return View(int(frame_v), math.radians(yaw_v), math.radians(pitch_v), edits, bool(remove_v), bool(follow_v))


def check_upload(max_seconds: float, session: StudioSession, file, ticket: int):
    """Prepare's first step, outside the compute queue: refuse a bad input at once (and forget the old
    one); a good one bumps the ticket, which starts the preparation."""
    path = file if isinstance(file, str) or file is None else getattr(file, "name", file)
    try:
        checked = live(session).check(path, max_seconds=max_seconds)
    except StudioError as exc:
        return texts.fail(exc), gr.skip(), None, None, None, gr.Button(interactive=False)
    message = f"Preparing {checked.name}: face detection, alignment, cameras…"
    return message, ticket + 1, gr.skip(), gr.skip(), gr.skip(), gr.Button(interactive=False)


def prepare_checked(config: AppConfig, session: StudioSession, _ticket: int, progress=gr.Progress(track_tqdm=True)):
    fail = (None, None, None, gr.Button(interactive=False))
    if session.checked is None:
        return texts.fail(StudioError("Nothing to prepare: upload a video or a photo first.")), *fail
    try:
        prepared = session.prepare(session.checked, max_seconds=config.max_seconds, options=config.prepare_options)
    except Exception as exc:  # noqa: BLE001 - shown in the page
        return texts.fail(exc), *fail
    first = np.asarray(prepared.crops[0])
    text = texts.ok(f"Prepared {session.input.name}. " + prepared.report().replace("\n", " · "))
    return (
        text,
        plots.crops_with_landmarks(prepared),
        plots.camera_trajectory(prepared.cameras, prepared.frame_indices),
        {"background": first, "layers": [], "composite": first},
        gr.Button(interactive=True),
    )


def preset_warning(session: StudioSession, preset_v: str) -> str:
    """Said when the preset is picked, before any Fit: the slow presets on a CPU, and the latest time a fit
    with this preset took here."""
    if session is None:
        return ""
    hint = measured_hint(preset_v, session.device_key)
    measured = f"The {preset_v} preset, {hint}." if hint else ""
    if preset_v == "preview" or session.runtime.device.startswith("cuda"):
        return measured
    return (
        f"**Warning:** the {preset_v} preset on a CPU takes many hours to days ({PRESET_HINTS[preset_v]}). "
        f"Use preview here, or a GPU. {measured}"
    ).strip()


def request_fit(session: StudioSession, ticket: int, preset_v: str):
    try:
        source = live(session).request_fit()
    except StudioError as exc:
        return texts.fail(exc), gr.skip()
    warning = preset_warning(session, preset_v)
    return f"{warning} Fitting {source.name} with the {preset_v} preset: waiting for the compute…".strip(), ticket + 1


def request_cancel(session: StudioSession):
    if session is not None and session.request_cancel():
        return "**Cancelling…** the fit stops at its next step (finished stages and the last checkpoint are cached)."
    return "**Nothing to cancel:** no fit is running."


def scene_updates(session: StudioSession, edit: EditTab, message: str) -> tuple:
    """Everything a new scene resets: status, charts, every view control (to the input view, no edits,
    object kept), the first render, the export buttons (enabled) and the previous scene's exports (gone)."""
    scene = session.require_scene()
    session.warm_drag(0)
    first = session.render(View(edits={}), quality="preview")
    frames = scene.data.source.frames
    return (
        texts.ok(message),
        plots.loss_chart(scene.data.history),
        plots.ood_chart(session.ood_opacity_series(), frames),
        gr.Slider(minimum=0, maximum=max(scene.n_frames - 1, 1), value=0, step=1,
                  label=f"Frame (fitted frame index; {scene.n_frames} frames)"),  # fmt: skip
        0,
        0,
        True,
        False,
        *[0 for _ in edit.edits],
        session.input_crop(0),
        first.image,
        plots.blend_map_with_scale(first.ood_opacity),
        "Preview render of the input view. Move a slider to edit.",
        None,
        None,
        None,
        session.video_note(),
        *[gr.Button(interactive=True) for _ in EXPORT_KINDS],
    )


@gpu(duration=600)
def run_fit(
    workdir, edit: EditTab, session: StudioSession, preset_v, frames_v, effort_v, mask_v, progress=gr.Progress()
):
    overall: list[OverallProgress] = []  # made at the first report, when the fit's settings are known
    mask = painted_mask(mask_v)

    def report(stage, done, total, last):
        if not overall:
            has_sr = any(True for _ in session.runtime.generator.superresolution.parameters())
            stages = planned_stages(session.fit_config, has_super_resolution=has_sr, semi_supervised=mask is not None)
            overall.append(OverallProgress(stages))
        share, line = overall[0].update(stage, done, total)
        loss = ", ".join(f"{k} {v:.3g}" for k, v in list(last.items())[:2])
        progress(share, desc=f"{line}{' · ' + loss if loss else ''}")

    try:
        source = live(session).input
        session.fit(
            preset_v, max_frames=int(frames_v) or None, effort=float(effort_v), mask=mask,
            progress=report, workdir=workdir,
        )  # fmt: skip
        scene = session.require_scene()
        message = f"Fitted {scene.n_frames} frames of {source.name} ({preset_v}). Go to step 3 to edit."
        gr.Info(message, title="Fit done")  # a fit takes minutes: said wherever the user has gone meanwhile
        return scene_updates(session, edit, message)
    except Exception as exc:  # noqa: BLE001 - shown in the page
        return unchanged_scene(edit, texts.fail(exc))


def open_scene(edit: EditTab, session: StudioSession, file):
    try:
        if file is None:
            raise StudioError("No scene file given.")
        live(session).load_scene(file if isinstance(file, str) else file.name)
        return scene_updates(session, edit, f"Opened a scene with {session.require_scene().n_frames} frames.")
    except Exception as exc:  # noqa: BLE001
        return unchanged_scene(edit, texts.fail(exc))


def unchanged_scene(edit: EditTab, message: str) -> tuple:
    """The answer of a scene event that failed: its message in the first output, every other one unchanged."""
    return (message, *[gr.skip()] * (len(edit.scene_outputs) - 1))


@gpu
def render_view(session: StudioSession, drag: bool, full: bool, *values):
    try:
        view = view_of(live(session).shown_edits, *values)
        quality = "full" if (full and not drag) else "preview"
        result = live(session).render(view, quality=quality, drag=drag)
        key = "drag" if drag else quality
        what = "drag preview (interpolated edit planes)" if drag else f"{quality} render"
        status = texts.describe(view, what, session.timings[key])
        return result.image, plots.blend_map_with_scale(result.ood_opacity), status
    except Exception as exc:  # noqa: BLE001
        return gr.skip(), gr.skip(), texts.fail(exc)


def drag_render(session, *values):
    return render_view(session, True, False, *values)


def release_render(session, full, *values):
    return render_view(session, False, bool(full), *values)


def frame_release(session, full, *values):
    """A new frame: its input crop beside the render, and the knots that make drags on it fast."""
    try:
        live(session).warm_drag(int(values[0]))
        before = session.input_crop(int(values[0]))
    except Exception as exc:  # noqa: BLE001
        return gr.skip(), gr.skip(), gr.skip(), texts.fail(exc)
    return before, *render_view(session, False, bool(full), *values)


@gpu(duration=600)
def run_export(
    kind: str, session: StudioSession, quality, every_frame, path_v, n_views, *values, progress=gr.Progress()
):
    """One export of the view on screen. A failure clears the download boxes: nothing stale is offered."""

    def report(stage, done, total, _):
        progress((done, total), desc=f"{stage}: frame {done}/{total}")

    try:
        view = view_of(live(session).shown_edits, *values)
        if kind in ("video", "crops"):
            out = session.export_video(view, paste=kind == "video", quality=quality, every_frame=bool(every_frame),
                                       progress=report)  # fmt: skip
        elif kind == "orbit":
            out = session.export_orbit(view, path=path_v, n_views=int(n_views), quality=quality, progress=report)
        elif kind == "png":
            out = session.export_png(view)
            return texts.ok(f"Wrote {out.name}"), None, str(out), None
        else:
            out, mesh = session.export_mesh(view)
            parts = f"{len(mesh.faces)} triangles, {int(mesh.part.sum())} of {len(mesh.part)} vertices OOD"
            return texts.ok(f"Wrote {out.name}: {parts}, density level {mesh.level:.3g}"), None, str(out), str(out)
        return texts.ok(f"Wrote {out.name}: {count_frames(out)} frames"), str(out), str(out), None
    except Exception as exc:  # noqa: BLE001
        return texts.fail(exc), None, None, None


def direction_updates(edit: EditTab, session: StudioSession, message: str = "", *, reset: bool = False) -> tuple:
    """The edit slots for the directions this page can use now (learned, installed or set up since the
    page was built): a slot whose direction changed is relabelled, re-ranged and set to 0; unchanged slots
    keep their values (unless ``reset``). Then the note (with ``message``) and the learn button."""
    names = session.sync_directions()[:MAX_EDITS]
    runtime = session.runtime
    if names == session.shown_edits and not reset:
        slots = [gr.skip() for _ in edit.edits]
    else:
        slots = []
        for i in range(MAX_EDITS):
            if i < len(names):
                lo, hi = runtime.directions[names[i]].value_range
                slots.append(gr.Slider(minimum=lo, maximum=hi, value=0, label=names[i], visible=True))
            else:
                slots.append(gr.Slider(value=0, visible=False))
        session.shown_edits = names
    note = (f"{message}\n\n" if message else "") + texts.directions_text(runtime, names)
    learn = (gr.Button(value=texts.learn_label(runtime), visible=True, interactive=True) if texts.can_learn(runtime)
             else gr.Button(visible=False))  # fmt: skip
    return *slots, note, learn


def refresh_directions(edit: EditTab, session: StudioSession):
    """On opening the Edit tab: direction files installed while the app runs become sliders (cheap: a folder scan)."""
    if session is None:
        return tuple(gr.skip() for _ in edit.direction_outputs)
    session.runtime.refresh_directions()
    return direction_updates(edit, session)


@gpu(duration=600)
def learn_directions(edit: EditTab, session: StudioSession, progress=gr.Progress(track_tqdm=True)):
    """The page's 'Learn ...' button: the standard directions of this generator, with progress; the sliders
    appear when it finishes."""
    try:
        learned, note = live(session).learn_directions(
            progress=lambda done, total: progress((done, total), desc=f"labelling samples: {done}/{total}")
        )
    except Exception as exc:  # noqa: BLE001 - shown in the page
        return direction_updates(edit, session, texts.fail(exc)) if session is not None else (
            *[gr.skip() for _ in edit.edits], texts.fail(exc), gr.skip())  # fmt: skip
    return direction_updates(edit, session, texts.ok(f"Learned {', '.join(learned)}.{note}"), reset=True)


def reload_runtime(sessions: Sessions, session: StudioSession, path: str | None, download: bool):
    """Setup (``allow_setup`` only): load the weights for this page and for pages opened after it."""
    fresh = load_runtime(checkpoint=path or None, device=session.runtime.device, download=download)
    if fresh.ready:
        session.use_runtime(fresh)
        sessions.runtime = fresh
    shown = fresh if fresh.ready else session.runtime
    return texts.setup_text(fresh), gr.Group(visible=not fresh.ready), texts.header(shown), texts.banner(shown)


# --- the page ------------------------------------------------------------------------------------------
def build_ui(runtime: Runtime, config: AppConfig | None = None) -> gr.Blocks:
    config = config or AppConfig()
    sessions = Sessions(runtime, config.tmp_root)
    with gr.Blocks(title="In-N-Out studio", delete_cache=(1800, 3600)) as demo:
        demo.studio_sessions = sessions  # for the server's clean-up at exit and for tests
        state = gr.State(None, delete_callback=lambda s: s.close() if s is not None else None)
        gr.Markdown(
            "# In-N-Out studio\nReconstruct a face video in 3D with EG3D plus a second radiance field for what "
            "EG3D has never seen (make-up, masks, glasses), then edit it: sliders, camera orbit, object removal. "
            f"The method: [In-N-Out, CVPR 2024]({PAPER_URL})."
        )
        banner = gr.Markdown(texts.banner(runtime), elem_id="banner")
        header = gr.Markdown(texts.header(runtime), elem_id="header")
        setup = setup_panel(runtime) if config.allow_setup else None
        inp, fit, edit, export = input_tab(runtime), fit_tab(), edit_tab(runtime), export_tab()
        edit.scene_outputs = scene_outputs(fit, edit, export)
        demo.studio_tabs = (inp, fit, edit, export)  # for tests

        def open_page(request: gr.Request):  # the page's session; the buttons that need it are enabled with it
            session = sessions.open(request)
            session.runtime.refresh_directions()  # directions learned or installed since the page was built
            buttons = [gr.Button(interactive=True) for _ in range(3)]
            return session, *buttons, *direction_updates(edit, session)

        demo.load(open_page, outputs=[state, inp.prepare, inp.world, inp.open_example, *edit.direction_outputs])
        demo.unload(sessions.close)
        wire_input(inp, fit, edit, export, state, config)
        wire_fit(fit, edit, export, state, config)
        wire_edit(edit, state)
        wire_export(export, edit, state)
        if setup is not None:
            wire_setup(setup, edit, sessions, state, header, banner)
    return demo


def scene_outputs(fit: FitTab, edit: EditTab, export: ExportTab) -> list:
    """What a new scene updates (``scene_updates``, in this order)."""
    return [fit.status, fit.losses, fit.ood_plot, *edit.view_inputs, edit.before, edit.image, edit.blend,
            edit.status, export.video, export.file, export.model3d, export.note, *export.buttons.values()]  # fmt: skip


def open_example(inp: InputTab, edit: EditTab, session: StudioSession):
    try:
        live(session).open_example(inp.example_scene, inp.world_clip)
        message = "Opened the synthetic example, fitted beforehand with the preview preset. Go to step 3 to edit."
        return texts.ok(message), *scene_updates(session, edit, message)
    except Exception as exc:  # noqa: BLE001 - shown in the page
        return texts.fail(exc), *unchanged_scene(edit, gr.skip())


def wire_input(
    inp: InputTab, fit: FitTab, edit: EditTab, export: ExportTab, state: gr.State, config: AppConfig
) -> None:
    check = functools.partial(check_upload, config.max_seconds)
    check_outputs = [inp.status, inp.ticket, inp.crops, inp.trajectory, fit.mask, fit.fit]
    inp.prepare.click(check, [state, inp.upload, inp.ticket], check_outputs, **CHECK)
    if inp.world_clip is not None:
        world = functools.partial(lambda clip, s, t: check(s, clip, t), inp.world_clip)
        inp.world.click(world, [state, inp.ticket], check_outputs, **CHECK)
    if inp.example_scene is not None:
        inp.open_example.click(functools.partial(open_example, inp, edit), [state],
                               [inp.status, *scene_outputs(fit, edit, export)], concurrency_id=RENDER)  # fmt: skip
    inp.ticket.change(
        functools.partial(prepare_checked, config), [state, inp.ticket],
        [inp.status, inp.crops, inp.trajectory, fit.mask, fit.fit], concurrency_id=COMPUTE,
    )  # fmt: skip


def wire_fit(fit: FitTab, edit: EditTab, export: ExportTab, state: gr.State, config: AppConfig) -> None:
    outputs = scene_outputs(fit, edit, export)
    fit.fit.click(request_fit, [state, fit.ticket, fit.preset], [fit.status, fit.ticket], **CHECK)
    fit.ticket.change(
        functools.partial(run_fit, config.fit_workdir, edit), [state, fit.preset, fit.max_frames, fit.effort, fit.mask],
        outputs, concurrency_id=COMPUTE,
    )  # fmt: skip
    fit.cancel.click(request_cancel, [state], [fit.status], **CHECK)
    fit.preset.change(preset_warning, [state, fit.preset], [fit.preset_note], **CHECK)
    fit.scene_upload.upload(functools.partial(open_scene, edit), [state, fit.scene_upload], outputs,
                            concurrency_id=COMPUTE)  # fmt: skip


def wire_edit(edit: EditTab, state: gr.State) -> None:
    outputs = [edit.image, edit.blend, edit.status]
    release_inputs = [state, edit.full_on_release, *edit.view_inputs]
    for slider in [edit.yaw, edit.pitch, *edit.edits]:
        slider.input(drag_render, [state, *edit.view_inputs], outputs, trigger_mode="always_last",
                     show_progress="hidden", concurrency_id=RENDER)  # fmt: skip
        slider.release(release_render, release_inputs, outputs, trigger_mode="always_last", concurrency_id=RENDER)
    edit.frame.release(frame_release, release_inputs, [edit.before, *outputs], concurrency_id=RENDER)
    for control in (edit.remove, edit.follow):
        control.input(release_render, release_inputs, outputs, concurrency_id=RENDER)
    edit.tab.select(functools.partial(refresh_directions, edit), [state], edit.direction_outputs, **CHECK)
    edit.learn.click(functools.partial(learn_directions, edit), [state], edit.direction_outputs,
                     concurrency_id=COMPUTE)  # fmt: skip
    for name, (yaw_deg, pitch_deg) in PRESET_VIEWS.items():
        # the sliders are set in the browser first, then the render reads them: what the sliders show is
        # what is rendered, however fast the buttons are pressed
        edit.view_buttons[name].click(None, None, [edit.yaw, edit.pitch], js=f"() => [{yaw_deg}, {pitch_deg}]").then(
            release_render, release_inputs, outputs, concurrency_id=RENDER
        )


def wire_export(export: ExportTab, edit: EditTab, state: gr.State) -> None:
    inputs = [state, export.quality, export.every_frame, export.orbit_path, export.orbit_views, *edit.view_inputs]
    for kind, button in export.buttons.items():
        button.click(functools.partial(run_export, kind), inputs, export.outputs, concurrency_id=COMPUTE)


def wire_setup(
    setup: SetupPanel, edit: EditTab, sessions: Sessions, state: gr.State, header: gr.Markdown, banner: gr.Markdown
) -> None:
    def use_local(session, path, progress=gr.Progress(track_tqdm=True)):
        return *reload_runtime(sessions, session, path, False), *direction_updates(edit, session)

    def download(session, progress=gr.Progress(track_tqdm=True)):
        return *reload_runtime(sessions, session, None, True), *direction_updates(edit, session)

    outputs = [setup.text, setup.group, header, banner, *edit.direction_outputs]
    setup.use_path.click(use_local, [state, setup.path], outputs, api_visibility="private", concurrency_id=COMPUTE)
    setup.retry.click(download, [state], outputs, api_visibility="private", concurrency_id=COMPUTE)


def painted_mask(value) -> np.ndarray | None:
    """The user's strokes on the ImageEditor as a boolean mask (None when nothing was painted)."""
    if not isinstance(value, dict):
        return None
    layers = [np.asarray(layer) for layer in value.get("layers") or [] if layer is not None]
    painted = None
    for layer in layers:
        if layer.ndim == 3 and layer.shape[-1] == 4:
            alpha = layer[..., 3] > 0
            painted = alpha if painted is None else painted | alpha
    if painted is None or not painted.any():
        return None
    return painted


def count_frames(path) -> int:
    import imageio_ffmpeg

    return imageio_ffmpeg.count_frames_and_secs(str(path))[0]
