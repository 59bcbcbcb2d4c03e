"""Process-level settings for the command-line tools and the app (never applied on import).

glibc returns freed blocks above the mmap threshold to the OS; a 512x512 EG3D frame allocates and
frees about 1 GB of activations, so every frame pays for fresh page faults (about 0.6 s per frame on
a 2-core CPU, measured with ``python -m innout.bench generator frame``). Keeping freed memory in the
process for reuse removes that at the cost of a slightly higher resident size.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def keep_freed_memory() -> bool:
    """Tell glibc malloc to reuse large freed blocks; returns whether it applied.

    A no-op off Linux/glibc, or when ``INNOUT_KEEP_FREED_MEMORY=0``.
    """
    if os.environ.get("INNOUT_KEEP_FREED_MEMORY", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, 1 << 30)) and bool(mallopt(M_TRIM_THRESHOLD, 1 << 30))
