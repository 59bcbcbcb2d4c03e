"""The project's generator file: one ``.safetensors`` holding the state dict, the JSON configuration in the
file's metadata and the tensors' content hash (``innout.storage``); scene files use the same checks.

A ``.safetensors`` generator the user gives has no pickle behind it, so damage is a ``CheckpointError``. Files
written before the content hash existed (and other tools' files in this format) are accepted without it when
every weight is finite: their truncation is still caught by safetensors' own size checks, and garbled bytes
mostly show as NaN/inf; a finite garbling of such a file cannot be detected.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..safe_pickle import describe
from .building import (
    CheckpointError,
    CheckpointNotFoundError,
    check_state_shapes,
    config_from_metadata,
    fill_generator,
    meta_generator,
)
from .generator import TriPlaneGenerator

FORMAT_NAME = "innout-eg3d"
FORMAT_VERSION = "1"


def save_generator(G: TriPlaneGenerator, path: str | os.PathLike, extra_metadata: dict[str, str] | None = None) -> Path:
    """Write the project's format: safetensors with the config as JSON metadata and the content hash
    (atomic). ``StorageError`` when the folder cannot be written."""
    from safetensors import SafetensorError

    from ..storage import StorageError, save_tensors

    metadata = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "config": json.dumps(G.config.to_dict())}
    metadata.update(extra_metadata or {})
    try:
        return save_tensors(G.state_dict(), path, metadata)
    except SafetensorError as exc:  # safetensors reports its I/O errors (a read-only folder...) as its own type
        raise StorageError(f"could not write the generator at {path}: {exc}") from exc


def read_safetensors_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of a generator file; ``CheckpointError`` when its header cannot be read."""
    from ..storage import CorruptEntryError, read_metadata

    try:
        return read_metadata(path)
    except CorruptEntryError as exc:
        raise CheckpointError(f"{exc} (the file is damaged, incomplete or not a safetensors file)") from exc


def _declared_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except Exception as exc:  # safetensors raises its own error types for malformed headers
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc


def load_safetensors_generator(
    path: str | os.PathLike, device="cpu", *, require_digest: bool = False
) -> TriPlaneGenerator:
    """A generator from the project's format. The configuration and the tensors' shapes are checked from
    the file's header before any tensor is read; then the content hash (when present, or required) and
    the weights' finiteness. Any problem is a ``CheckpointError`` naming the file."""
    from ..storage import CorruptEntryError, load_tensors

    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"generator checkpoint not found: {path}")
    meta = read_safetensors_metadata(path)
    if meta.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path}: not an In-N-Out generator file (format {describe(meta.get('format'))})")
    G = meta_generator(config_from_metadata(meta.get("config"), str(path)), str(path))
    check_state_shapes(G, _declared_shapes(path), str(path))
    try:
        tensors, _ = load_tensors(path, require_digest=require_digest)
    except CorruptEntryError as exc:
        raise CheckpointError(f"{exc}; download or convert the generator again") from exc
    return fill_generator(G, tensors, device, str(path), finite_checked=True)


