"""The studio's public API: the page's actions under names a client can use (``gradio_client``, the page's
"Use via API" docs). Each call works on the calling client's session, as a page's events do on the page's:

- ``/open_example``: the bundled synthetic clip, fitted beforehand (faces demo), opened in this session;
- ``/prepare`` (a video or photo uploaded by the client), ``/fit`` (preset, frames, effort);
- ``/render``: one image of the scene; every parameter has a default (frame, yaw and pitch in degrees from the
  frame's own view, remove, blend, edit strengths as ``{"smile": 2}``, quality);
- ``/export``: a video, the aligned clip, an orbit, a PNG or the geometry, of the same view.

The page's own events stay callable by the page but are not listed (``undocumented``): Gradio names each event
(``/partial_3``, ``/drag_render_7``, ...), 45 of them, which made the API unusable.
"""

from __future__ import annotations

import math
from pathlib import Path

import gradio as gr

from ..errors import UserError
from .handlers import fit_in_slices
from .layout import Page
from .runtime import MAX_GPU_SECONDS, gpu
from .session import StudioError, StudioSession, View

COMPUTE = "compute"  # the queues of ui.py: the API waits in the same ones as the page (renders: config.renders())


def _view(frame: int, yaw: float, pitch: float, remove: bool, blend: float, edits: dict[str, float] | None) -> View:
    edits = {str(k): float(v) for k, v in (edits or {}).items() if float(v) != 0}
    return View(int(frame), math.radians(yaw), math.radians(pitch), edits, bool(remove), True, float(blend))


def _uploaded(file: gr.FileData | dict | None) -> Path:
    """A file this client uploaded (Gradio's upload folder), never a path on the server named by the client."""
    from gradio.utils import get_upload_folder

    path = (file.get("path") if isinstance(file, dict) else getattr(file, "path", None)) if file else None
    if not path:
        raise StudioError("No input: upload a video or a photo (gradio_client: handle_file('clip.mp4')).")
    resolved, root = Path(path).resolve(), Path(get_upload_folder()).resolve()
    if not resolved.is_relative_to(root):
        raise StudioError("The input must be a file uploaded with this call, not a path on the server.")
    return resolved


def _answer(work):
    """Run ``work``; a user error becomes the client's error message (gr.Error), as the page shows it."""
    try:
        return work()
    except UserError as exc:
        raise gr.Error(str(exc)) from exc


def wire_api(demo: gr.Blocks, page: Page, sessions, config) -> None:
    """Name the public actions; list nothing else (call it last, inside the page's Blocks)."""
    for fn in demo.fns.values():  # the page's events: callable by the page, not listed (private ones stay private)
        if fn.api_visibility == "public":
            fn.api_visibility = "undocumented"

    def session_of(request: gr.Request) -> StudioSession:
        session = sessions.for_request(request)
        _answer(session.touch)
        return session

    def open_example(request: gr.Request) -> str:
        """Open the bundled synthetic clip, fitted beforehand with the preview preset (faces demo only)."""
        if page.inp.example_scene is None:
            raise gr.Error("The fitted example needs the faces demo generator (python app.py --demo-generator faces).")
        session = session_of(request)
        scene = _answer(lambda: session.open_example(page.inp.example_scene, page.inp.world_clip))
        return f"Opened the synthetic example: {scene.n_frames} frames, ready to render."

    def prepare(video: gr.FileData, request: gr.Request) -> str:
        """Detect the face, align the frames and estimate the cameras of an uploaded video or photo."""
        session = session_of(request)

        @gpu(duration=MAX_GPU_SECONDS)
        def work() -> str:
            path = session.check(_uploaded(video), max_seconds=config.max_seconds)
            prepared = session.prepare(path, max_seconds=config.max_seconds, options=config.prepare_options)
            return f"Prepared {session.input_name}. " + prepared.report().replace("\n", " · ")

        return _answer(work)

    def fit(preset: str = "preview", frames: int = 0, effort: float = 1.0, request: gr.Request = None) -> str:
        """Fit the prepared clip (In-N-Out, without a mask): preset preview | fast | paper; frames 0 = the preset's."""
        session = session_of(request)

        def work() -> str:
            session.request_fit()
            fit_in_slices(session, preset, frames, effort, None, config.fit_workdir, None)  # on ZeroGPU: slices
            scene = session.require_scene()
            return f"Fitted {scene.n_frames} frames of {session.input_name} ({preset})."

        return _answer(work)

    def render(
        frame: int = 0, yaw: float = 0.0, pitch: float = 0.0, remove: bool = False, blend: float = 1.0,
        edits: dict[str, float] | None = None, quality: str = "full", request: gr.Request = None,
    ) -> gr.FileData:  # fmt: skip
        """One image of the scene: yaw and pitch in degrees from the frame's own view, edits as {"smile": 2}."""
        session = session_of(request)

        @gpu(duration=30)
        def work() -> gr.FileData:
            from ..images import save_image

            session.sync_directions()
            image = session.render(_view(frame, yaw, pitch, remove, blend, edits), quality=quality).image
            out = session.output_folder() / f"api_render_{frame}.png"
            save_image(image, out, fast=True)
            return gr.FileData(path=str(out), orig_name=out.name)

        return _answer(work)

    def export(
        kind: str = "video", frame: int = 0, yaw: float = 0.0, pitch: float = 0.0, remove: bool = False,
        blend: float = 1.0, edits: dict[str, float] | None = None, quality: str = "full", request: gr.Request = None,
    ) -> gr.FileData:  # fmt: skip
        """Export the view: kind video (pasted back, with audio) | crops | orbit | png | mesh (.glb)."""
        session = session_of(request)

        @gpu(duration=MAX_GPU_SECONDS)
        def work() -> gr.FileData:
            session.sync_directions()
            view = _view(frame, yaw, pitch, remove, blend, edits)
            if kind in ("video", "crops"):
                out = session.export_video(view, paste=kind == "video", quality=quality)
            elif kind == "orbit":
                out = session.export_orbit(view, path="orbit", n_views=48, quality=quality)
            elif kind == "png":
                out = session.export_png(view)
            elif kind == "mesh":
                out = session.export_mesh(view)[0]
            else:
                raise StudioError(f"export kind must be video, crops, orbit, png or mesh, got {kind!r}")
            return gr.FileData(path=str(out), orig_name=out.name)

        return _answer(work)

    renders = config.renders()
    gr.api(open_example, api_name="open_example", **renders)
    gr.api(prepare, api_name="prepare", concurrency_id=COMPUTE)
    gr.api(fit, api_name="fit", concurrency_id=COMPUTE)
    gr.api(render, api_name="render", **renders)
    gr.api(export, api_name="export", concurrency_id=COMPUTE)
