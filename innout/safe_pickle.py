"""Unpickling with an allowlist, and torch files read within size limits: how this project reads pickles.

A pickle can call any importable function while loading. ``RestrictedUnpickler`` resolves only the
globals named in its allowlist (each mapped to a safe implementation of our choosing) and refuses
everything else before anything is called, with an error naming the global.

A small file can also ask for a lot of memory: an array or storage that declares far more elements than
the file holds, or a zip record that inflates a thousandfold (a torch ``.pt`` is a zip archive). Nothing
here allocates by a declared size before checking it against the bytes the file really has:
an array's state must hold the bytes its shape declares (``CheckedArray``) and only plain number dtypes
are rebuilt (``DtypeSpec``: numpy's own unpickling of crafted object or structured dtypes can crash the
interpreter), and ``check_torch_archive`` refuses compressed records and records larger than the archive
before ``torch.load`` sees them.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import pickle
import reprlib
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UserError

ZIP_MAGIC = b"PK\x03\x04"


class UnsafePickleError(UserError, pickle.UnpicklingError):
    """The pickle references a global outside the allowlist; nothing from it was executed."""


class FileLimitError(UserError, ValueError):
    """The file declares more data than it holds, or more than a documented limit; nothing was allocated."""


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 40
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxtuple, _SHORT.maxdict = 2, 4, 4, 4


def describe(value: Any) -> str:
    """A short description of an untrusted value for a message: ``str()`` of a number of many thousand
    digits or of a deeply nested list fails itself."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"a number of about {int(value.bit_length() * 0.30103)} digits"
    try:
        return _SHORT.repr(value)
    except Exception:  # ValueError (digits), RecursionError (nesting), anything a crafted repr raises
        return f"a {type(value).__name__}"


class RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, allowed: dict[str, Any], what: str = "the file") -> None:
        super().__init__(file)
        self.allowed = allowed
        self.what = what

    def find_class(self, module: str, name: str):
        key = f"{module}.{name}"
        if key not in self.allowed:
            raise UnsafePickleError(
                f"refusing to load {self.what}: it references the global {key!r}, which is not on the allowlist "
                "(nothing from the file was executed)"
            )
        return self.allowed[key]

    def persistent_load(self, pid):
        raise UnsafePickleError(f"refusing to load {self.what}: unexpected persistent id")


PLAIN_DTYPE_KINDS = "biufc"  # booleans, integers, unsigned integers, floats, complex numbers
MAX_ARRAY_DIMS = 32


class DtypeSpec:
    """What a pickle's ``numpy.dtype(...)`` asked for. Made into a dtype (``resolve``) only when it is a
    plain number type: numpy's own dtype and array unpickling accept structured and object dtypes, whose
    crafted states can crash the interpreter."""

    def __init__(self, spec: Any, align: Any = False, copy: Any = True) -> None:
        self.spec, self.byteorder = spec, "="

    def __setstate__(self, state: Any) -> None:
        plain = isinstance(state, tuple) and len(state) >= 5 and all(s is None for s in state[2:5])
        if not plain or state[1] not in ("<", ">", "|", "="):
            raise UnsafePickleError(f"refusing a dtype with a structured or object state: {describe(state)}")
        self.byteorder = state[1]

    def resolve(self) -> np.dtype:
        if not isinstance(self.spec, str) or len(self.spec) > 8:
            raise UnsafePickleError(f"refusing the dtype {describe(self.spec)}: only plain number types are read")
        try:
            dtype = np.dtype(self.spec)
        except TypeError as exc:
            raise UnsafePickleError(f"refusing the dtype {self.spec!r}: {exc}") from None
        if dtype.kind not in PLAIN_DTYPE_KINDS or dtype.fields or dtype.subdtype:
            raise UnsafePickleError(f"refusing the dtype {self.spec!r}: only plain number types are read")
        return dtype.newbyteorder(self.byteorder) if self.byteorder in "<>" else dtype


def resolve_dtype(value: Any) -> np.dtype:
    if not isinstance(value, DtypeSpec):
        raise UnsafePickleError(f"expected a dtype, found {type(value).__name__}")
    return value.resolve()


