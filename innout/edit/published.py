"""Published edit directions for EG3D that users download on request (never bundled).

GOAE (Yuan et al., ICCV 2023) released W+ edit offsets for EG3D FFHQ in its repository
(``example/ws_edit/{age,glass,anger}.npy``, shape [1, 14, 512]; used as w' = w + alpha * offset, alpha 1 by
default). The repository carries no licence statement, so the files are fetched from their public URLs
when a user asks (``python -m innout download directions goae``), pinned to one commit, checked as W+
offsets before they are kept, and saved as ``pretrained/directions/goae_NAME.npy`` (the slider's name).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..places import directions_dir
from ..weights import RemoteFile, download_file
from .directions import DirectionError, _read_boundary

GOAE_COMMIT = "b1e1548b18f1f2429eacb8ba37f600e69eb6114a"  # the commit that added age, glass and anger
GOAE_RAW = f"https://raw.githubusercontent.com/jiangyzy/GOAE/{GOAE_COMMIT}/example/ws_edit"


@dataclass(frozen=True)
class PublishedSet:
    key: str
    names: tuple[str, ...]
    base_url: str
    page: str
    note: str


PUBLISHED = {
    "goae": PublishedSet(
        key="goae",
        names=("age", "glass", "anger"),
        base_url=GOAE_RAW,
        page="https://github.com/jiangyzy/GOAE/tree/main/example/ws_edit",
        note="GOAE's W+ edit offsets for EG3D FFHQ (no licence statement in their repository: downloaded, "
        "never bundled)",
    ),
}


def _validate_offsets(path: Path) -> None:
    """A downloaded file must be W+ offsets ([1, num_ws, 512] floats), not an HTML page or a Git LFS pointer."""
    try:
        rows = _read_boundary(path)
    except DirectionError as exc:
        head = path.read_bytes()[:64]
        if head.startswith(b"version https://git-lfs"):
            raise DirectionError("the server sent a Git LFS pointer, not the array") from exc
        raise
    if len(rows) < 2:
        raise DirectionError(f"expected W+ offsets [1, num_ws, 512], got a single 512-vector ({path.name})")


def download_published(
    key: str, dest_dir: str | os.PathLike | None = None, *, base_url: str | None = None, progress: bool = True
) -> list[Path]:
    """Download every direction of the published set ``key`` into ``dest_dir`` (default:
    pretrained/directions) as ``KEY_NAME.npy``; files already there are kept. Returns their paths."""
    if key not in PUBLISHED:
        raise UserError(f"unknown published directions {key!r}; available: {', '.join(PUBLISHED)}")
    published = PUBLISHED[key]
    dest = Path(dest_dir) if dest_dir else directions_dir()
    base = (base_url or published.base_url).rstrip("/")
    paths = []
    for name in published.names:
        target = dest / f"{key}_{name}.npy"
        if not target.is_file():
            remote = RemoteFile(
                key=f"{key}:{name}", filename=target.name, url=f"{base}/{name}.npy", manual_url=published.page,
                env_var="", description=published.note, supply=f"and put it at {target}.",
            )  # fmt: skip
            download_file(remote, dest, validate=_validate_offsets, progress=progress)
        paths.append(target)
    return paths
