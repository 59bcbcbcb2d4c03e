"""Loading a generator from whatever file the user has: an official EG3D ``.pkl`` (read without executing it,
``official_pickle``) or the project's ``.safetensors`` (``weights_file``).

``load_generator`` converts a pickle into the project's format once, beside the pickle, or when that folder is
not writable in ``pretrained/converted/`` or the cache folder (``$INNOUT_CACHE_DIR/converted``); with no
writable folder it warns and reads the pickle each time. A damaged converted copy is reported once and
converted again.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import torch

from ..errors import UserError
from ..places import cache_root, pretrained_dir
from .building import CheckpointError, CheckpointNotFoundError, build_generator
from .generator import TriPlaneGenerator
from .official_pickle import read_official_generator
from .weights_file import load_safetensors_generator, read_safetensors_metadata, save_generator

log = logging.getLogger(__name__)

CONVERTED_SUFFIX = ".innout.safetensors"


def _source_signature(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def converted_candidates(pkl: Path, cache_dir: Path | None = None) -> list[Path]:
    """Where the converted weights of ``pkl`` may be kept, in order of preference: ``cache_dir`` when given;
    else beside the pickle, then ``pretrained/converted/`` and the cache folder (there named with a digest
    of the pickle's path, so two pickles of one name do not share an entry)."""
    if cache_dir is not None:
        return [Path(cache_dir) / (pkl.stem + CONVERTED_SUFFIX)]
    tag = hashlib.sha256(str(pkl.resolve()).encode()).hexdigest()[:12]
    name = f"{pkl.stem}-{tag}{CONVERTED_SUFFIX}"
    return [
        pkl.parent / (pkl.stem + CONVERTED_SUFFIX),
        pretrained_dir() / "converted" / name,
        cache_root() / "converted" / name,
    ]


def _discard(path: Path, reason: str) -> None:
    from ..storage import discard

    try:
        discard(path, reason)
    except OSError as exc:  # a read-only folder: the next writable place gets the fresh copy
        log.warning("could not remove %s (%s)", path, exc)


def _reuse_converted(converted: Path, signature: str, device) -> TriPlaneGenerator | None:
    """The generator of a converted copy made from this very pickle, or None (absent, stale, or damaged:
    reported once and removed)."""
    from ..storage import DIGEST_KEY

    if not converted.is_file():
        return None
    try:
        meta = read_safetensors_metadata(converted)
    except CheckpointError as exc:
        _discard(converted, str(exc))
        return None
    if meta.get("source_signature") != signature:
        return None  # the pickle changed since: convert it again
    if DIGEST_KEY not in meta:
        log.info("%s was written by an older version (no content hash): converting the pickle again", converted)
        return None
    try:
        return load_safetensors_generator(converted, device, require_digest=True)
    except CheckpointError as exc:
        _discard(converted, str(exc))
        return None


def _keep_converted(G: TriPlaneGenerator, pkl: Path, signature: str, candidates: list[Path]) -> Path | None:
    """Save the converted weights in the first candidate folder that can be written; warn when none can."""
    from safetensors import SafetensorError

    tried = []
    for converted in candidates:
        try:
            converted.parent.mkdir(parents=True, exist_ok=True)
            return save_generator(G, converted, {"source": pkl.name, "source_signature": signature})
        except (OSError, UserError, SafetensorError) as exc:
            tried.append(f"{converted.parent} ({str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r})")
    log.warning(
        "could not keep the converted weights of %s anywhere (%s): the pickle will be read again next time",
        pkl, "; ".join(tried),
    )  # fmt: skip
    return None


def load_generator(
    path: str | os.PathLike,
    device: str | torch.device = "cpu",
    *,
    convert: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> TriPlaneGenerator:
    """Load a generator from an official EG3D ``.pkl`` or the project's ``.safetensors``.

    A pickle is read without executing anything in it; with ``convert`` its weights are also saved as
    ``<name>.innout.safetensors`` (beside it, or in ``cache_dir``, or where ``converted_candidates`` finds
    room) and reused while the pickle's size and modification time are unchanged.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"generator checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        return load_safetensors_generator(path, device)
    candidates = converted_candidates(path, Path(cache_dir) if cache_dir else None) if convert else []
    signature = _source_signature(path)
    for converted in candidates:
        G = _reuse_converted(converted, signature, device)
        if G is not None:
            return G
    official = read_official_generator(path)
    G = build_generator(official.config, official.state_dict, "cpu", what=str(path))
    if candidates:
        _keep_converted(G, path, signature, candidates)
    return G.to(device)
