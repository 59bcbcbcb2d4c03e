"""The app's endpoints as an attacker on the network sees them: every event the page exposes is called over
HTTP by its index (hidden ones too: Gradio's "private" only hides an endpoint from the docs), with a path
on the server in every argument that could carry one. None may open it, list it, hand it to a subprocess
or answer differently whether it exists or not, and no call may change the generator pages use.

The app runs in this process (Gradio's server in a thread) so that Python's audit hooks see every file the
server opens.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from innout.app.runtime import load_runtime
from innout.app.ui import AppConfig, build_ui

from .conftest import write_test_clip

TOKEN = f"sentinel{uuid.uuid4().hex[:8]}"
SEEN: list[tuple[str, str]] = []  # (audit event, argument) that named the token


def _audit(event: str, args: tuple) -> None:
    if event in ("open", "os.listdir", "os.scandir", "os.remove", "os.rename", "shutil.copyfile", "subprocess.Popen"):
        text = repr(args)
        if TOKEN in text:
            SEEN.append((event, text[:200]))


sys.addaudithook(_audit)  # audit hooks cannot be removed; this one only records paths with the token


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def file_data(path: str) -> dict:
    return {"path": path, "orig_name": Path(path).name, "meta": {"_type": "gradio.FileData"}}


def payload(component: dict, path: str):
    """A value of the component's kind that carries ``path`` wherever the kind can carry one."""
    kind = component["type"]
    if kind in ("state",):
        return None
    if kind in ("slider", "number"):
        return 0
    if kind in ("checkbox",):
        return False
    if kind in ("textbox", "radio", "dropdown", "markdown"):
        return path
    if kind == "imageeditor":
        return {"background": file_data(path), "layers": [file_data(path)], "composite": file_data(path)}
    return file_data(path)  # file, image, video, gallery, model3d, and anything unknown


def without_timings(output) -> str:
    if isinstance(output, dict):
        output = {k: v for k, v in output.items() if "duration" not in k}
    return json.dumps(output, sort_keys=True)


