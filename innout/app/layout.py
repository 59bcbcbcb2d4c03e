"""The studio's page as components: the four tabs and the setup panel, each built by a function that returns
its components in a dataclass, and the page's constants (theme, styles, preset hints, views, export kinds).

Nothing here reacts to anything: the handlers (``handlers``) say what changes, the wiring (``ui``) connects them.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from . import plots, texts
from .runtime import Runtime, example_clips, world_example_clip, world_example_scene

MAX_EDITS = 6  # slider slots; directions beyond this are listed but not shown
PRESET_HINTS = {
    "preview": "12 frames at most, 64² rays: 3 min 53 s for 12 frames with EG3D's full-size network on a 2-core "
    "CPU (measured 2026-12-07, preparation included)",
    "fast": "every frame and every loss term of the paper, batched: about 33 min for 200 frames on an H200 "
    "(extrapolated from its measured steps, 2026-11-30); GPU only (hours on a CPU)",
    "paper": "the paper's settings: about 46-48 min for 200 frames on an H200 (extrapolated from its measured steps, "
    "2026-11-30; the paper: about 3 h on an RTX A4000); days on a CPU",
}
PAPER_URL = "https://arxiv.org/abs/2302.04871"
NO_SCENE = (
    "No scene yet: fit a clip (steps 1 and 2) or open a saved scene (step 2); with the faces demo, open the "
    "synthetic example already fitted (step 1). The controls wake up with the scene."
)
PRESET_VIEWS = {"Input view": (0, 0), "Left": (-25, 0), "Right": (25, 0), "Above": (0, 15)}  # degrees
CSS = """
#render img, #blend img {image-rendering: auto;}
.status {min-height: 1.5em;}
#banner {border-left: 6px solid #d97706; background: #fef3c7; color: #451a03; padding: 0.4em 0.8em;}
#banner:empty, #banner.hidden {display: none;}
@media (max-width: 768px) {  /* phones: the images first, the controls under them */
  /* the render right above the sliders, small enough that both fit on the screen while one is dragged; the
     blend map goes below the controls */
  #edit-row {flex-direction: column;}
  #edit-images {display: contents;}
  #edit-view {order: 0;}
  #edit-controls {order: 1;}
  #blend {order: 2;}
  #edit-pair {flex-wrap: nowrap !important;}  /* the input and the render side by side, half the width each */
  #edit-pair > * {min-width: 0 !important; flex: 1 1 0 !important;}
  #before, #render {height: 180px !important; max-height: 180px;}
  #before img, #render img {max-height: 140px; object-fit: contain;}
}
"""
THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="amber", neutral_hue="slate")
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
    world_clip = world_example_clip()
    example_scene = world_example_scene() if runtime.demo == "faces" and world_clip else None
    with gr.Tab("1. Input", id="input"), gr.Row():
        with gr.Column(scale=1):
            # the faces demo's one thing that works at once: first, and the primary action
            open_example = gr.Button(
                "Open the synthetic example, already fitted: edit it at once",
                visible=example_scene is not None, elem_id="open-example", variant="primary", size="lg",
                interactive=False,
            )  # fmt: skip
            if example_scene is not None:
                gr.Markdown(
                    "Or bring your own clip below: with this demo generator (a small prior trained on cartoon heads) a "
                    "real face fits as a blur; the EG3D weights are what real faces need.", elem_id="demo-note",
                )  # fmt: skip
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
            prepare = gr.Button("Prepare", variant="secondary" if example_scene else "primary", elem_id="prepare",
                                interactive=False)  # fmt: skip
            world = gr.Button(
                "Or prepare the synthetic example to fit it yourself (a world head behind sunglasses, known cameras)",
                visible=world_clip is not None, elem_id="world-example", size="sm", interactive=False,
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
    blend_weight: gr.Slider  # the OOD object's blend as a weight, 0..1 (faded), shown live
    edits: list[gr.Slider]  # MAX_EDITS slots; which direction each shows is the session's ``shown_edits``
    directions_note: gr.Markdown
    learn: gr.Button
    view_buttons: dict[str, gr.Button]
    full_on_release: gr.Checkbox
    before: gr.Image
    image: gr.Image
    blend: gr.Image
    status: gr.Markdown

    @property
    def view_inputs(self) -> list:
        """The controls a ``View`` is made of, in ``view_of``'s order: the one source of truth."""
        return [self.frame, self.yaw, self.pitch, self.follow, self.remove, self.blend_weight, *self.edits]

    @property
    def direction_outputs(self) -> list:
        """What ``direction_updates`` sets: the slots, the note and the learn button."""
        return [*self.edits, self.directions_note, self.learn]


