"""What the studio's events do: each handler takes the page's components (``Page``) and the page's session
first, calls ``StudioSession`` (innout.app.session), which calls the package's public APIs, and answers
``{component: update}``: only what it changes. Components left out are unchanged.

Handlers never raise into the page: every failure reaches it through ``failed`` (a ``StudioError``'s message,
or any other exception described by ``texts.fail``) in the status box of the step, and the app stays usable.
"""

from __future__ import annotations

import math
import os
from typing import Any

import gradio as gr
import numpy as np

from . import plots, texts
from .fit_times import measured_hint
from .layout import MAX_EDITS, PRESET_HINTS, Page
from .progress import OverallProgress, planned_stages
from .runtime import MAX_GPU_SECONDS, gpu, load_runtime, on_zero_gpu
from .session import StudioError, StudioSession, View

Updates = dict[Any, Any]  # component -> its new value or gr.update


def live(session: StudioSession | None) -> StudioSession:
    """The page's session, marked as in use; a StudioError while the page is still connecting (its load event not
    yet done) or once the server closed it."""
    if session is None:
        raise StudioError("The page is still connecting: try again in a moment.")
    session.touch()
    return session


def failed(status: gr.Markdown, exc: BaseException) -> Updates:
    """The one way a failure reaches the page: its message (``texts.fail``: a ``StudioError``'s own words, any
    other exception described) in the status box of the step; the caller adds what must be cleared."""
    return {status: texts.fail(exc)}


def view_of(edit_names: list[str], frame_v, yaw_v, pitch_v, follow_v, remove_v, blend_v, *edit_values) -> View:
    """The view the controls show (in ``EditTab.view_inputs``' order); ``edit_names`` are the slots' directions
    (the session's ``shown_edits``)."""
    edits = {n: float(v) for n, v in zip(edit_names, edit_values, strict=False) if float(v or 0) != 0}
    blend = 1.0 if blend_v is None else float(blend_v)
    return View(int(frame_v), math.radians(yaw_v), math.radians(pitch_v), edits, bool(remove_v), bool(follow_v), blend)


# --- 1. input ------------------------------------------------------------------------------------------------
def upload_path(file) -> str | None:
    """The server path of a Gradio upload (a str or a file object)."""
    return file if isinstance(file, str) or file is None else getattr(file, "name", file)


def retired(page: Page) -> Updates:
    """What a retired (or refused) input leaves: no crops, no cameras, no mask, Fit off."""
    inp, fit = page.inp, page.fit
    return {inp.crops: None, inp.trajectory: None, fit.mask: None, fit.fit: gr.Button(interactive=False)}


def input_changed(page: Page, max_seconds: float, session: StudioSession, file) -> Updates:
    """Any change of the upload (a new file, an example picked, the file removed): the prepared clip is retired at
    once (Fit off, its crops and mask gone) and the new input gets the cheap checks, so a bad file is said at once."""
    inp = page.inp
    cleared = retired(page)
    if session is None:
        return cleared
    path = upload_path(file)
    session.forget_input()
    if path is None:
        return cleared | {inp.status: ""}
    try:
        checked = session.check(path, max_seconds=max_seconds)
    except StudioError as exc:
        return cleared | failed(inp.status, exc)
    return cleared | {inp.status: f"{checked.name}: ready. Press Prepare to detect the face and align the frames."}


def check_upload(page: Page, max_seconds: float, session: StudioSession, file, ticket: int) -> Updates:
    """Prepare's first step, outside the compute queue: refuse a bad input at once (and forget the old
    one); a good one bumps the ticket, which starts the preparation."""
    inp, fit = page.inp, page.fit
    try:
        checked = live(session).check(upload_path(file), max_seconds=max_seconds)
    except StudioError as exc:
        return failed(inp.status, exc) | retired(page)
    message = f"Preparing {checked.name}: face detection, alignment, cameras…"
    return {inp.status: message, inp.ticket: ticket + 1, fit.fit: gr.Button(interactive=False)}


def prepare_checked(page: Page, config, session: StudioSession, _ticket: int, progress=gr.Progress(track_tqdm=True)):
    inp, fit = page.inp, page.fit
    cleared = retired(page)
    if session is None or session.checked is None:
        return failed(inp.status, StudioError("Nothing to prepare: upload a video or a photo first.")) | cleared
    try:
        prepared = session.prepare(session.checked, max_seconds=config.max_seconds, options=config.prepare_options)
    except Exception as exc:  # noqa: BLE001 - shown in the page
        return failed(inp.status, exc) | cleared
    first = np.asarray(prepared.crops[0])
    return {
        inp.status: texts.ok(f"Prepared {session.input_name}. " + prepared.report().replace("\n", " · ")),
        inp.crops: plots.crops_with_landmarks(prepared),
        inp.trajectory: plots.camera_trajectory(prepared.cameras, prepared.frame_indices),
        fit.mask: {"background": first, "layers": [], "composite": first},
        fit.fit: gr.Button(interactive=True),
    }