class Client:
    """Gradio's wire protocol, by hand: the queue (join, then read the event stream) and direct calls."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(timeout=120)
        self.session = uuid.uuid4().hex[:11]

    def call(self, fn_index: int, data: list, *, queued: bool) -> str:
        body = {"data": data, "fn_index": fn_index, "session_hash": self.session, "event_data": None}
        if not queued:
            answer = self.http.post(f"{self.url}/gradio_api/run/predict", json=body)
            return without_timings(answer.json() if answer.status_code == 200 else answer.text)
        joined = self.http.post(f"{self.url}/gradio_api/queue/join", json=body)
        if joined.status_code != 200:
            return joined.text
        with self.http.stream("GET", f"{self.url}/gradio_api/queue/data", params={"session_hash": self.session}) as r:
            for line in r.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    return without_timings(message.get("output"))
        return "stream ended"


@contextlib.contextmanager
def serve(home: Path, *, allow_setup: bool, launch: dict | None = None):
    """The app with EG3D weights missing (so on the tiny demo), served in this process with ``launch``'s server
    options (app.py's ``launch_options``); yields (Blocks, runtime, url)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADIO_TEMP_DIR", str(home / "gradio"))
        mp.setenv("INNOUT_PRETRAINED_DIR", str(home / "pretrained"))
        mp.setenv("INNOUT_CACHE_DIR", str(home / "cache"))
        mp.delenv("INNOUT_EG3D_CHECKPOINT", raising=False)
        runtime = load_runtime(download=False, fallback_demo="tiny")
        assert runtime.demo == "tiny" and runtime.problem
        demo = build_ui(runtime, AppConfig(tmp_root=str(home / "sessions"), allow_setup=allow_setup))
        demo.queue()
        port = free_port()
        options = {**(launch or {}), "server_name": "127.0.0.1", "server_port": port, "share": False}
        demo.launch(**options, prevent_thread_lock=True, quiet=True)
        try:
            yield demo, runtime, f"http://127.0.0.1:{port}"
        finally:
            demo.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with serve(tmp_path_factory.mktemp("endpoints"), allow_setup=False) as served:
        yield served


def probe(demo, url: str, folder: Path) -> tuple[list, list[str], int]:
    """Call every endpoint with an existing file's path and then a missing one's. Returns the audit events
    that named them, the endpoints whose answers told them apart, and the number of endpoints called."""
    existing = folder / f"{TOKEN}-here" / "clip.mp4"
    existing.parent.mkdir()
    write_test_clip(existing, seconds=1, size=32)
    missing = folder / f"{TOKEN}-gone" / "clip.mp4"
    SEEN.clear()  # writing it named it
    config = demo.get_config_file()
    components = {c["id"]: c for c in config["components"]}
    client = Client(url)
    load = next(i for i, d in enumerate(config["dependencies"]) if any(t[1] == "load" for t in d["targets"]))
    client.call(load, [], queued=True)  # the page's session, as a browser gets it
    told_apart, called = [], 0
    for index, dep in enumerate(config["dependencies"]):
        if dep.get("js") and not dep.get("backend_fn"):
            continue  # runs in the browser only: nothing to call
        if any(t[1] in ("load", "unload") for t in dep["targets"]):
            continue  # take no input (the page's session opens and closes)
        answers = []
        for path in (existing, missing):
            data = [payload(components[i], str(path)) for i in dep["inputs"]]
            text = client.call(index, data, queued=dep.get("queue", True) is not False)
            answers.append(re.sub(rf"{TOKEN}-(here|gone)", "X", text))
        called += 1
        if answers[0] != answers[1]:
            told_apart.append(f"{index} {dep['targets']}")
    seen = list(SEEN)
    assert sorted(p.name for p in existing.parent.iterdir()) == ["clip.mp4"]  # nothing written beside it
    return seen, told_apart, called


def test_no_endpoint_opens_or_tells_apart_a_path_given_by_the_client(app, tmp_path):
    demo, runtime, url = app
    generator = runtime.generator
    seen, told_apart, called = probe(demo, url, tmp_path)
    assert called >= 15, called  # every event of the page: prepare, fit, cancel, renders, exports, ...
    assert seen == [] and told_apart == []
    assert runtime.generator is generator and demo.studio_sessions.runtime is runtime


def test_the_probe_catches_an_endpoint_that_takes_a_server_path(tmp_path):
    """The setup panel (--allow-setup, local only) loads weights from a path typed in the page: the same
    probe sees it open the file, so a passing probe above means something."""
    with serve(tmp_path / "app", allow_setup=True) as (demo, _, url):
        seen, _, _ = probe(demo, url, tmp_path)
    assert any(event == "open" for event, _ in seen), seen


def test_the_file_route_does_not_serve_paths_on_the_server(app, tmp_path):
    _, _, url = app
    secret = tmp_path / f"{TOKEN}-secret.txt"
    secret.write_text("not for the network")
    for path in (secret, Path(__file__), Path(__file__).parents[1] / "README.md"):
        answer = httpx.get(f"{url}/gradio_api/file={path}", timeout=30)
        assert answer.status_code in (403, 404) and "not for the network" not in answer.text, path


def test_without_allow_setup_the_page_has_no_setup_events(app):
    demo, _, _ = app
    config = demo.get_config_file()
    kinds = {c["id"]: c["type"] for c in config["components"]}
    for dep in config["dependencies"]:
        assert "textbox" not in [kinds[i] for i in dep["inputs"]], dep["targets"]


def test_setup_events_are_refused_away_from_this_machine():
    import app as app_module

    assert app_module.parse_args(["--allow-setup"]).allow_setup
    for argv in (["--allow-setup", "--host", "0.0.0.0"], ["--allow-setup", "--share"]):
        with pytest.raises(SystemExit):
            app_module.parse_args(argv)


def test_an_upload_over_the_limit_is_refused_before_it_is_kept(tmp_path):
    """``--max-upload-mb``: Gradio's upload route refuses a larger file (413) and keeps nothing of it."""
    import app as app_module

    options = app_module.launch_options(app_module.parse_args(["--max-upload-mb", "1"]))
    with serve(tmp_path / "app", allow_setup=False, launch=options) as (_, _, url):
        uploads = tmp_path / "app" / "gradio"  # serve's GRADIO_TEMP_DIR
        before = {p for p in uploads.rglob("*") if p.is_file()}
        answers = {}
        for name, size in (("large.mp4", 1_500_000), ("small.mp4", 500_000)):
            files = {"files": (name, b"\0" * size, "video/mp4")}
            answers[name] = httpx.post(f"{url}/gradio_api/upload", files=files, timeout=60)
        assert answers["small.mp4"].status_code == 200, answers["small.mp4"].text
        assert answers["large.mp4"].status_code == 413, answers["large.mp4"].text
        (small,) = answers["small.mp4"].json()  # where Gradio kept it: <upload folder>/<hash>/small.mp4
        # Gradio streams an upload to a temporary file of any name: nothing but the small file may have appeared
        after = {p for p in uploads.rglob("*") if p.is_file()}
        assert after - before == {Path(small)}, after - before
