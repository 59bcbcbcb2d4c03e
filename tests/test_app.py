"""The app's modules without a browser: input checks, the runtime and setup panel, sessions, charts."""

# ruff: noqa: E402 - the optional packages are checked before the modules that need them are imported
from __future__ import annotations

import pytest

pytest.importorskip("gradio", reason="the app needs gradio (requirements.txt)")
pytest.importorskip("plotly", reason="the app's charts need plotly (requirements.txt)")

import numpy as np
import torch

from innout.app import plots, texts
from innout.app.runtime import gpu, installed_directions, load_runtime
from innout.app.session import StudioError, StudioSession, View, check_input
from innout.edit.directions import Direction, latent_space_digest, save_direction
from innout.edit.labelers import make_labeler
from innout.errors import UserError
from innout.fit.presets import preview, scaled
from innout.scene import save_scene
from tests.test_scene import band_scene_data

from .conftest import write_test_clip


def test_input_checks_name_the_problem(tmp_path):
    with pytest.raises(StudioError, match="No input"):
        check_input(None, max_seconds=60)
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(StudioError, match="not a video or photo"):
        check_input(notes, max_seconds=60)
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    with pytest.raises(StudioError, match="cannot be read as a video"):
        check_input(fake, max_seconds=60)
    long_clip = write_test_clip(tmp_path / "long.mp4", seconds=90, size=32)
    with pytest.raises(StudioError, match="1.5 minutes long"):
        check_input(long_clip, max_seconds=60)
    assert check_input(long_clip, max_seconds=120) == long_clip


def test_missing_weights_give_a_setup_problem_not_a_crash(tmp_path, monkeypatch):
    monkeypatch.setenv("INNOUT_PRETRAINED_DIR", str(tmp_path))
    monkeypatch.delenv("INNOUT_EG3D_CHECKPOINT", raising=False)
    runtime = load_runtime(download=False)
    assert not runtime.ready and "ffhqrebalanced512-128.pkl" in runtime.problem
    missing = load_runtime(checkpoint=str(tmp_path / "nope.pkl"), download=False)
    assert not missing.ready and "no such file" in missing.problem
    from innout.app.ui import build_ui

    demo = build_ui(runtime)  # the page still builds, with the setup panel
    assert demo is not None


def test_effort_scales_every_stage():
    cfg = scaled(preview(), 0.1)
    assert (cfg.inversion.subset_epochs, cfg.inversion.all_epochs, cfg.joint.iterations) == (1, 1, 15)
    assert cfg.joint.bootstrap_steps == round(preview().joint.bootstrap_steps * 0.1)  # the OOD head start too
    assert cfg.init.samples == cfg.init.batch and cfg.max_frames == 12
    assert scaled(preview(), 1.0).to_dict() == preview().to_dict()


def test_image_labellers():
    dark, bright = np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    np.testing.assert_allclose(make_labeler("brightness")([dark, bright]), [0.0, 1.0])
    np.testing.assert_allclose(make_labeler("warmth")([red, bright]), [1.0, 0.0])


def test_directions_for_another_generator_are_left_out(tiny_generator, tmp_path):
    digest = latent_space_digest(tiny_generator)
    save_direction(Direction("mine", torch.ones(512), latent_space=digest), tmp_path / "mine.safetensors")
    save_direction(Direction("other", torch.ones(512), latent_space="0" * 16), tmp_path / "other.safetensors")
    found, notes = installed_directions(tiny_generator, [tmp_path])
    assert list(found) == ["mine"] and "other" in notes[0]


def test_gpu_decorator_is_a_no_op_off_spaces(monkeypatch):
    monkeypatch.delenv("SPACE_ID", raising=False)

    def f(x):
        return x + 1

    assert gpu(f) is f and gpu(duration=10)(f) is f


@pytest.fixture()
def session(tiny_generator, tmp_path):
    from innout.app.runtime import Runtime

    digest = latent_space_digest(tiny_generator)
    runtime = Runtime(device="cpu", generator=tiny_generator, label="test")
    runtime.directions["random"] = Direction("random", torch.randn(512), latent_space=digest)
    s = StudioSession(runtime, tmp_root=tmp_path)
    scene_file = save_scene(band_scene_data(tiny_generator, n_frames=2), tmp_path / "scene.safetensors")
    s.load_scene(scene_file)
    yield s
    s.close()
    assert not s.folder.exists()


