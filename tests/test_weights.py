"""Downloading weights: against a small HTTP server on 127.0.0.1 (range requests, failures, offline)."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from innout.eg3d import download as eg3d_download
from innout.weights import IntegrityError, RemoteFile, WeightsUnavailableError, download_file

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class _Handler(http.server.BaseHTTPRequestHandler):
    payload = PAYLOAD
    fail_after: int | None = None  # bytes to send before dropping the connection
    requests: list[str | None] = []

    def do_GET(self):  # noqa: N802 (http.server API)
        type(self).requests.append(self.headers.get("Range"))
        if self.path != "/file.bin":
            self.send_error(404)
            return
        data, start = self.payload, 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.fail_after is not None:
            self.wfile.write(body[: self.fail_after])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    handler = type("Handler", (_Handler,), {"requests": [], "fail_after": None})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def remote(url: str, sha256: str | None = None) -> RemoteFile:
    return RemoteFile("test", "file.bin", url, "https://example.invalid/manual", "TEST_CHECKPOINT", sha256)


def test_download_checks_sha_and_moves_into_place(server, tmp_path):
    handler, base = server
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    path = download_file(remote(base + "/file.bin", sha), tmp_path, progress=False)
    assert path == tmp_path / "file.bin" and path.read_bytes() == PAYLOAD
    assert not (tmp_path / "file.bin.part").exists()


def test_download_resumes_a_partial_file(server, tmp_path):
    handler, base = server
    (tmp_path / "file.bin.part").write_bytes(PAYLOAD[:300_000])
    path = download_file(remote(base + "/file.bin"), tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert handler.requests == ["bytes=300000-"]


def test_interrupted_download_keeps_the_part_and_resumes(server, tmp_path):
    handler, base = server
    handler.fail_after = 200_000
    with pytest.raises(WeightsUnavailableError, match="run again to resume"):
        download_file(remote(base + "/file.bin"), tmp_path, progress=False)
    part = tmp_path / "file.bin.part"
    assert part.stat().st_size == 200_000
    handler.fail_after = None
    assert download_file(remote(base + "/file.bin"), tmp_path, progress=False).read_bytes() == PAYLOAD


def test_wrong_checksum_or_content_deletes_the_download(server, tmp_path):
    _, base = server
    with pytest.raises(IntegrityError, match="SHA-256"):
        download_file(remote(base + "/file.bin", "0" * 64), tmp_path, progress=False)
    assert not list(tmp_path.iterdir())

    def validate(path: Path) -> None:
        raise ValueError("not an EG3D pickle")

    with pytest.raises(IntegrityError, match="not an EG3D pickle"):
        download_file(remote(base + "/file.bin"), tmp_path, validate=validate, progress=False)
    assert not list(tmp_path.iterdir())


def test_offline_error_explains_the_manual_route(tmp_path):
    # port 9 on loopback: nothing listens, the connection is refused at once
    with pytest.raises(WeightsUnavailableError) as info:
        download_file(remote("http://127.0.0.1:9/file.bin"), tmp_path, progress=False, timeout=5)
    message = str(info.value)
    assert "https://example.invalid/manual" in message and "--checkpoint" in message and "TEST_CHECKPOINT" in message


def test_http_errors_are_reported(server, tmp_path):
    _, base = server
    with pytest.raises(WeightsUnavailableError, match="HTTP 404"):
        download_file(remote(base + "/missing.bin"), tmp_path, progress=False)


def test_eg3d_download_validates_the_pickle(server, tmp_path):
    _, base = server
    with pytest.raises(IntegrityError, match="not valid"):
        eg3d_download.download_eg3d(tmp_path, url=base + "/file.bin", progress=False)
    assert not list(tmp_path.iterdir())


def test_resolve_order(tmp_path, monkeypatch):
    monkeypatch.delenv(eg3d_download.EG3D_FFHQ.env_var, raising=False)
    monkeypatch.setenv("INNOUT_PRETRAINED_DIR", str(tmp_path / "pretrained"))
    with pytest.raises(WeightsUnavailableError, match="not downloaded yet"):
        eg3d_download.resolve_eg3d_checkpoint(download=False)
    explicit = tmp_path / "mine.pkl"
    explicit.write_bytes(b"x")
    assert eg3d_download.resolve_eg3d_checkpoint(explicit) == explicit
    with pytest.raises(WeightsUnavailableError, match="no such file"):
        eg3d_download.resolve_eg3d_checkpoint(tmp_path / "nope.pkl")
    monkeypatch.setenv(eg3d_download.EG3D_FFHQ.env_var, str(explicit))
    assert eg3d_download.resolve_eg3d_checkpoint() == explicit
    monkeypatch.delenv(eg3d_download.EG3D_FFHQ.env_var)
    stored = tmp_path / "pretrained" / eg3d_download.EG3D_FFHQ.filename
    stored.parent.mkdir()
    stored.write_bytes(b"x")
    assert eg3d_download.resolve_eg3d_checkpoint(download=False) == stored