def open_example(page: Page, session: StudioSession) -> Updates:
    try:
        live(session).open_example(page.inp.example_scene, page.inp.world_clip)
        message = "Opened the synthetic example, fitted beforehand with the preview preset: here it is, ready to edit."
        return {page.inp.status: texts.ok(message)} | scene_updates(page, session, message)
    except Exception as exc:  # noqa: BLE001 - shown in the page
        return failed(page.inp.status, exc)


# --- 2. fit --------------------------------------------------------------------------------------------------
def preset_warning(session: StudioSession, preset_v: str, frames_v=0, effort_v=1.0) -> str:
    """Said when the preset, frames or effort change, before any Fit: the slow presets on a CPU, and how long this
    fit will take here (per-step times measured in earlier fits x this fit's steps), or the latest fit's time."""
    if session is None:
        return ""
    estimate = session.fit_estimate(preset_v, max_frames=int(frames_v or 0) or None, effort=float(effort_v or 1.0))
    hint = estimate or measured_hint(preset_v, session.device_key)
    measured = f"The {preset_v} preset, {hint}." if hint else ""
    if preset_v == "preview" or session.runtime.device.startswith("cuda"):
        return measured
    return (
        f"**Warning:** the {preset_v} preset on a CPU takes many hours to days ({PRESET_HINTS[preset_v]}). "
        f"Use preview here, or a GPU. {measured}"
    ).strip()


def request_fit(page: Page, session: StudioSession, ticket: int, preset_v: str, frames_v=0, effort_v=1.0) -> Updates:
    fit = page.fit
    try:
        live(session).request_fit()
    except StudioError as exc:
        return failed(fit.status, exc)
    warning = preset_warning(session, preset_v, frames_v, effort_v)
    message = f"{warning} Fitting {session.input_name} with the {preset_v} preset: waiting for the compute…".strip()
    return {fit.status: message, fit.ticket: ticket + 1}


def request_cancel(page: Page, session: StudioSession) -> Updates:
    if session is not None and session.request_cancel():
        text = "**Cancelling…** the fit stops at its next step (finished stages and the last checkpoint are cached)."
    else:
        text = "**Nothing to cancel:** no fit is running."
    return {page.fit.status: text}


def scene_updates(page: Page, session: StudioSession, message: str) -> Updates:
    """Everything a new scene resets: status, charts, every view control (to the input view, no edits,
    object kept), the first render, the export buttons (enabled) and the previous scene's exports (gone)."""
    fit, edit, export = page.fit, page.edit, page.export
    scene = session.require_scene()
    session.warm_drag(0)
    first = session.render(View(edits={}), quality="preview")
    session.showing(View(edits={}), "preview")
    frames = scene.data.source.frames
    return {
        fit.status: texts.ok(message),
        fit.losses: plots.loss_chart(scene.data.history),
        fit.ood_plot: plots.ood_chart(session.ood_opacity_series(), frames),
        edit.frame: gr.Slider(minimum=0, maximum=max(scene.n_frames - 1, 1), value=0, step=1, interactive=True,
                              label=f"Frame (fitted frame index; {scene.n_frames} frames)"),  # fmt: skip
        edit.yaw: gr.Slider(value=0, interactive=True),
        edit.pitch: gr.Slider(value=0, interactive=True),
        edit.follow: gr.Checkbox(value=True, interactive=True),
        edit.remove: gr.Checkbox(value=False, interactive=True),
        edit.blend_weight: gr.Slider(value=1.0, interactive=True),
        **{slider: gr.Slider(value=0, interactive=True) for slider in edit.edits},
        **{button: gr.Button(interactive=True) for button in edit.view_buttons.values()},
        edit.before: session.input_crop(0),
        edit.image: first.image,
        edit.blend: plots.blend_map_with_scale(first.ood_opacity),
        edit.status: "Preview render of the input view. Move a slider to edit.",
        export.video: None,
        export.file: None,
        export.model3d: None,
        export.note: session.video_note(),
        **{button: gr.Button(interactive=True) for button in export.buttons.values()},
    }


SLICE_SECONDS = float(os.environ.get("INNOUT_GPU_SLICE_SECONDS", 90))  # work per ZeroGPU call (declared: 120 s)


