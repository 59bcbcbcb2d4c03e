"""The Gradio studio: input -> preprocessing preview -> fit -> live edits -> exports.

Only wiring lives here: the page's components come from ``layout``, what each event does from
``handlers`` (which answer ``{component: update}``), and this module connects them, with the queue each
event runs in and the page's sessions. Handlers never raise into the page: a failure becomes a message in
the step's status box and the app stays usable.

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
from dataclasses import dataclass, field

import gradio as gr

from ..preprocess import PrepareOptions
from . import api, texts
from . import handlers as h
from .layout import CSS, PAPER_URL, PRESET_VIEWS, THEME, Page, edit_tab, export_tab, fit_tab, input_tab, setup_panel
from .runtime import Runtime
from .sessions import Limits, Sessions

__all__ = ["CSS", "THEME", "AppConfig", "Limits", "Sessions", "build_ui"]

COMPUTE = "compute"  # prepare, fit, exports: one at a time (each takes the whole CPU or GPU)
RENDER = "render"  # edit-screen renders
SHOW_EDIT_STEP = (  # after the example opened: its edit step in view (clicked as a person would)
    "() => { if (!/Done\\./.test(document.querySelector('#prepare-status')?.innerText || '')) return;"
    " [...document.querySelectorAll('button[role=tab]')].find(b => b.innerText.trim() === '3. Edit'"
    " && b.offsetParent !== null)?.click(); }"
)
CHECK = {"concurrency_limit": None}  # cheap checks in front of the compute: never wait for a free slot
# The page's own events are called by the page but not listed in the API: the public actions are named in api.py.
# Gradio generates a name per event (/partial_3, /drag_render_7, ...): listed, they made the API unusable.


@dataclass
class AppConfig:
    max_seconds: float = 60.0
    tmp_root: str | None = None  # where session folders go
    fit_workdir: str | None = None
    prepare_options: PrepareOptions | None = None
    allow_setup: bool = False  # offer the setup actions in the page (app.py --allow-setup, local only)
    limits: Limits = field(default_factory=Limits)  # what a page may hold (idle release, live scenes, disk)
    render_concurrency: int = 2  # renders at once, in their own group: never behind a fit or an export

    def renders(self) -> dict:
        """The queue of the renders: their own group with its own limit."""
        return {"concurrency_id": RENDER, "concurrency_limit": self.render_concurrency}


def build_ui(runtime: Runtime, config: AppConfig | None = None) -> gr.Blocks:
    config = config or AppConfig()
    sessions = Sessions(runtime, config.tmp_root, config.limits)
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
        # the tabs are left to Gradio (an explicit gr.Tabs doubled the Edit tab's button in the bar, Gradio 6.31)
        inp, fit, edit, export = input_tab(runtime), fit_tab(), edit_tab(runtime), export_tab()
        page = Page(inp, fit, edit, export, header, banner, setup)
        demo.studio_page = page  # for tests
        demo.studio_tabs = (page.inp, page.fit, page.edit, page.export)

        def open_page(request: gr.Request):  # the page's session; the buttons that need it are enabled with it
            session = sessions.open(request)
            session.runtime.refresh_directions()  # directions learned or installed since the page was built
            buttons = (page.inp.prepare, page.inp.world, page.inp.open_example)
            enabled = {button: gr.Button(interactive=True) for button in buttons}
            return {state: session} | enabled | h.direction_updates(page, session)

        on_load = [state, page.inp.prepare, page.inp.world, page.inp.open_example, *page.edit.direction_outputs]
        demo.load(open_page, outputs=on_load)
        demo.unload(sessions.close)
        wire_input(page, state, config)
        wire_fit(page, state, config)
        wire_edit(page, state, config)
        wire_export(page, state)
        if setup is not None:
            wire_setup(page, sessions, state)
        api.wire_api(demo, page, sessions, config)
    return demo


def wire_input(page: Page, state: gr.State, config: AppConfig) -> None:
    inp = page.inp
    inp.upload.change(functools.partial(h.input_changed, page, config.max_seconds), [state, inp.upload],
                      [inp.status, inp.crops, inp.trajectory, page.fit.mask, page.fit.fit], **CHECK)  # fmt: skip
    check = functools.partial(h.check_upload, page, config.max_seconds)
    inp.prepare.click(check, [state, inp.upload, inp.ticket], page.check_outputs, **CHECK)
    if inp.world_clip is not None:
        world = functools.partial(lambda clip, s, t: check(s, clip, t), inp.world_clip)
        inp.world.click(world, [state, inp.ticket], page.check_outputs, **CHECK)
    if inp.example_scene is not None:
        inp.open_example.click(functools.partial(h.open_example, page), [state], [inp.status, *page.scene_outputs],
                               **config.renders()).then(None, js=SHOW_EDIT_STEP)  # fmt: skip
    inp.ticket.change(functools.partial(h.prepare_checked, page, config), [state, inp.ticket], page.check_outputs,
                      concurrency_id=COMPUTE)  # fmt: skip


def wire_fit(page: Page, state: gr.State, config: AppConfig) -> None:
    fit = page.fit
    fit.fit.click(functools.partial(h.request_fit, page), [state, fit.ticket, fit.preset, fit.max_frames, fit.effort],
                  [fit.status, fit.ticket], **CHECK)  # fmt: skip
    fit.ticket.change(  # the progress is shown once, on the fit's status (not over every output of a new scene)
        functools.partial(h.run_fit, page, config.fit_workdir), [state, fit.preset, fit.max_frames, fit.effort,
        fit.mask], page.scene_outputs, concurrency_id=COMPUTE, show_progress_on=[fit.status],
    )  # fmt: skip
    fit.cancel.click(functools.partial(h.request_cancel, page), [state], [fit.status], **CHECK)
    for choice in (fit.preset, fit.max_frames, fit.effort):  # the estimate follows every choice that changes it
        choice.change(h.preset_warning, [state, fit.preset, fit.max_frames, fit.effort], [fit.preset_note], **CHECK)
    fit.scene_upload.upload(functools.partial(h.open_scene, page), [state, fit.scene_upload], page.scene_outputs,
                            concurrency_id=COMPUTE)  # fmt: skip


def wire_edit(page: Page, state: gr.State, config: AppConfig) -> None:
    edit = page.edit
    outputs = [edit.image, edit.blend, edit.status]
    release_inputs = [state, edit.full_on_release, *edit.view_inputs]
    drag, release = functools.partial(h.drag_render, page), functools.partial(h.release_render, page)
    for slider in [edit.yaw, edit.pitch, edit.blend_weight, *edit.edits]:
        slider.input(drag, [state, *edit.view_inputs], outputs, trigger_mode="always_last", show_progress="hidden",
                     **config.renders())  # fmt: skip
        slider.release(release, release_inputs, outputs, trigger_mode="always_last", **config.renders())
    edit.frame.release(functools.partial(h.frame_release, page), release_inputs, [edit.before, *outputs],
                       **config.renders())  # fmt: skip
    for control in (edit.remove, edit.follow):
        control.input(release, release_inputs, outputs, **config.renders())
    edit.tab.select(functools.partial(h.refresh_directions, page), [state], edit.direction_outputs, **CHECK)
    edit.learn.click(functools.partial(h.learn_directions, page), [state], edit.direction_outputs,
                     concurrency_id=COMPUTE)  # fmt: skip
    for name, (yaw_deg, pitch_deg) in PRESET_VIEWS.items():
        # the sliders are set in the browser first, then the render reads them: what the sliders show is
        # what is rendered, however fast the buttons are pressed
        edit.view_buttons[name].click(None, None, [edit.yaw, edit.pitch], js=f"() => [{yaw_deg}, {pitch_deg}]").then(
            release, release_inputs, outputs, **config.renders()
        )


def wire_export(page: Page, state: gr.State) -> None:
    export, edit = page.export, page.edit
    inputs = [state, export.quality, export.every_frame, export.orbit_path, export.orbit_views, *edit.view_inputs]
    for kind, button in export.buttons.items():
        button.click(functools.partial(h.run_export, page, kind), inputs, export.outputs, concurrency_id=COMPUTE)


def wire_setup(page: Page, sessions: Sessions, state: gr.State) -> None:
    setup = page.setup

    def use_local(session, path, progress=gr.Progress(track_tqdm=True)):
        return h.reload_runtime(page, sessions, session, path, False)

    def download(session, progress=gr.Progress(track_tqdm=True)):
        return h.reload_runtime(page, sessions, session, None, True)

    outputs = [setup.text, setup.group, page.header, page.banner, *page.edit.direction_outputs]
    setup.use_path.click(use_local, [state, setup.path], outputs, api_visibility="private", concurrency_id=COMPUTE)
    setup.retry.click(download, [state], outputs, api_visibility="private", concurrency_id=COMPUTE)
