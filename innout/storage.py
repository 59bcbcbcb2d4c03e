"""Files the project writes and reads back: atomic, verified on read, locked while computed.

Every cache entry (preprocessing, fit stages and their checkpoints, converted weights) carries a content
hash written with it and checked when it is read: a truncated or garbled entry is reported once
(``CorruptEntryError``, a warning in the log) and recomputed by its owner, never used. Writers work in a
temporary name renamed into place; temporaries left by a killed process are removed by the next writer.
``exclusive`` is an inter-process lock, so two processes asking for the same entry compute it once: the
second waits, then finds it done.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from .errors import UserError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
DIGEST_KEY = "innout_sha256"  # the safetensors metadata key of the tensors' content hash


class CorruptEntryError(UserError, ValueError):
    """A stored file failed its integrity check (truncated, garbled, or not what it claims to be)."""


class StorageError(UserError, OSError):
    """A file or folder could not be written (read-only, full disk, no permission): the message says which."""


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file, read in 1 MB blocks (constant memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of named tensors (names, dtypes, shapes and bytes, in name order): independent of how a
    file format lays them out, so it can be computed before writing and after reading."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(json.dumps([name, str(t.dtype), list(t.shape)]).encode())
        if t.numel():
            digest.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    return digest.hexdigest()


def _hint(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return " (the folder is not writable: choose another folder or fix its permissions)"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return " (the disk is full: free some space or choose another folder)"
    return ""


def _unsaid_cause(path: Path) -> int | None:
    """For a write that failed without an errno (a pipe to an encoder breaks without saying why): EROFS when
    the file system holding ``path`` (or its nearest existing parent) is read-only, ENOSPC when it has less
    than 1 MB free, else None."""
    for folder in [path, *path.parents]:
        if folder.exists():
            try:
                stats = os.statvfs(folder)
            except OSError:
                return None
            if stats.f_flag & os.ST_RDONLY:
                return errno.EROFS
            return errno.ENOSPC if stats.f_bavail * stats.f_frsize < (1 << 20) else None
    return None


def _describe_os_error(exc: OSError, what: str, path: Path) -> StorageError:
    cause = _unsaid_cause(path) if exc.errno is None else None
    if cause is not None:
        exc = OSError(cause, os.strerror(cause))
    reason = exc.strerror or type(exc).__name__
    return StorageError(f"could not write {what} at {shown_path(path)}: {reason}{_hint(exc)}")


def why_incomplete(path: Path, exc: BaseException) -> str:
    """What most likely cut a file short: a full disk, else what the reader said."""
    if _unsaid_cause(path) == errno.ENOSPC:
        return "the disk is full: free some space or choose another folder"
    return str(exc).strip()[-200:] or type(exc).__name__


def remove_quietly(path: Path) -> None:
    """Remove a temporary if it is there; never raises (a read-only folder refuses even that, and the error
    being reported is the one that matters)."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def describe_os_error(exc: OSError) -> str:
    """A one-line message for an OSError met at a boundary: the path(s), the reason, what to do."""
    paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{paths}: {reason}{_hint(exc)}" if paths else f"{reason}{_hint(exc)}"


WRITE_FAILURES = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def writing(what: str, path: str | os.PathLike, *, only_write_failures: bool = False) -> Iterator[None]:
    """Turn an OSError raised while writing ``path`` into a ``StorageError`` naming it. With
    ``only_write_failures`` (around work that also reads) only a read-only, forbidden or full destination is."""
    try:
        yield
    except StorageError:
        raise
    except OSError as exc:
        if only_write_failures and exc.errno not in WRITE_FAILURES:
            raise
        raise _describe_os_error(exc, what, Path(path)) from exc


def temporary_name(path: Path) -> Path:
    """The temporary sibling a writer of ``path`` uses: carries the writer's pid, so orphans can be told."""
    return path.with_name(f"{path.name}.tmp-{os.getpid()}")


def shown_path(path: Path) -> Path:
    """The file the user asked for, given its temporary name (``partial_name``, ``temporary_name``)."""
    path = Path(path)
    name = re.sub(r"^\.(.*)\.partial-\d+(\.\w+)?$", r"\1\2", path.name)
    return path.with_name(re.sub(r"\.tmp-\d+$", "", name))