def edit_tab(runtime: Runtime) -> EditTab:
    edit_names = sorted(runtime.directions)[:MAX_EDITS]  # as the page opens; each page's load event updates them
    with gr.Tab("3. Edit", id="edit") as tab, gr.Row(elem_id="edit-row"):
        with gr.Column(scale=1, min_width=280, elem_id="edit-controls"):
            # every view control waits for a scene (a fit, or an opened scene): before one, nothing to move
            frame = gr.Slider(0, 1, value=0, step=1, label="Frame", elem_id="frame", interactive=False)
            # the edit sliders first (the main thing to drag: on a phone they sit right under the render), the
            # object's controls, then the orbit
            edits = []
            for i in range(MAX_EDITS):
                name = edit_names[i] if i < len(edit_names) else f"edit{i}"
                # the direction's own range: the drag preview's knots span exactly this range
                lo, hi = runtime.directions[name].value_range if name in runtime.directions else (-3, 3)
                edits.append(
                    gr.Slider(lo, hi, value=0, step=0.1, label=name, visible=i < len(edit_names),
                              elem_id=f"edit-slot-{i}", elem_classes="edit-slot", interactive=False)  # fmt: skip
                )
            directions_note = gr.Markdown(texts.directions_text(runtime, edit_names), elem_id="directions-note")
            # enabled by the page's load event, with its session (an earlier click would find none)
            learn = gr.Button(texts.learn_label(runtime), visible=texts.can_learn(runtime), size="sm",
                              elem_id="learn-directions", interactive=False)  # fmt: skip
            remove = gr.Checkbox(False, label="Remove the OOD object (blend weight b = 0)", elem_id="remove",
                                 interactive=False)  # fmt: skip
            blend_weight = gr.Slider(0, 1, value=1.0, step=0.05, elem_id="blend-weight", interactive=False,
                                     label="The OOD object's weight (1: as fitted, 0.5: faded, 0: gone)")  # fmt: skip
            yaw = gr.Slider(-45, 45, value=0, step=1, label="Orbit: yaw (degrees)", elem_id="yaw", interactive=False)
            pitch = gr.Slider(-30, 30, value=0, step=1, label="Orbit: pitch (degrees)", elem_id="pitch",
                              interactive=False)  # fmt: skip
            follow = gr.Checkbox(
                True, label="Orbit around the frame's own view (off: around frontal)", elem_id="follow",
                interactive=False,
            )  # fmt: skip
            with gr.Row():
                view_buttons = {
                    name: gr.Button(name, size="sm", elem_id=f"view-{name.split()[0].lower()}", interactive=False)
                    for name in PRESET_VIEWS
                }  # fmt: skip
            full_on_release = gr.Checkbox(True, label="Full quality when a slider is released")
        with gr.Column(scale=2, elem_id="edit-images"):
            with gr.Column(elem_id="edit-view"):
                with gr.Row(equal_height=True, elem_id="edit-pair"):
                    before = gr.Image(label="Input (the aligned frame)", height=400, elem_id="before",
                                      interactive=False)  # fmt: skip
                    image = gr.Image(label="Render", height=400, elem_id="render", interactive=False)
                status = gr.Markdown(NO_SCENE, elem_id="render-status", elem_classes="status")
            blend = gr.Image(label="Blend map: the OOD opacity of each pixel (what the model decided is not face)",
                             height=440, elem_id="blend", interactive=False)  # fmt: skip
    return EditTab(tab, frame, yaw, pitch, follow, remove, blend_weight, edits, directions_note, learn, view_buttons,
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


@dataclass
class Page:
    """Every component a handler may update, by tab; handlers answer ``{component: update}`` over these."""

    inp: InputTab
    fit: FitTab
    edit: EditTab
    export: ExportTab
    header: gr.Markdown
    banner: gr.Markdown
    setup: SetupPanel | None = None

    @property
    def scene_outputs(self) -> list:
        """What a new scene updates (``handlers.scene_updates``)."""
        fit, edit, export = self.fit, self.edit, self.export
        return [
            fit.status, fit.losses, fit.ood_plot, *edit.view_inputs, *edit.view_buttons.values(), edit.before,
            edit.image, edit.blend, edit.status, export.video, export.file, export.model3d, export.note,
            *export.buttons.values(),
        ]  # fmt: skip

    @property
    def check_outputs(self) -> list:
        """What the cheap input checks and the preparation update."""
        return [self.inp.status, self.inp.ticket, self.inp.crops, self.inp.trajectory, self.fit.mask, self.fit.fit]
