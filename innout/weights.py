"""Downloading one model file: resumable, with a progress bar, checked before it is moved into place.

The generic part only: what a file is (``RemoteFile``) and how it is fetched. Each model says where it comes
from and passes its own content check (``download_file(..., validate=...)``): the EG3D weights in
``innout.eg3d.download``, CLIP in ``innout.edit.clip_weights``, published directions in ``innout.edit.published``.
Downloads are explicit (``python -m innout download eg3d``) or happen on first need, always with a
progress bar, into ``pretrained/`` (override with ``INNOUT_PRETRAINED_DIR``). A download goes to
``<name>.part`` first and resumes from it with an HTTP range request; the file is moved into place
only after its size, its SHA-256 (when one is known or pinned) and a content check have passed.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from .errors import UserError
from .places import pretrained_dir
from .storage import sha256_file

CHUNK = 1 << 20


class WeightsUnavailableError(UserError, RuntimeError):
    """A model file is neither on disk nor downloadable; the message tells the user what to do."""


class IntegrityError(UserError, RuntimeError):
    """A downloaded file failed its size, checksum or content check (it was deleted)."""


@dataclass(frozen=True)
class RemoteFile:
    key: str
    filename: str
    url: str
    manual_url: str
    env_var: str
    sha256: str | None = None
    description: str = ""
    supply: str | None = None  # how else to supply the file (default: --checkpoint / the environment variable)


def offline_message(remote: RemoteFile, dest: Path, reason: str) -> str:
    return (
        f"Could not download {remote.filename} ({reason}).\n"
        f"Download it by hand from {remote.manual_url}\n"
        f"  (direct link: {remote.url})\n"
        + (
            remote.supply
            or f"and either put it at {dest}, pass --checkpoint /path/to/{remote.filename}, "
            f"or set {remote.env_var}=/path/to/{remote.filename}."
        )
    )


def download_file(
    remote: RemoteFile,
    dest_dir: str | os.PathLike | None = None,
    *,
    url: str | None = None,
    sha256: str | None = None,
    validate: Callable[[Path], None] | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download ``remote`` into ``dest_dir`` (resuming a partial download) and return its path."""
    dest_dir = Path(dest_dir) if dest_dir else pretrained_dir()
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / remote.filename
    part = dest.with_name(dest.name + ".part")
    url = url or remote.url
    expected_sha = (sha256 or remote.sha256 or "").lower() or None

    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "innout"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the partial file is already complete
            response = None
        else:
            raise WeightsUnavailableError(offline_message(remote, dest, f"HTTP {exc.code} {exc.reason}")) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WeightsUnavailableError(offline_message(remote, dest, f"no connection: {reason}")) from exc

    if response is not None:
        with response:
            resumed = response.status == 206
            if not resumed:
                offset = 0
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length is not None else None
            with (
                open(part, "ab" if resumed else "wb") as f,
                tqdm(
                    total=total, initial=offset, unit="B", unit_scale=True, desc=remote.filename, disable=not progress
                ) as bar,
            ):
                try:
                    for block in iter(lambda: response.read(CHUNK), b""):
                        f.write(block)
                        bar.update(len(block))
                except OSError as exc:
                    raise WeightsUnavailableError(
                        offline_message(remote, dest, f"connection lost after {f.tell()} bytes; run again to resume")
                    ) from exc
        if total is not None and part.stat().st_size != total:
            raise WeightsUnavailableError(
                offline_message(
                    remote, dest, f"incomplete: {part.stat().st_size} of {total} bytes; run again to resume"
                )
            )

    try:
        if expected_sha:
            actual = sha256_file(part)
            if actual != expected_sha:
                raise IntegrityError(f"{remote.filename}: SHA-256 {actual} does not match the expected {expected_sha}")
        if validate is not None:
            validate(part)
    except Exception as exc:
        part.unlink(missing_ok=True)
        if isinstance(exc, IntegrityError):
            raise
        raise IntegrityError(f"{remote.filename}: the downloaded file is not valid ({exc}); it was deleted") from exc
    os.replace(part, dest)
    return dest