def test_session_renders_drags_and_exports(session):
    with pytest.raises(StudioError, match="Prepare an input first"):
        session.fit("preview")
    assert session.scene.edit_names == ["random"]
    assert session.warm_drag(0) == 1 + 4  # unedited planes + 4 knots
    plain = session.render(View(), quality="preview")
    dragged = session.render(View(edits={"random": 2.0}), quality="preview", drag=True)
    assert not np.array_equal(plain.image, dragged.image)
    assert set(session.timings) == {"preview", "drag"}
    # the frame's own view at yaw = pitch = 0; an orbit offset from it otherwise
    assert View().camera(session.scene) is None
    yaw, pitch = View(yaw=0.2).camera(session.scene)
    assert yaw == pytest.approx(session.scene.frame_angles(0)[0] + 0.2)
    png = session.export_png(View(frame=1))
    assert png.is_file() and png.parent == session.folder
    orbit = session.export_orbit(View(), path="orbit", n_views=3, quality="preview")
    assert orbit.is_file()
    with pytest.raises(UserError, match="out of range") as refused:  # the package's own user error, as it is
        session.render(View(frame=5), quality="preview")
    assert texts.fail(refused.value).startswith("**Problem:** ") and "out of range" in texts.fail(refused.value)
    assert len(session.ood_opacity_series()) == 2


def test_charts(session):
    cameras = session.scene.data.cameras.numpy()
    fig = plots.camera_trajectory(cameras, [0, 1])
    assert len(fig.data) == 3 and len(fig.data[0].x) == 2
    # the camera centres sit on EG3D's orbit sphere (radius 2.7 around the world origin)
    centres = cameras[:, :16].reshape(-1, 4, 4)[:, :3, 3]
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 2.7, atol=1e-4)
    history = {"invert": [{"loss": 1.0}, {"loss": 0.5}], "joint": [{"loss": 0.4, "l2": 0.1}]}
    fig = plots.loss_chart(history)
    assert [len(t.x) for t in fig.data] == [2, 1] and list(fig.data[1].x) == [2]
    heat = plots.blend_map(np.linspace(0, 1, 64).reshape(8, 8), size=64)
    assert heat.shape == (64, 64, 3) and heat.dtype == np.uint8
    assert heat[0, 0].sum() < heat[-1, -1].sum()  # face dark, OOD bright
    assert plots.blend_map(None) is None
    small = plots.ood_chart(np.array([0.004, 0.012]), [3, 9])  # shares of a percent stay readable
    assert small.layout.yaxis.range == (0, 5) and list(small.data[0].text) == ["0.4 %", "1.2 %"]
    assert plots.ood_chart(np.array([0.6]), [0]).layout.yaxis.range == (0, 75)


