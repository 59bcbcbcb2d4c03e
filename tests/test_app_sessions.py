"""What pages may hold (issue 37): a closed page lets go of everything, an idle one of its scene and files, the
process holds at most ``max_scenes`` scenes (least recently used first, never one at work, and a page whose scene
went gets it back from its file), and a page's files stay under its quota."""

# ruff: noqa: E402 - the optional packages are checked before the modules that need them are imported
from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

pytest.importorskip("gradio", reason="the app needs gradio (requirements.txt)")

import numpy as np

from innout.app.runtime import Runtime
from innout.app.session import CLOSED, StudioError, View
from innout.app.sessions import Limits, Sessions, give_memory_back
from innout.scene import save_scene
from tests.test_scene import band_scene_data


@pytest.fixture
def scene_file(tiny_generator, tmp_path):
    return save_scene(band_scene_data(tiny_generator, n_frames=2), tmp_path / "scene.safetensors")


def registry(tiny_generator, tmp_path, **limits) -> Sessions:
    return Sessions(Runtime(device="cpu", generator=tiny_generator, label="tiny"), str(tmp_path / "pages"),
                    Limits(**limits))  # fmt: skip


def page(sessions: Sessions, name: str):
    return sessions.open(SimpleNamespace(session_hash=name))


def test_a_closed_page_lets_go_of_its_scene_and_files_and_says_so(tiny_generator, tmp_path, scene_file):
    sessions = registry(tiny_generator, tmp_path)
    a = page(sessions, "a")
    a.load_scene(scene_file)
    a.export_png(View())
    assert a.scene is not None and any(a.folder.iterdir())
    sessions.close(SimpleNamespace(session_hash="a"))
    assert a.scene is None and not a.folder.exists() and len(sessions) == 0
    with pytest.raises(StudioError, match="closed"):
        a.touch()
    assert a.cancel.is_set()  # a fit the page left running stops at its next step
    assert CLOSED.startswith("This page was closed")
    sessions.close_all()


def test_the_process_holds_at_most_max_scenes_least_recently_used_going_first(tiny_generator, tmp_path, scene_file):
    sessions = registry(tiny_generator, tmp_path, max_scenes=2)
    a, b, c = (page(sessions, n) for n in "abc")
    a.load_scene(scene_file)
    first = a.render(View(frame=1), quality="preview").image
    b.load_scene(scene_file)
    a.touch()  # a is used after b: b is now the least recently used
    c.load_scene(scene_file)
    assert [s.scene is not None for s in (a, b, c)] == [True, False, True]
    assert "holds 2 scenes" in b.let_go
    # the page whose scene went gets it back on its next render, from its file; the cap still holds
    time.sleep(0.01)
    c.touch()
    again = b.render(View(frame=1), quality="preview").image
    assert b.scene is not None and b.let_go is None
    assert sum(s.scene is not None for s in (a, b, c)) == 2 and a.scene is None
    np.testing.assert_array_equal(again, first)
    sessions.close_all()


def test_a_page_at_work_is_never_let_go(tiny_generator, tmp_path, scene_file):
    sessions = registry(tiny_generator, tmp_path, max_scenes=1, idle_minutes=1)
    a, b = page(sessions, "a"), page(sessions, "b")
    a.load_scene(scene_file)
    with a.working():
        b.load_scene(scene_file)  # over the cap, but a is exporting
        assert a.scene is not None and b.scene is not None
        assert sessions.release_idle(now=time.monotonic() + 3600) == 1  # b is idle an hour later, a is at work
        assert a.scene is not None and b.scene is None
    sessions.close_all()


def test_an_idle_page_lets_go_of_its_scene_and_files_and_is_told_when_it_comes_back(
    tiny_generator, tmp_path, scene_file
):  # fmt: skip
    sessions = registry(tiny_generator, tmp_path, idle_minutes=30)
    idle, used = page(sessions, "idle"), page(sessions, "used")
    for s in (idle, used):
        s.load_scene(scene_file)
        s.export_png(View())
    later = time.monotonic() + 29 * 60
    assert sessions.release_idle(now=later) == 0
    used.last_used = later
    assert sessions.release_idle(now=time.monotonic() + 31 * 60) == 1
    assert idle.scene is None and not idle.folder.exists() and used.scene is not None and used.folder.is_dir()
    with pytest.raises(StudioError, match="idle for over 30 minutes"):
        idle.render(View(), quality="preview")
    with pytest.raises(StudioError, match="idle for over 30 minutes"):  # Fit says why there is no clip either
        idle.request_fit()
    idle.load_scene(scene_file)  # opened again: the page works as before
    assert idle.export_png(View()).is_file()
    assert sessions.release_idle(now=later + 31 * 60) == 2  # both idle now
    sessions.close_all()


def test_a_pages_files_stay_under_its_quota(tiny_generator, tmp_path, scene_file):
    sessions = registry(tiny_generator, tmp_path, page_disk_mb=1)
    a = page(sessions, "a")
    a.load_scene(scene_file)
    (a.folder / "an_export.mp4").write_bytes(b"0" * 2**20)
    with pytest.raises(StudioError, match=r"keeps 1 MB of files here .* the most a page may keep is 1 MB"):
        a.export_png(View())
    big = tmp_path / "upload.png"
    big.write_bytes(b"0" * 2 * 2**20)
    b = page(sessions, "b")
    with pytest.raises(StudioError, match="keeps 2 MB"):
        b.check(big, max_seconds=60)
    assert b.checked is None  # refused: nothing of it is kept
    sessions.close_all()


def test_a_new_fit_replaces_the_pages_earlier_scene_file(tiny_generator, tmp_path, scene_file):
    sessions = registry(tiny_generator, tmp_path)
    a = page(sessions, "a")
    first, second = (a.folder / f"scene-{n}.safetensors" for n in "12")
    for path in (first, second):
        path.write_bytes(scene_file.read_bytes())
    a.load_scene(first)
    a.load_scene(second)
    assert not first.exists() and second.is_file()
    a.load_scene(scene_file)  # a file from elsewhere (an upload) is never removed; the page's own one goes
    assert scene_file.is_file() and not second.exists()
    sessions.close_all()


def test_freed_memory_can_be_handed_back():
    give_memory_back()  # glibc's malloc_trim where there is one; nothing elsewhere
