"""Unpickling with an allowlist: the only way this project reads pickle files.

A pickle can call any importable function while loading. ``RestrictedUnpickler`` resolves only the
globals named in its allowlist (each mapped to a safe implementation of our choosing) and refuses
everything else before anything is called, with an error naming the global.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle references a global outside the allowlist; nothing from it was executed."""


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


def _numpy_reconstruct(cls, shape, dtype):
    if cls is not np.ndarray:
        raise UnsafePickleError(f"refusing to rebuild an array of type {cls!r}")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


NUMPY_ARRAY_GLOBALS: dict[str, Any] = {
    "numpy.core.multiarray._reconstruct": _numpy_reconstruct,
    "numpy._core.multiarray._reconstruct": _numpy_reconstruct,
    "numpy.ndarray": np.ndarray,
    "numpy.dtype": np.dtype,
}


def load_numpy_pickle(path, what: str | None = None) -> Any:
    """Load a pickle of plain containers and numpy arrays (e.g. Flax checkpoints saved with pickle)."""
    with open(path, "rb") as f:
        return RestrictedUnpickler(f, NUMPY_ARRAY_GLOBALS, what or str(path)).load()