class CheckedArray(np.ndarray):
    """An array being unpickled: its state (shape, dtype, raw bytes) is checked against itself before numpy
    sees it, so the array is never allocated from a declared shape the data does not fill."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise UnsafePickleError("refusing an array with a malformed state")
        version, shape, dtype, fortran, data = state if len(state) == 5 else (1, *state)
        dtype = resolve_dtype(dtype)
        ok = isinstance(shape, tuple) and len(shape) <= MAX_ARRAY_DIMS
        if not ok or not all(type(n) is int and n >= 0 for n in shape):
            raise UnsafePickleError(f"refusing an array of shape {describe(shape)}")
        if isinstance(data, str):  # written by Python 2
            data = data.encode("latin1")
        declared = math.prod(shape) * dtype.itemsize
        if not isinstance(data, bytes | bytearray) or len(data) != declared:
            held = len(data) if isinstance(data, bytes | bytearray) else type(data).__name__
            raise FileLimitError(f"an array of shape {shape} declares {declared} bytes but holds {held}")
        np.ndarray.__setstate__(self, (version, shape, dtype, bool(fortran), data))


def _numpy_reconstruct(cls, shape, dtype):
    """numpy pickles an array as an empty placeholder (shape (0,)) filled by ``__setstate__``; the
    placeholder is a ``CheckedArray``, whose ``__setstate__`` checks the state first."""
    if cls is not np.ndarray:
        raise UnsafePickleError(f"refusing to rebuild an array of type {cls!r}")
    if not isinstance(shape, tuple) or len(shape) != 1 or shape[0] != 0:
        raise FileLimitError(f"refusing an array placeholder of shape {describe(shape)} (numpy writes (0,))")
    return np.ndarray.__new__(CheckedArray, (0,), np.uint8)


NUMPY_ARRAY_GLOBALS: dict[str, Any] = {
    "numpy.core.multiarray._reconstruct": _numpy_reconstruct,
    "numpy._core.multiarray._reconstruct": _numpy_reconstruct,
    "numpy.ndarray": np.ndarray,
    "numpy.dtype": DtypeSpec,
}


def load_numpy_pickle(path, what: str | None = None) -> Any:
    """Load a pickle of plain containers and numpy arrays (e.g. Flax checkpoints saved with pickle)."""
    what = what or str(path)
    with open(path, "rb") as f:
        try:
            return RestrictedUnpickler(f, NUMPY_ARRAY_GLOBALS, what).load()
        except UserError as exc:
            raise exc if what in str(exc) else type(exc)(f"{what}: {exc}") from None
        except Exception as exc:  # truncated, garbled, or an array whose data does not match its shape
            raise UnsafePickleError(f"{what}: not a readable pickle of arrays ({type(exc).__name__}: {exc})") from exc


def _zip_records(source: bytes | str | os.PathLike) -> list[zipfile.ZipInfo]:
    with contextlib.ExitStack() as stack:
        handle = io.BytesIO(source) if isinstance(source, bytes) else stack.enter_context(open(source, "rb"))
        return stack.enter_context(zipfile.ZipFile(handle)).infolist()


def check_torch_archive(source: bytes | str | os.PathLike, what: str) -> None:
    """Refuse a zip archive (a torch ``.pt``) that could ask for more memory than its own size: a compressed
    record (torch stores records uncompressed, so one only appears in a crafted file, typically inflating a
    thousandfold) or records declaring more bytes than the archive holds. Reads the directory only."""
    size = len(source) if isinstance(source, bytes) else Path(source).stat().st_size
    try:
        records = _zip_records(source)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise FileLimitError(f"{what}: not a readable zip archive ({exc})") from exc
    declared = 0
    for record in records:
        if record.compress_type != zipfile.ZIP_STORED or record.compress_size != record.file_size:
            raise FileLimitError(
                f"{what}: the record {record.filename!r} is compressed ({record.compress_size} bytes inflating to "
                f"{record.file_size}); torch never writes compressed records, so the file was crafted or damaged"
            )
        declared += record.file_size
    if declared > size:
        raise FileLimitError(f"{what}: its records declare {declared} bytes but the file has only {size}")


def load_torch_file(path: str | os.PathLike, what: str, max_bytes: int) -> Any:
    """``torch.load(weights_only=True)`` of a file no larger than ``max_bytes``, after ``check_torch_archive``
    (for the zip format; the legacy format reads each storage from the file, so its declared sizes must be
    there). Raises ``FileLimitError`` for a file over the limits; torch's own errors for unreadable files."""
    import torch

    size = Path(path).stat().st_size
    if size > max_bytes:
        raise FileLimitError(f"{what}: {size} bytes is more than such a file can be ({max_bytes} bytes at most)")
    with open(path, "rb") as f:
        is_zip = f.read(4) == ZIP_MAGIC  # the test torch.load makes
    if is_zip:
        check_torch_archive(path, what)
    return torch.load(path, map_location="cpu", weights_only=True)