def test_every_app_flag_is_in_the_help_and_the_studio_docs():
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("studio_app", root / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    parser = module.build_parser()
    studio_docs = (root / "docs" / "studio.md").read_text()
    help_text = parser.format_help()
    for action in parser._actions:
        for flag in action.option_strings:
            if flag not in ("-h", "--help"):
                assert flag in help_text and f"`{flag}" in studio_docs, flag


def test_a_refused_input_forgets_the_previous_one(session, tmp_path):
    """A failed prepare leaves nothing stale to fit (the bug: Fit silently fitted the previous clip)."""
    session.input, session.prepared = tmp_path / "old.mp4", object()  # as after an earlier prepare
    with pytest.raises(StudioError, match="cannot be read as a video"):
        bad = tmp_path / "bad.mp4"
        bad.write_text("not a video")
        session.check(bad, max_seconds=60)
    assert session.input is None and session.prepared is None and session.checked is None
    with pytest.raises(StudioError, match="Prepare an input first"):
        session.request_fit()


def test_cancel_reaches_a_fit_that_has_not_started_and_ends_in_a_final_status(session, tmp_path):
    from innout.app import texts
    from innout.app.session import FitCancelledError

    assert not session.request_cancel()  # nothing requested: nothing to cancel
    session.input, session.prepared = tmp_path / "clip.mp4", object()
    session.request_fit()
    assert session.request_cancel()  # pressed while the fit waits in the queue
    with pytest.raises(FitCancelledError, match="before it started") as caught:
        session.fit("preview")
    assert texts.fail(caught.value).startswith("**Cancelled.**")
    assert not session.fit_requested and not session.cancel.is_set()  # the next fit starts clean


def test_a_failed_export_clears_the_download_boxes(session):
    from innout.app.handlers import run_export
    from innout.app.ui import build_ui

    export = (page := build_ui(session.runtime).studio_page).export
    session.scene = None
    answer = run_export(page, "png", session, "preview", True, "orbit", 8, 0, 0, 0, True, False, 1.0)
    assert answer[export.status] == "**Problem:** No fitted scene yet: run a fit (step 2) first."
    cleared = [answer.get(box, "kept") for box in (export.video, export.file, export.model3d)]
    assert cleared == [None, None, None]


def test_a_page_closed_removes_its_folder_and_setup_never_changes_other_pages(tiny_generator, tmp_path, monkeypatch):
    """The bug: a setup action from one page replaced the generator every page used. Now it changes its own page
    and the pages opened after it; a closed page's folder goes at once, every page's when the server stops."""
    import copy
    from types import SimpleNamespace

    from innout.app import handlers, ui
    from innout.app.runtime import Runtime

    first = Runtime(device="cpu", generator=tiny_generator, label="first")
    sessions = ui.Sessions(first, str(tmp_path))
    a, b = sessions.open(SimpleNamespace(session_hash="a")), sessions.open(SimpleNamespace(session_hash="b"))
    assert a.folder.is_dir() and b.folder.is_dir() and len(sessions) == 2
    loaded = copy.deepcopy(tiny_generator)
    monkeypatch.setattr(handlers, "load_runtime", lambda **_: Runtime(device="cpu", generator=loaded, label="second"))
    page = ui.build_ui(first).studio_page
    handlers.reload_runtime(page, sessions, a, "weights.pkl", False)  # page a's "use this file"
    assert a.runtime.generator is loaded and a.runtime.label == "second"
    assert b.runtime is first and b.runtime.generator is tiny_generator and first.label == "first"
    assert sessions.open(SimpleNamespace(session_hash="c")).runtime.generator is loaded
    sessions.close(SimpleNamespace(session_hash="a"))
    assert not a.folder.exists() and b.folder.is_dir()
    sessions.close_all()
    assert not b.folder.exists() and len(sessions) == 0


def test_missing_weights_open_the_demo_with_the_reason(tmp_path, monkeypatch):
    from innout.app import texts

    monkeypatch.setenv("INNOUT_PRETRAINED_DIR", str(tmp_path))
    monkeypatch.delenv("INNOUT_EG3D_CHECKPOINT", raising=False)
    runtime = load_runtime(download=False, fallback_demo="tiny")
    assert runtime.ready and runtime.demo == "tiny" and "ffhqrebalanced512-128.pkl" in runtime.problem
    banner = texts.banner(runtime)
    assert banner.startswith("**DEMO:**") and "python -m innout download eg3d" in banner and "CPU only" in banner


def test_the_input_beside_the_render_is_the_fitted_frame_of_the_fitted_clip(session):
    from types import SimpleNamespace

    assert session.input_crop(0) is None  # a scene opened from a file: no input to show
    frames = session.scene.data.source.frames
    crops = np.stack([np.full((8, 8, 3), i, np.uint8) for i in range(10)])
    session.scene_prepared = SimpleNamespace(frame_indices=list(range(10)), crops=crops)
    assert session.input_crop(1)[0, 0, 0] == frames[1] and session.input_crop(7) is None
    strip = plots.blend_map_with_scale(np.zeros((8, 8)), size=64)
    assert strip.shape == (64 + 44, 64, 3) and strip[64 + 10, 0].sum() < strip[64 + 10, -1].sum()  # the colour bar


def test_slow_presets_on_a_cpu_are_warned_of_before_the_fit(session):
    from innout.app.handlers import preset_warning

    assert preset_warning(session, "preview") == ""
    assert preset_warning(session, "paper").startswith("**Warning:** the paper preset on a CPU")
    session.runtime.device = "cuda:0"
    assert preset_warning(session, "paper") == ""


def test_the_page_says_what_a_video_export_holds_before_it(session):
    from types import SimpleNamespace

    session.scene.data.source.frames = [0, 62]  # a fit that kept every 62nd frame of a 25 fps clip
    session.scene.data.source.fps = 25.0
    note = session.video_note()
    assert "one source frame in 62" in note and "needs the clip" in note
    assert "play at 0.403 fps (5.0 s" in note
    session.scene_prepared = SimpleNamespace()
    assert "the 63 frames of the fitted span at 25 fps" in session.video_note()
    session.scene.data.source.frames = [0, 1]
    assert "its 2 frames at 25 fps" in session.video_note()


def test_a_sparse_fit_exports_every_source_frame_of_its_span(session):
    from types import SimpleNamespace

    import imageio_ffmpeg

    session.scene.data.source.frames = [0, 2]  # the fit kept frames 0 and 2 of a 3-frame clip
    cameras = session.scene.data.cameras.cpu().numpy()
    session.scene_prepared = SimpleNamespace(
        frame_indices=[0, 1, 2], cameras=np.stack([cameras[0], cameras[0], cameras[1]]),
        transforms=np.stack([np.eye(2, 3)] * 3), face_outlines=lambda: np.zeros((3, 4, 2), np.float32),
        source="", fps=25.0, frame_size=(8, 8),
    )  # fmt: skip
    dense = session.export_video(View(), paste=False, quality="preview", every_frame=True)
    assert imageio_ffmpeg.count_frames_and_secs(str(dense))[0] == 3
    sparse = session.export_video(View(), paste=False, quality="preview", every_frame=False)
    assert imageio_ffmpeg.count_frames_and_secs(str(sparse))[0] == 2


def test_one_progress_bar_for_the_whole_fit():
    from innout.app.progress import OverallProgress, planned_stages
    from innout.fit.presets import paper
    assert planned_stages(preview()) == ["init", "invert", "ood head start", "joint"]  # preview: no SR tuning
    stages = planned_stages(paper())
    assert stages == ["init", "invert", "ood head start", "joint", "superres"]
    assert planned_stages(paper(), has_super_resolution=False)[-1] == "joint"
    now = [0.0]
    bar = OverallProgress(stages, clock=lambda: now[0])
    assert bar.update("init", 1, 1) == (0.2, "stage 1 of 5: init, 1/1")  # a cached stage: done at once
    bar.update("invert", 10, 100)
    now[0] = 90.0  # 90 s for 30 steps: 3 s a step, 60 steps left
    share, line = bar.update("invert", 40, 100)
    assert share == pytest.approx((1 + 0.4) / 5) and line.endswith("40/100, about 3 min left in this stage")
    share, line = bar.update("unplanned", 1, 2)  # counted, not hidden
    assert line.startswith("stage 6 of 6")


def test_the_example_has_a_thumbnail(tmp_path):
    from innout.app.runtime import example_clips

    thumb = plots.thumbnail(example_clips()[0])
    assert thumb.shape[0] == 160 and thumb.dtype == np.uint8 and thumb.std() > 5  # a picture, not a blank
    assert plots.thumbnail(str(tmp_path / "missing.mp4")) is None


def test_fit_times_are_measured_here_and_quoted_for_the_preset(tmp_path, monkeypatch, session):
    import datetime

    from innout.app import fit_times
    from innout.app.handlers import preset_warning

    path = tmp_path / "fit_times.json"
    monkeypatch.setattr(fit_times, "times_file", lambda: path)
    assert preset_warning(session, "preview") == ""  # nothing measured yet
    fit_times.record_fit("preview", 12, 312.0, session.device_key)
    today = datetime.date.today()
    expected = f"The preview preset, measured here: 12 frames in 5.2 min ({session.device_key}, {today})."
    assert preset_warning(session, "preview") == expected
    paper = preset_warning(session, "paper")
    assert paper.startswith("**Warning:**") and "measured here" not in paper  # only preview was measured
    path.write_text("{not json")  # a damaged file is ignored
    assert fit_times.measured_hint("preview", session.device_key) is None


def test_an_event_before_the_page_has_its_session_says_so(session):
    from innout.app.handlers import check_upload, request_cancel, request_fit
    from innout.app.ui import build_ui

    page = build_ui(session.runtime).studio_page
    status = check_upload(page, 60.0, None, "clip.mp4", 0)[page.inp.status]
    assert status == "**Problem:** The page is still connecting: try again in a moment."
    assert request_fit(page, None, 0, "preview") == {page.fit.status: status}
    assert request_cancel(page, None)[page.fit.status].startswith("**Nothing to cancel")


def test_a_scene_event_answers_every_output_it_is_wired_to(session):
    """scene_updates answers exactly the outputs of the scene events, and a failed scene event changes only the
    fit's status (every other output keeps what it showed)."""
    from innout.app.handlers import open_scene, scene_updates
    from innout.app.ui import build_ui

    page = build_ui(session.runtime).studio_page
    assert set(scene_updates(page, session, "opened")) == set(page.scene_outputs)
    failed = open_scene(page, session, None)
    assert list(failed) == [page.fit.status] and failed[page.fit.status] == "**Problem:** No scene file given."


def test_a_late_drag_preview_never_overwrites_the_release_of_the_same_view(session):
    """The status writer: after a slider's release rendered a view, a drag preview of that view arriving later (the
    browser sends the last drag after the release) changes nothing; a drag to another view still shows."""
    from innout.app.handlers import drag_render, release_render
    from innout.app.ui import build_ui

    page = build_ui(session.runtime).studio_page
    edit = page.edit
    values = [1, 5, 0, True, False, 1.0]  # frame, yaw, pitch, follow, remove, blend (no edit sliders shown)
    released = release_render(page, session, True, *values)
    assert released[edit.status].startswith("full render") and edit.image in released
    assert drag_render(page, session, *values) == {}  # late: the sharper render of this view stays
    moved = drag_render(page, session, 1, 9, 0, True, False, 1.0)
    assert moved[edit.status].startswith("drag preview") and "yaw +9°" in moved[edit.status]


def test_the_fit_estimate_is_measured_pace_times_this_fits_steps(tmp_path):
    """The estimate scales with the frames, the effort and the preset's steps, from seconds per step measured here;
    a stage never timed here gives no estimate (no guess), and the latest fit's line keeps its effort."""
    from innout.app.fit_times import StagePace, estimate_seconds, measured_hint, record_fit
    from innout.fit import planned_steps

    clock = iter([0.0, 6.0, 6.1, 8.0, 9.0, 15.0])  # the fit starts, then one time per report
    pace = StagePace(clock=lambda: next(clock))
    for stage, done in (("init", 64), ("invert", 4), ("invert", 8), ("ood head start", 20), ("joint", 4)):
        pace.report(stage, done, done if stage != "invert" else 8)  # init and the head start report only their end
    steps = {"init": 64, "invert": 8, "ood head start": 20, "joint": 4}
    assert pace.seconds_per_step(steps) == pytest.approx({"init": 6 / 64, "invert": 2 / 8, "ood head start": 1 / 20,
                                                          "joint": 6 / 4})  # fmt: skip
    cached = StagePace(clock=iter([0.0, 0.05, 5.0]).__next__)
    cached.report("init", 1, 1)  # read from the cache (a cached stage reports 1 of 1): no pace
    cached.report("joint", 4, 4)
    assert cached.seconds_per_step(steps) == {"joint": pytest.approx(4.95 / 4)}

    path = tmp_path / "fit_times.json"
    step_seconds = {"init": 0.01, "invert": 0.5, "ood head start": 0.2, "joint": 1.5}
    record_fit("preview", 4, 30.0, "cpu", effort=0.05, step_seconds=step_seconds, path=path)
    full = preview()
    seconds, _ = estimate_seconds("preview", full, 8, "cpu", path=path)
    steps = planned_steps(full, 8)
    assert seconds == pytest.approx(sum(steps[s] * step_seconds[s] for s in step_seconds))
    half, _ = estimate_seconds("preview", scaled(full, 0.5), 8, "cpu", path=path)
    fewer, _ = estimate_seconds("preview", full, 4, "cpu", path=path)
    assert half < seconds and fewer < seconds
    assert estimate_seconds("preview", full, 8, "cuda:0", path=path) is None  # another device: not measured
    full.superres.epochs = 1  # a stage never timed here
    assert estimate_seconds("preview", full, 8, "cpu", path=path) is None
    assert measured_hint("preview", "cpu", path=path).startswith("measured here: 4 frames, effort 0.05 in 0.5 min")


def test_the_camera_plots_colour_bar_leaves_its_legend_readable():
    """The frame colour bar sits left of the plot, the legend at the right: the bar no longer covers the legend."""
    from innout.eg3d.cameras import orbit_label

    cameras = torch.cat([orbit_label(1.5 + 0.05 * i, 1.57) for i in range(5)]).numpy()
    figure = plots.camera_trajectory(cameras, [0, 5, 10, 15, 20])
    bar, legend = figure.data[0].marker.colorbar, figure.layout.legend
    assert bar.x < 0 and bar.xanchor == "right" and legend.x >= 1 and legend.xanchor == "right"
