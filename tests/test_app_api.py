"""The studio's API as a client sees it (issue 36, item 13): five named actions and nothing else listed; the
README's gradio_client snippet runs as written and its edit shows in the image; a client cannot hand the server one
of its own paths; the page's events stay callable by the page."""

from __future__ import annotations

import contextlib
import re
import socket
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client

from innout.app.runtime import load_runtime
from innout.app.ui import AppConfig, build_ui

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = {"/open_example", "/prepare", "/fit", "/render", "/export"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(home: Path):
    """The faces demo (the world prior, its shipped directions, the fitted example) served in this process."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADIO_TEMP_DIR", str(home / "gradio"))
        mp.setenv("INNOUT_PRETRAINED_DIR", str(home / "pretrained"))
        mp.setenv("INNOUT_CACHE_DIR", str(home / "cache"))
        runtime = load_runtime(demo="faces", download=False)
        demo = build_ui(runtime, AppConfig(tmp_root=str(home / "sessions")))
        demo.queue()
        port = free_port()
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        try:
            yield demo, f"http://127.0.0.1:{port}/"
        finally:
            demo.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with serve(tmp_path_factory.mktemp("api")) as served:
        yield served


def readme_snippet() -> str:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    (snippet,) = [b for b in blocks if "gradio_client" in b]
    return snippet


def rendered(path: str) -> np.ndarray:
    import imageio.v3 as iio

    return np.asarray(iio.imread(path), dtype=np.float64)


def test_the_api_lists_the_five_actions_and_nothing_else(app):
    _, url = app
    named = set(Client(url, verbose=False).view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert named == PUBLIC


def test_the_readme_snippet_opens_the_example_and_renders_the_edit(app):
    _, url = app
    code = readme_snippet().replace("http://127.0.0.1:7860/", url)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the README's own code, run as a user runs it
    smiling = rendered(scope["image"])
    client = scope["client"]
    plain = rendered(client.predict(yaw=20, api_name="/render"))
    straight = rendered(client.predict(api_name="/render"))
    assert smiling.shape == plain.shape and smiling.shape[-1] == 3
    assert np.abs(smiling - plain).mean() > 0.5  # the smile shows
    assert np.abs(plain - straight).mean() > 0.5  # and so does the yaw
    with pytest.raises(Exception, match="unknown edit|no edit|not"):
        client.predict(edits={"no_such_edit": 1}, api_name="/render")


def test_a_client_cannot_name_a_path_on_the_server(app, tmp_path):
    """Over the wire protocol (the client library would upload the file first): /prepare given a server path
    answers that the input must be uploaded, and never opens it."""
    from tests.test_app_endpoints import SEEN, TOKEN
    from tests.test_app_endpoints import Client as Wire

    demo, url = app
    secret = tmp_path / f"{TOKEN}-secret" / "clip.mp4"
    secret.parent.mkdir()
    secret.write_bytes(b"not even a video")
    SEEN.clear()
    config = demo.get_config_file()
    index = next(i for i, d in enumerate(config["dependencies"]) if d.get("api_name") == "prepare")
    answer = Wire(url.rstrip("/")).call(index, [{"path": str(secret), "meta": {"_type": "gradio.FileData"}}],
                                        queued=True)  # fmt: skip
    assert answer.startswith('{"error"') and TOKEN not in answer, answer  # refused (by Gradio or by api._uploaded)
    assert SEEN == []  # and the file was never opened, listed or handed to a subprocess
    with pytest.raises(Exception, match="No fitted scene yet"):
        Client(url, verbose=False).predict(api_name="/render")  # a new client: its own session, no scene


def test_an_upload_outside_the_upload_folder_is_refused_by_the_api_itself(tmp_path, monkeypatch):
    """The API's own check, whatever Gradio does before it: a FileData outside the upload folder is refused."""
    from innout.app.api import _uploaded
    from innout.app.session import StudioError

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "uploads"))
    inside = tmp_path / "uploads" / "abc" / "clip.mp4"
    inside.parent.mkdir(parents=True)
    inside.write_bytes(b"x")
    assert _uploaded({"path": str(inside)}) == inside.resolve()
    for bad in ({"path": str(tmp_path / "clip.mp4")}, {"path": str(inside.parent / ".." / ".." / "x.mp4")}):
        with pytest.raises(StudioError, match="uploaded with this call"):
            _uploaded(bad)
    with pytest.raises(StudioError, match="No input"):
        _uploaded(None)