def partial_name(path: Path) -> Path:
    """A hidden temporary sibling of an output file that keeps its extension (encoders pick the format from it):
    the output is written there and renamed into place when complete."""
    return path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


def _last_touched(entry: Path) -> float:
    """The newest modification time of ``entry`` and, for a folder, of the files in it."""
    times = [entry.lstat().st_mtime]
    if entry.is_dir() and not entry.is_symlink():
        times += [child.lstat().st_mtime for child in entry.iterdir()]
    return max(times)


def remove_orphans(
    folder: Path, names: str = r".+", *, quiet_s: float = 60.0, max_age_s: float = 24 * 3600
) -> list[Path]:
    """Remove the temporaries ``<name>.tmp-<pid>`` in ``folder`` (``name`` matching the regular expression
    ``names``: only what the caller writes there) whose writer is gone: its pid is not running here and
    nothing in it changed for ``quiet_s`` (a writer in another container or on another machine keeps its
    files changing), or nothing changed for ``max_age_s`` (a pid may be reused). Returns what was removed."""
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    pattern = re.compile(rf"(?:{names})\.tmp-(?P<pid>\d{{1,10}})")
    now = time.time()
    for entry in folder.iterdir():
        found = pattern.fullmatch(entry.name)
        if found is None or int(found["pid"]) == os.getpid():
            continue
        try:
            quiet = now - _last_touched(entry)
        except OSError:
            continue
        if quiet > max_age_s or (quiet > quiet_s and not _pid_alive(int(found["pid"]))):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            log.info("removed %s, left by an interrupted writer", entry)
            removed.append(entry)
    return removed


def discard(path: Path, reason: str) -> None:
    """Report a corrupt entry once and remove it, so that it is recomputed."""
    log.warning("%s is corrupt (%s): discarding it and computing it again", path, reason)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


# -- safetensors with a content hash ---------------------------------------------------------------


def save_tensors(
    tensors: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, str] | None = None
) -> Path:
    """Write ``tensors`` as safetensors with their content hash in the metadata, atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta = dict(metadata or {})
    meta[DIGEST_KEY] = tensors_digest(tensors)
    tmp = temporary_name(path)
    with writing("a result file", path):
        try:
            save_file(tensors, str(tmp), metadata=meta)
            os.replace(tmp, path)
        except OSError:
            raise
        except Exception as exc:  # safetensors reports I/O failures as its own error type: "... (os error 28)"
            code = re.search(r"os error (\d+)", str(exc))
            if code is None:
                raise
            raise OSError(int(code.group(1)), os.strerror(int(code.group(1)))) from exc
        finally:
            remove_quietly(tmp)
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of a safetensors file; ``CorruptEntryError`` when its header cannot be read."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as exc:  # safetensors raises its own error type for any malformed header
        raise CorruptEntryError(f"{path}: not a readable safetensors file ({_first_line(exc)})") from exc


def load_tensors(
    path: str | os.PathLike, device: str | torch.device = "cpu", *, require_digest: bool = True
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a file written by ``save_tensors`` and check its content hash; ``CorruptEntryError`` if the file is
    truncated, garbled, or (with ``require_digest``) carries no hash. Non-finite floats are refused too."""
    from safetensors.torch import load_file

    meta = read_metadata(path)
    try:
        tensors = load_file(str(path))
    except Exception as exc:
        raise CorruptEntryError(f"{path}: the tensors cannot be read ({_first_line(exc)})") from exc
    expected = meta.get(DIGEST_KEY)
    if expected is None:
        if require_digest:
            raise CorruptEntryError(f"{path}: carries no content hash (written by another tool or an older version)")
    elif tensors_digest(tensors) != expected:
        raise CorruptEntryError(f"{path}: the content does not match its hash (the file was damaged)")
    bad = non_finite(tensors)
    if bad:
        raise CorruptEntryError(f"{path}: {len(bad)} tensors hold NaN or infinite values ({', '.join(bad[:3])})")
    return {k: v.to(device) for k, v in tensors.items()}, meta


