"""From a raw face video (or photo) to aligned 512 crops, EG3D cameras and paste-back transforms.

``prepare`` runs: read -> track the main face's mesh -> fill short gaps -> zero-lag smoothing ->
EG3D crop per frame -> head pose -> smoothed cameras, and caches the result on disk under a key made
of the input's content, the options and the format version. The cache entry is written to a temporary
folder and renamed into place, so a failure never leaves a half-written entry.

Memory stays bounded whatever the input's length: the input is decoded twice as a stream, one frame at
a time. The first pass keeps only landmarks and crop points (about 12 KB a frame); smoothing and the
crop transforms need all of them. The second pass warps each kept frame into its 512x512 crop, which
goes straight into the cache entry's ``crops.npy`` on disk (768 KB a frame, never held in memory).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

from .. import storage
from ..places import prepare_cache_dir
from .dataset import is_eg3d_dataset, load_eg3d_dataset
from .media import InputError, open_media
from .media import load_media as load_media  # kept importable from here (callers and tests use it)
from .prepared import FORMAT_VERSION, PreparedVideo, PrepareOptions
from .tracking import process_media


def input_digest(path: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    for f in files:
        digest.update(f.name.encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def cache_key(path: Path, options: PrepareOptions) -> str:
    payload = json.dumps({"input": input_digest(path), "options": dataclasses.asdict(options), "v": FORMAT_VERSION})
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def prepare(
    path: str | os.PathLike,
    options: PrepareOptions | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    progress: bool = True,
) -> PreparedVideo:
    """Aligned crops, cameras and transforms for every usable frame of a video, a folder of frames or an image."""
    options = options or PrepareOptions()
    path = Path(path)
    if is_eg3d_dataset(path):
        return load_eg3d_dataset(path)
    # a missing path has no key; open_media below reports it
    entry = Path(cache_dir or prepare_cache_dir()) / cache_key(path, options) if path.exists() else None
    if entry is None:
        open_media(path, stride=options.stride, max_frames=options.max_frames)  # raises the missing-input error
        raise InputError(f"{path}: no such file or folder")
    if use_cache and (entry / "meta.json").is_file():
        try:  # a cache hit needs no lock (a read-only cache serves its entries) and does not decode the video
            return PreparedVideo.load(entry)
        except storage.CorruptEntryError:
            pass  # repaired below, under the lock
    with storage.writing("the preprocessing cache", entry.parent):
        entry.parent.mkdir(parents=True, exist_ok=True)
    with storage.exclusive(entry.with_name(entry.name + ".lock"), f"the prepared frames of {path.name}"):
        if use_cache and (entry / "meta.json").is_file():
            try:
                return PreparedVideo.load(entry)  # another process may have made it while we waited
            except storage.CorruptEntryError as exc:
                storage.discard(entry, str(exc))
        media = open_media(path, stride=options.stride, max_frames=options.max_frames)
        crops_file = storage.temporary_name(entry.with_name(entry.name + ".crops.npy"))
        try:
            with storage.writing("the prepared frames", crops_file, only_write_failures=True):
                prepared = process_media(media, options, progress, crops_file)
            prepared.source = str(path)
            return prepared.save(entry, audio_from=path if media.audio_codec else None, crops_file=crops_file)
        finally:
            storage.remove_quietly(crops_file)