@gpu(duration=MAX_GPU_SECONDS)
def fit_slice(session: StudioSession, preset_v, frames_v, effort_v, mask, workdir, report, budget) -> bool:
    """One ZeroGPU call of a fit: the fit runs for ``budget`` seconds and stops at a checkpoint (True: it ended)."""
    from ..fit import FitUnfinished, time_budget

    session.fit_requested = True  # between slices the fit is still the page's, and Cancel still reaches it
    try:
        with time_budget(budget):
            session.fit(
                preset_v, max_frames=int(frames_v) or None, effort=float(effort_v), mask=mask,
                progress=report, workdir=workdir,
            )  # fmt: skip
    except FitUnfinished:
        return False
    return True


def fit_in_slices(session: StudioSession, preset_v, frames_v, effort_v, mask, workdir, report) -> int:
    """The whole fit: on ZeroGPU as slices of ``SLICE_SECONDS`` (one GPU call each), elsewhere in one call. A spent
    GPU quota leaves the fit resumable and says so. Returns the number of calls."""
    budget = SLICE_SECONDS if on_zero_gpu() else None
    slices, first_note = 0, None
    while True:
        slices += 1
        try:
            ended = fit_slice(session, preset_v, frames_v, effort_v, mask, workdir, report, budget)
            first_note = session.fit_resumed if first_note is None else first_note  # the fit's start, not a slice's
            if ended:
                session.last_fit_slices, session.fit_resumed = slices, first_note
                return slices
        except Exception as exc:  # a visitor's GPU quota is spent: the fit waits, resumable, in the cache
            if "quota" not in str(exc).lower():
                raise
            raise StudioError(
                f"The GPU quota ran out after {slices - 1} slice(s) of this fit: what is done is kept. Press Fit "
                f"again (same settings) when the quota allows; the fit continues from its last checkpoint. ({exc})"
            ) from exc


def run_fit(
    page: Page, workdir, session: StudioSession, preset_v, frames_v, effort_v, mask_v, progress=gr.Progress()
):
    """The fit, as a stream: first the status says the fit has started (the request's "waiting for the compute"
    would otherwise stay under the progress bar all along), then the scene's updates when it ends. On ZeroGPU the
    fit runs as slices of ``SLICE_SECONDS``, one GPU call each, one after another under the one progress bar."""
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
        name = live(session).input_name
        yield {page.fit.status: f"Fitting {name} with the {preset_v} preset: started."}
        fit_in_slices(session, preset_v, frames_v, effort_v, mask, workdir, report)
        scene = session.require_scene()
        resumed = f" {session.fit_resumed}" if session.fit_resumed else ""
        message = f"Fitted {scene.n_frames} frames of {name} ({preset_v}).{resumed} Go to step 3 to edit."
        gr.Info(message, title="Fit done")  # a fit takes minutes: said wherever the user has gone meanwhile
        yield scene_updates(page, session, message)
    except Exception as exc:  # noqa: BLE001 - shown in the page
        yield failed(page.fit.status, exc)


def open_scene(page: Page, session: StudioSession, file) -> Updates:
    try:
        if file is None:
            raise StudioError("No scene file given.")
        live(session).load_scene(file if isinstance(file, str) else file.name)
        return scene_updates(page, session, f"Opened a scene with {session.require_scene().n_frames} frames.")
    except Exception as exc:  # noqa: BLE001
        return failed(page.fit.status, exc)


# --- 3. edit -------------------------------------------------------------------------------------------------
@gpu(duration=30)  # a full-quality frame: 28 ms on an H200, seconds on a CPU
def render_view(page: Page, session: StudioSession, drag: bool, full: bool, *values) -> Updates:
    edit = page.edit
    try:
        view = view_of(live(session).shown_edits, *values)
        quality = "full" if (full and not drag) else "preview"
        key = "drag" if drag else quality
        if not session.answer_is_current(view, key):
            return {}  # a late drag preview of the view already rendered sharper: nothing to do
        result = live(session).render(view, quality=quality, drag=drag)
        if not session.answer_is_current(view, key):
            return {}  # the release's sharper render of this view came first: keep it
        session.showing(view, key)
        what = "drag preview (interpolated edit planes)" if drag else f"{quality} render"
        return {
            edit.image: result.image,
            edit.blend: plots.blend_map_with_scale(result.ood_opacity),
            edit.status: texts.describe(view, what, session.timings[key]),
        }
    except Exception as exc:  # noqa: BLE001
        return failed(edit.status, exc)


def drag_render(page: Page, session, *values) -> Updates:
    return render_view(page, session, True, False, *values)


def release_render(page: Page, session, full, *values) -> Updates:
    return render_view(page, session, False, bool(full), *values)


