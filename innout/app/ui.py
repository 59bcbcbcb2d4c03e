"""The Gradio studio: input -> preprocessing preview -> fit -> live edits -> exports.

Only wiring lives here: every handler calls ``StudioSession`` (innout.app.session), which calls the
package's public APIs. Handlers never raise into the page: a ``StudioError`` becomes a message in the
step's status box and the app stays usable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import gradio as gr
import numpy as np

from ..preprocess.pipeline import PrepareOptions
from . import plots, texts
from .runtime import Runtime, example_clips, gpu, learn_demo_directions, load_runtime, world_example_clip
from .session import StudioError, StudioSession, View

MAX_EDITS = 6  # slider slots; directions beyond this are listed but not shown
PRESET_HINTS = {
    "preview": "12 frames, 64² rays: about 3 min with the demo generator on a 2-core CPU (measured); longer with EG3D",
    "fast": "every frame, the paper's losses, batched: GPU only (hours on a CPU)",
    "paper": "the paper's settings: about 3 h for 200 frames on an RTX A4000 (paper); days on a CPU",
}
CSS = "#render img, #blend img {image-rendering: auto;} .status {min-height: 1.5em;}"


@dataclass
class AppConfig:
    max_seconds: float = 60.0
    tmp_root: str | None = None
    fit_workdir: str | None = None
    prepare_options: PrepareOptions | None = None


def build_ui(runtime: Runtime, config: AppConfig | None = None) -> gr.Blocks:
    config = config or AppConfig()
    edit_names = sorted(runtime.directions)[:MAX_EDITS]

    with gr.Blocks(title="In-N-Out studio") as demo:
        state = gr.State(None, delete_callback=lambda s: s.close() if s is not None else None)
        gr.Markdown(
            "# In-N-Out studio\nReconstruct a face video in 3D with EG3D plus a second radiance field for what "
            "EG3D has never seen (make-up, masks, glasses), then edit it: sliders, camera orbit, object removal."
        )
        header = gr.Markdown(texts.header(runtime), elem_id="header")

        # --- setup panel: shown while there is no generator ------------------------------------------
        with gr.Group(visible=not runtime.ready, elem_id="setup") as setup_panel:
            setup_text = gr.Markdown(texts.setup_text(runtime))
            with gr.Row():
                checkpoint_path = gr.Textbox(label="Local path of ffhqrebalanced512-128.pkl", scale=3)
                use_path = gr.Button("Use this file", scale=1)
                retry = gr.Button("Retry download", scale=1)

        # --- 1. input ---------------------------------------------------------------------------------
        with gr.Tab("1. Input", id="input"), gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(
                    label="A face video or photo", file_types=["video", "image", ".mp4", ".mov", ".webm",
                    ".mkv", ".gif"], elem_id="upload",
                )  # fmt: skip
                if example_clips():
                    gr.Examples(example_clips(), inputs=[upload], label="Example (LivePortrait, MIT licence)")
                prepare_button = gr.Button("Prepare", variant="primary", elem_id="prepare")
                world_example = world_example_clip()
                world_button = gr.Button(
                    "Or: the synthetic example (a world head behind sunglasses, known cameras, no face detection)",
                    visible=world_example is not None, elem_id="world-example", size="sm",
                )  # fmt: skip
                prepare_status = gr.Markdown(elem_id="prepare-status", elem_classes="status")
            with gr.Column(scale=2):
                crops = gr.Gallery(label="Aligned crops with landmarks", columns=4, height=330, elem_id="crops")
                trajectory = gr.Plot(label="Camera trajectory", elem_id="trajectory")

        # --- 2. fit -----------------------------------------------------------------------------------
        with gr.Tab("2. Fit", id="fit"), gr.Row():
            with gr.Column():
                preset = gr.Radio(
                    ["preview", "fast", "paper"], value="preview", label="Preset",
                    info=" · ".join(f"{k}: {v}" for k, v in PRESET_HINTS.items()), elem_id="preset",
                )  # fmt: skip
                with gr.Accordion("Advanced", open=False):
                    max_frames = gr.Slider(
                        0, 300, value=0, step=1, label="Frames to fit (0 = the preset's)", elem_id="max-frames"
                    )
                    effort = gr.Slider(
                        0.05, 1.0, value=1.0, step=0.05, label="Effort (share of the preset's optimisation steps)",
                        elem_id="effort",
                    )  # fmt: skip
                with gr.Accordion("Optional: paint the OOD object on the first frame", open=False):
                    mask_editor = gr.ImageEditor(
                        label="Paint over the object (any colour); leave empty for a fully automatic fit",
                        type="numpy", sources=[], layers=False, height=360, elem_id="mask",
                    )  # fmt: skip
                with gr.Row():
                    fit_button = gr.Button("Fit", variant="primary", elem_id="fit-button")
                    cancel_button = gr.Button("Cancel", variant="stop", elem_id="cancel")
                scene_upload = gr.File(label="…or open a scene file (.safetensors)", file_types=[".safetensors"])
                fit_status = gr.Markdown(elem_id="fit-status", elem_classes="status")
            with gr.Column():
                losses = gr.Plot(label="Losses", elem_id="losses")
                ood_plot = gr.Plot(label="OOD opacity per frame", elem_id="ood-plot")

        # --- 3. edit ----------------------------------------------------------------------------------
        with gr.Tab("3. Edit", id="edit"), gr.Row():
            with gr.Column(scale=1):
                frame = gr.Slider(0, 1, value=0, step=1, label="Frame", elem_id="frame")
                yaw = gr.Slider(-45, 45, value=0, step=1, label="Orbit: yaw (degrees)", elem_id="yaw")
                pitch = gr.Slider(-30, 30, value=0, step=1, label="Orbit: pitch (degrees)", elem_id="pitch")
                follow = gr.Checkbox(True, label="Orbit around the frame's own view (off: around frontal)")
                with gr.Row():
                    view_input = gr.Button("Input view", size="sm")
                    view_left = gr.Button("Left", size="sm")
                    view_right = gr.Button("Right", size="sm")
                    view_up = gr.Button("Above", size="sm")
                edit_sliders = []
                for i in range(MAX_EDITS):
                    name = edit_names[i] if i < len(edit_names) else f"edit{i}"
                    # the direction's own range: the drag preview's knots span exactly this range
                    lo, hi = runtime.directions[name].value_range if name in runtime.directions else (-3, 3)
                    edit_sliders.append(
                        gr.Slider(lo, hi, value=0, step=0.1, label=name, visible=i < len(edit_names),
                                  elem_id=f"edit-{name}")
                    )  # fmt: skip
                if not edit_names:
                    gr.Markdown(texts.no_directions_text(runtime))
                remove = gr.Checkbox(False, label="Remove the OOD object (blend weight b = 0)", elem_id="remove")
                full_on_release = gr.Checkbox(True, label="Full quality when a slider is released")
            with gr.Column(scale=2):
                with gr.Row():
                    image = gr.Image(label="Render", height=420, elem_id="render", interactive=False)
                    blend = gr.Image(label="Blend map: what the model decided is OOD", height=420,
                                     elem_id="blend", interactive=False)  # fmt: skip
                render_status = gr.Markdown(elem_id="render-status", elem_classes="status")

        # --- 4. export --------------------------------------------------------------------------------
        with gr.Tab("4. Export", id="export"), gr.Row():
            with gr.Column(scale=1):
                export_quality = gr.Radio(
                    ["preview", "full"], value="full", label="Export quality", elem_id="export-quality"
                )
                video_button = gr.Button("Edited video (pasted back, with audio)", elem_id="export-video")
                crops_button = gr.Button("Aligned edited clip", elem_id="export-crops")
                with gr.Row():
                    orbit_path = gr.Dropdown(["orbit", "yaw-sweep"], value="orbit", label="Camera path")
                    orbit_views = gr.Slider(8, 120, value=48, step=1, label="Views")
                orbit_button = gr.Button("Novel-view clip of this frame", elem_id="export-orbit")
                png_button = gr.Button("PNG of this frame", elem_id="export-png")
                mesh_button = gr.Button("Geometry (.glb)", elem_id="export-mesh")
                export_status = gr.Markdown(elem_id="export-status", elem_classes="status")
            with gr.Column(scale=2):
                export_video_view = gr.Video(label="Exported video", elem_id="export-player")
                export_file = gr.File(label="Download", elem_id="export-file")
                model3d = gr.Model3D(label="Geometry", elem_id="model3d")

        # --- handlers ---------------------------------------------------------------------------------
        def new_session():
            return StudioSession(runtime, tmp_root=config.tmp_root)

        demo.load(new_session, outputs=state)

        def view_of(frame_v, yaw_v, pitch_v, follow_v, remove_v, *edit_values) -> View:
            edits = {n: float(v) for n, v in zip(edit_names, edit_values, strict=False) if float(v or 0) != 0}
            return View(int(frame_v), math.radians(yaw_v), math.radians(pitch_v), edits, bool(remove_v), bool(follow_v))

        view_inputs = [frame, yaw, pitch, follow, remove, *edit_sliders]

        def do_prepare(session: StudioSession, file, progress=gr.Progress(track_tqdm=True)):
            try:
                path = file if isinstance(file, str) or file is None else getattr(file, "name", file)
                prepared = session.prepare(path, max_seconds=config.max_seconds, options=config.prepare_options)
            except Exception as exc:  # noqa: BLE001 - shown in the page
                return texts.fail(exc), None, None, None
            first = np.asarray(prepared.crops[0])
            text = texts.ok("Prepared. " + prepared.report().replace("\n", " · "))
            gallery = plots.crops_with_landmarks(prepared)
            figure = plots.camera_trajectory(prepared.cameras, prepared.frame_indices)
            return text, gallery, figure, {"background": first, "layers": [], "composite": first}

        prepare_outputs = [prepare_status, crops, trajectory, mask_editor]
        prepare_button.click(do_prepare, [state, upload], prepare_outputs, concurrency_id="compute")
        world_button.click(lambda s, p=gr.Progress(track_tqdm=True): do_prepare(s, world_example, p), [state],
                           prepare_outputs, concurrency_id="compute")  # fmt: skip

        scene_outputs = [fit_status, losses, ood_plot, frame, image, blend, render_status, *edit_sliders]

        def scene_loaded(session: StudioSession, message: str):
            scene = session.require_scene()
            session.warm_drag(0)
            first = session.render(View(edits={}), quality="preview")
            frames = scene.data.source.frames
            slider_updates = [gr.Slider(value=0) for _ in edit_sliders]
            return (
                texts.ok(message),
                plots.loss_chart(scene.data.history),
                plots.ood_chart(session.ood_opacity_series(), frames),
                gr.Slider(minimum=0, maximum=max(scene.n_frames - 1, 1), value=0, step=1,
                          label=f"Frame (fitted frame index; {scene.n_frames} frames)"),
                first.image,
                plots.blend_map(first.ood_opacity),
                "Preview render. Move a slider to edit.",
                *slider_updates,
            )  # fmt: skip

        def unchanged(message: str):
            return (message, *[gr.skip()] * (len(scene_outputs) - 1))

        @gpu(duration=600)
        def do_fit(session: StudioSession, preset_v, frames_v, effort_v, mask_v, progress=gr.Progress()):
            def report(stage, done, total, last):
                loss = ", ".join(f"{k} {v:.3g}" for k, v in list(last.items())[:2])
                progress((done, total), desc=f"{stage}: {done}/{total} {loss}")

            try:
                mask = _painted_mask(mask_v)
                session.fit(
                    preset_v, max_frames=int(frames_v) or None, effort=float(effort_v), mask=mask, progress=report,
                    workdir=config.fit_workdir,
                )  # fmt: skip
                scene = session.require_scene()
                return scene_loaded(session, f"Fitted {scene.n_frames} frames ({preset_v}). Go to step 3 to edit.")
            except Exception as exc:  # noqa: BLE001 - shown in the page
                return unchanged(texts.fail(exc))

        fit_event = fit_button.click(
            do_fit, [state, preset, max_frames, effort, mask_editor], scene_outputs, concurrency_id="compute"
        )

        def do_cancel(session: StudioSession):
            if session is not None:
                session.cancel.set()
            return "**Cancelling…** finished stages and the last checkpoint are cached: Fit again resumes."

        cancel_button.click(do_cancel, [state], [fit_status], cancels=[fit_event], queue=False)

        def do_open_scene(session: StudioSession, file):
            try:
                if file is None:
                    raise StudioError("No scene file given.")
                session.load_scene(file if isinstance(file, str) else file.name)
                return scene_loaded(session, f"Opened a scene with {session.require_scene().n_frames} frames.")
            except Exception as exc:  # noqa: BLE001
                return unchanged(texts.fail(exc))

        scene_upload.upload(do_open_scene, [state, scene_upload], scene_outputs, concurrency_id="compute")

        @gpu
        def do_render(session: StudioSession, drag: bool, full: bool, *values):
            try:
                view = view_of(*values)
                quality = "full" if (full and not drag) else "preview"
                result = session.render(view, quality=quality, drag=drag)
                key = "drag" if drag else quality
                what = "drag preview (interpolated edit planes)" if drag else f"{quality} render"
                status = texts.describe(view, what, session.timings[key])
                return result.image, plots.blend_map(result.ood_opacity), status
            except Exception as exc:  # noqa: BLE001
                return gr.skip(), gr.skip(), texts.fail(exc)

        render_outputs = [image, blend, render_status]

        def drag_render(session, *values):
            return do_render(session, True, False, *values)

        def release_render(session, full, *values):
            return do_render(session, False, bool(full), *values)

        for slider in [yaw, pitch, *edit_sliders]:
            slider.input(drag_render, [state, *view_inputs], render_outputs, trigger_mode="always_last",
                         show_progress="hidden", concurrency_id="render")  # fmt: skip
            slider.release(release_render, [state, full_on_release, *view_inputs], render_outputs,
                           trigger_mode="always_last", concurrency_id="render")  # fmt: skip

        def frame_release(session, full, *values):
            try:
                session.warm_drag(int(values[0]))
            except Exception as exc:  # noqa: BLE001
                return gr.skip(), gr.skip(), texts.fail(exc)
            return do_render(session, False, bool(full), *values)

        frame.release(frame_release, [state, full_on_release, *view_inputs], render_outputs, concurrency_id="render")
        for control in (remove, follow):
            control.input(release_render, [state, full_on_release, *view_inputs], render_outputs,
                          concurrency_id="render")  # fmt: skip

        def preset_view(yaw_deg, pitch_deg):
            def set_view(session, full, *values):
                values = list(values)
                values[1], values[2] = yaw_deg, pitch_deg
                return (yaw_deg, pitch_deg, *do_render(session, False, bool(full), *values))

            return set_view

        for button, (y, p) in ((view_input, (0, 0)), (view_left, (-25, 0)), (view_right, (25, 0)), (view_up, (0, 15))):
            button.click(preset_view(y, p), [state, full_on_release, *view_inputs], [yaw, pitch, *render_outputs],
                         concurrency_id="render")  # fmt: skip

        # --- exports ----------------------------------------------------------------------------------
        export_outputs = [export_status, export_video_view, export_file, model3d]

        def exporter(kind: str):
            @gpu(duration=600)
            def run(session: StudioSession, quality, path_v, n_views, *values, progress=gr.Progress()):
                def report(stage, done, total, _):
                    progress((done, total), desc=f"{stage}: frame {done}/{total}")

                try:
                    view = view_of(*values)
                    if kind == "video" or kind == "crops":
                        out = session.export_video(view, paste=kind == "video", quality=quality, progress=report)
                    elif kind == "orbit":
                        out = session.export_orbit(view, path=path_v, n_views=int(n_views), quality=quality,
                                                   progress=report)  # fmt: skip
                    elif kind == "png":
                        out = session.export_png(view)
                        return texts.ok(f"Wrote {out.name}"), None, str(out), gr.skip()
                    else:
                        out = session.export_mesh(view)
                        return texts.ok(f"Wrote {out.name}"), None, str(out), str(out)
                    frames = _count_frames(out)
                    return texts.ok(f"Wrote {out.name}: {frames} frames"), str(out), str(out), gr.skip()
                except Exception as exc:  # noqa: BLE001
                    return texts.fail(exc), gr.skip(), gr.skip(), gr.skip()

            return run

        export_inputs = [state, export_quality, orbit_path, orbit_views, *view_inputs]
        for button, kind in ((video_button, "video"), (crops_button, "crops"), (orbit_button, "orbit"),
                             (png_button, "png"), (mesh_button, "mesh")):  # fmt: skip
            button.click(exporter(kind), export_inputs, export_outputs, concurrency_id="compute")

        # --- setup ------------------------------------------------------------------------------------
        def reload_runtime(path: str | None, download: bool):
            fresh = load_runtime(checkpoint=path or None, device=runtime.device, download=download)
            if fresh.ready:
                runtime.__dict__.update(fresh.__dict__)
                learn_demo_directions(runtime)
            return texts.setup_text(fresh), gr.Group(visible=not fresh.ready), texts.header(runtime)

        def use_local(path: str, progress=gr.Progress(track_tqdm=True)):
            return reload_runtime(path, False)

        def download_again(progress=gr.Progress(track_tqdm=True)):
            return reload_runtime(None, True)

        use_path.click(use_local, [checkpoint_path], [setup_text, setup_panel, header])
        retry.click(download_again, None, [setup_text, setup_panel, header])

    return demo


def _painted_mask(value) -> np.ndarray | None:
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


def _count_frames(path) -> int:
    import imageio_ffmpeg

    return imageio_ffmpeg.count_frames_and_secs(str(path))[0]