def non_finite(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors holding NaN or infinity."""
    return [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]


# -- files in a folder, each with its hash ----------------------------------------------------------


_VERIFIED: dict[tuple[int, int, int, int], str] = {}  # (device, inode, size, mtime) -> its SHA-256, this process


def _identity(path: Path) -> tuple[int, int, int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _hash_once(path: Path) -> str:
    """``sha256_file``, remembered for this process while the file is the same (same inode, size and
    modification time; a rename keeps them): the app reads a prepared clip many times."""
    identity = _identity(path)
    digest = _VERIFIED.get(identity)
    if digest is None:
        digest = _VERIFIED[identity] = sha256_file(path)
    return digest


def manifest(folder: Path, names: list[str]) -> dict[str, str]:
    """``{name: sha256}`` of the files ``names`` in ``folder``."""
    return {name: _hash_once(folder / name) for name in names}


def verify_manifest(folder: Path, files: dict[str, str]) -> None:
    """Check every file of a manifest; ``CorruptEntryError`` naming the first that is missing or differs."""
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            raise CorruptEntryError(f"{path}: missing")
        if _hash_once(path) != expected:
            raise CorruptEntryError(f"{path}: the content does not match its hash (the file was damaged)")


# -- content-addressed checkpoints ------------------------------------------------------------------


def save_checkpoint(obj: dict, folder: Path, stem: str = "checkpoint") -> Path:
    """``torch.save`` ``obj`` as ``<stem>-<hash>.pt`` in ``folder`` (the name carries the file's hash, so one
    rename publishes file and hash together), then remove older checkpoints of that stem."""
    tmp = temporary_name(folder / f"{stem}.pt")
    with writing("a checkpoint", folder):
        try:
            torch.save(obj, tmp)
            final = folder / f"{stem}-{sha256_file(tmp)[:16]}.pt"
            os.replace(tmp, final)
        finally:
            remove_quietly(tmp)
    for old in folder.glob(f"{stem}-*.pt"):
        if old != final:
            old.unlink(missing_ok=True)
    return final


def latest_checkpoint(folder: Path, stem: str = "checkpoint") -> Path | None:
    """The newest checkpoint of ``stem`` in ``folder`` whose content matches the hash in its name; damaged
    ones are reported and removed."""
    candidates = sorted(folder.glob(f"{stem}-*.pt"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in candidates:
        if sha256_file(path)[:16] == path.stem.rsplit("-", 1)[-1]:
            return path
        discard(path, "its content does not match the hash in its name")
    return None


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:
        raise CorruptEntryError(f"{path}: not a readable checkpoint ({_first_line(exc)})") from exc


# -- locks ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def exclusive(lock_path: Path, what: str, notify: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold an inter-process lock on ``lock_path`` while computing ``what``; a second process asking for it
    is told that it waits, and waits. The lock is released when the holder exits, even when killed."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with writing("a lock file", lock_path):
        handle = open(lock_path, "a+b")  # noqa: SIM115 - held until the finally below
    try:
        if not _try_lock(handle):
            message = f"waiting for another process computing {what} ({lock_path})"
            log.info(message)
            if notify is not None:
                notify(message)
            _lock(handle)
        yield
    finally:
        _unlock(handle)
        handle.close()


if os.name == "nt":  # pragma: no cover - the CI and the Spaces run Linux
    import msvcrt

    def _try_lock(handle) -> bool:
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _lock(handle) -> None:
        while not _try_lock(handle):
            time.sleep(0.5)

    def _unlock(handle) -> None:
        with contextlib.suppress(OSError):
            msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(handle) -> bool:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        except OSError as exc:  # a file system without locks (some network mounts): go on unlocked
            log.warning("cannot lock %s (%s): two processes on the same work may both compute it", handle.name, exc)
            return True

    def _lock(handle) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)

    def _unlock(handle) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def array_digest(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(json.dumps([str(a.dtype), list(a.shape)]).encode())
        digest.update(memoryview(a).cast("B"))
    return digest.hexdigest()


# -- small journals of measurements (how long things took here) ----------------------------------------


def read_journal(path: Path) -> list[dict]:
    """The rows of a JSON journal (a list of objects); a missing or damaged file reads as empty, never fatal."""
    try:
        rows = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def append_journal(path: Path, row: dict, *, keep: int = 50) -> None:
    """Add ``row`` to the journal, keeping the latest ``keep`` rows, written atomically. A folder that cannot be
    written (read-only cache) loses the row: a measurement is a nicety, never a failure."""
    rows = [*read_journal(path)[-(keep - 1) :], row]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
            json.dump(rows, f)
        os.replace(f.name, path)
    except OSError:
        return
