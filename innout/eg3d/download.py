"""The EG3D weights: where they come from, where they are looked for, and the check a download must pass
(it must read as an EG3D generator, without executing anything)."""

from __future__ import annotations

import os
from pathlib import Path

from ..places import pretrained_dir
from ..weights import RemoteFile, WeightsUnavailableError, download_file, offline_message
from .official_pickle import read_official_generator

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


def _validate_eg3d(path: Path) -> None:
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
        raise WeightsUnavailableError(offline_message(remote, directory / remote.filename, "not downloaded yet"))
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