def frame_release(page: Page, session, full, *values) -> Updates:
    """A new frame: its input crop beside the render, and the knots that make drags on it fast."""
    try:
        live(session).warm_drag(int(values[0]))
        before = session.input_crop(int(values[0]))
    except Exception as exc:  # noqa: BLE001
        return failed(page.edit.status, exc)
    return {page.edit.before: before} | render_view(page, session, False, bool(full), *values)


def direction_updates(page: Page, session: StudioSession, message: str = "", *, reset: bool = False) -> Updates:
    """The edit slots for the directions this page can use now (learned, installed or set up since the
    page was built): a slot whose direction changed is relabelled, re-ranged and set to 0; unchanged slots
    keep their values (unless ``reset``). Then the note (with ``message``) and the learn button."""
    edit = page.edit
    names = session.sync_directions()[:MAX_EDITS]
    runtime = session.runtime
    updates: Updates = {}
    if names != session.shown_edits or reset:
        for i, slot in enumerate(edit.edits):
            if i < len(names):
                lo, hi = runtime.directions[names[i]].value_range
                updates[slot] = gr.Slider(minimum=lo, maximum=hi, value=0, label=names[i], visible=True,
                                          interactive=session.scene is not None)  # fmt: skip
            else:
                updates[slot] = gr.Slider(value=0, visible=False)
        session.shown_edits = names
    updates[edit.directions_note] = (f"{message}\n\n" if message else "") + texts.directions_text(runtime, names)
    can_learn = texts.can_learn(runtime)
    updates[edit.learn] = gr.Button(value=texts.learn_label(runtime), visible=True, interactive=True) if can_learn \
        else gr.Button(visible=False)  # fmt: skip
    return updates


def refresh_directions(page: Page, session: StudioSession) -> Updates:
    """On opening the Edit tab: direction files installed while the app runs become sliders (cheap: a folder scan)."""
    if session is None:
        return {}
    session.runtime.refresh_directions()
    return direction_updates(page, session)


@gpu(duration=MAX_GPU_SECONDS)
def learn_directions(page: Page, session: StudioSession, progress=gr.Progress(track_tqdm=True)) -> Updates:
    """The page's 'Learn ...' button: the standard directions of this generator, with progress; the sliders
    appear when it finishes."""
    try:
        learned, note = live(session).learn_directions(
            progress=lambda done, total: progress((done, total), desc=f"labelling samples: {done}/{total}")
        )
    except Exception as exc:  # noqa: BLE001 - shown in the page
        if session is None:
            return failed(page.edit.directions_note, exc)
        return direction_updates(page, session, texts.fail(exc))
    return direction_updates(page, session, texts.ok(f"Learned {', '.join(learned)}.{note}"), reset=True)


# --- 4. export -----------------------------------------------------------------------------------------------
@gpu(duration=MAX_GPU_SECONDS)
def run_export(
    page: Page, kind: str, session: StudioSession, quality, every_frame, path_v, n_views, *values,
    progress=gr.Progress(),
) -> Updates:  # fmt: skip
    """One export of the view on screen. A failure clears the download boxes: nothing stale is offered."""
    export = page.export

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
            return {export.status: texts.ok(f"Wrote {out.name}"), export.file: str(out)}
        else:
            out, mesh = session.export_mesh(view)
            n = mesh.counts()  # as the file holds them
            parts = (f"{n['triangles']} triangles; face part {n['face_vertices']} vertices, OOD part "
                     f"{n['ood_vertices']} vertices")  # fmt: skip
            status = texts.ok(f"Wrote {out.name}: {parts}, density level {mesh.level:.3g}")
            return {export.status: status, export.file: str(out), export.model3d: str(out)}  # the video stays
        status = texts.ok(f"Wrote {out.name}: {count_frames(out)} frames")
        return {export.status: status, export.video: str(out), export.file: str(out)}  # the geometry stays
    except Exception as exc:  # noqa: BLE001
        return failed(export.status, exc) | {export.video: None, export.file: None, export.model3d: None}


# --- setup (allow_setup only) --------------------------------------------------------------------------------
def reload_runtime(page: Page, sessions, session: StudioSession, path: str | None, download: bool) -> Updates:
    """Load the weights for this page and for pages opened after it; then the page's header, banner, panel
    and sliders follow."""
    fresh = load_runtime(checkpoint=path or None, device=session.runtime.device, download=download)
    if fresh.ready:
        session.use_runtime(fresh)
        sessions.runtime = fresh
    shown = fresh if fresh.ready else session.runtime
    updates = {page.header: texts.header(shown), page.banner: texts.banner(shown)}
    if page.setup is not None:
        updates |= {page.setup.text: texts.setup_text(fresh), page.setup.group: gr.Group(visible=not fresh.ready)}
    return updates | direction_updates(page, session)


# --- helpers -------------------------------------------------------------------------------------------------
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

