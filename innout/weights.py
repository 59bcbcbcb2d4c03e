"""Model files that users download: where they come from, where they are cached, how they are checked.

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
from .storage import sha256_file

REPO_ROOT = Path(__file__).resolve().parent.parent
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


EG3D_FFHQ = RemoteFile(
    key="eg3d",
    filename="ffhqrebalanced512-128.pkl",
    url="https://api.ngc.nvidia.com/v2/models/nvidia/research/eg3d/versions/1/files/ffhqrebalanced512-128.pkl",
    manual_url="https://catalog.ngc.nvidia.com/orgs/nvidia/teams/research/models/eg3d",
    env_var="INNOUT_EG3D_CHECKPOINT",
    # NVIDIA publishes no checksum for this file; the download is checked by size and by reading it as
    # an EG3D generator. Pin one with INNOUT_EG3D_SHA256 to have it verified too.
    sha256=None,
    description="EG3D FFHQ 512-128 (rebalanced), NVIDIA Source Code License (non-commercial)",
)

REGISTRY = {EG3D_FFHQ.key: EG3D_FFHQ}


def pretrained_dir() -> Path:
    return Path(os.environ.get("INNOUT_PRETRAINED_DIR", REPO_ROOT / "pretrained"))


def _offline_message(remote: RemoteFile, dest: Path, reason: str) -> str:
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
            raise WeightsUnavailableError(_offline_message(remote, dest, f"HTTP {exc.code} {exc.reason}")) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WeightsUnavailableError(_offline_message(remote, dest, f"no connection: {reason}")) from exc

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
                        _offline_message(remote, dest, f"connection lost after {f.tell()} bytes; run again to resume")
                    ) from exc
        if total is not None and part.stat().st_size != total:
            raise WeightsUnavailableError(
                _offline_message(
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


def _validate_eg3d(path: Path) -> None:
    from .eg3d.checkpoint import read_official_generator

    read_official_generator(path)


def resolve_eg3d_checkpoint(explicit: str | os.PathLike | None = None, *, download: bool = True) -> Path:
    """Where the EG3D weights are: an explicit path, then ``INNOUT_EG3D_CHECKPOINT``, then
    ``pretrained/`` (a converted ``.innout.safetensors`` or the ``.pkl``), then a download."""
    remote = EG3D_FFHQ
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise WeightsUnavailableError(f"--checkpoint {path}: no such file")
        return path
    env = os.environ.get(remote.env_var)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise WeightsUnavailableError(f"{remote.env_var}={env}: no such file")
        return path
    directory = pretrained_dir()
    for candidate in (directory / remote.filename, directory / "ffhq512-128.pkl"):
        if candidate.is_file():
            return candidate
    if not download:
        raise WeightsUnavailableError(_offline_message(remote, directory / remote.filename, "not downloaded yet"))
    return download_eg3d(directory)


def download_eg3d(dest_dir: str | os.PathLike | None = None, *, url: str | None = None, progress: bool = True) -> Path:
    return download_file(
        EG3D_FFHQ,
        dest_dir,
        url=url,
        sha256=os.environ.get("INNOUT_EG3D_SHA256"),
        validate=_validate_eg3d,
        progress=progress,
    )
