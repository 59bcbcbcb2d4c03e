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
from pathlib import Path

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


def pick_device(requested: str | None = None) -> str:
    """The torch device to run on: the one asked for, else CUDA when there is a GPU, else the CPU."""
    if requested:
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


PRECISIONS = ("fp32", "tf32", "default")


def _tf32_switches():
    """(get, set) of the TF32 switches for matrix products and convolutions: PyTorch's ``fp32_precision``
    settings where they exist (2.9 and newer; mixing them with the legacy flags is an error), else
    ``allow_tf32``."""
    import torch

    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn
    if hasattr(matmul, "fp32_precision") and hasattr(conv, "conv"):
        conv = conv.conv

        def get():
            return matmul.fp32_precision, conv.fp32_precision

        def put(values):
            matmul.fp32_precision, conv.fp32_precision = values

        return get, put, lambda allow: ("tf32", "tf32") if allow else ("ieee", "ieee")

    def get_legacy():
        return matmul.allow_tf32, conv.allow_tf32

    def put_legacy(values):
        matmul.allow_tf32, conv.allow_tf32 = values

    return get_legacy, put_legacy, lambda allow: (allow, allow)


class set_precision:  # noqa: N801 - used like a function, as torch's own context managers are
    """Matrix-product precision on CUDA inside a ``with`` block (and after it, when called plainly):
    'fp32' turns TF32 off for matrix products and convolutions (the reference every speed-up is checked
    against), 'tf32' turns it on for both, 'default' leaves PyTorch's own setting (TF32 for
    convolutions only). No effect on a CPU."""

    def __init__(self, precision: str) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        get, self._put, values = _tf32_switches()
        self._saved = get()
        if precision != "default":
            self._put(values(precision == "tf32"))

    def __enter__(self) -> set_precision:
        return self

    def __exit__(self, *exc) -> None:
        self._put(self._saved)


def process_memory_mb(field: str, pid: int | str = "self") -> float | None:
    """A memory figure of process ``pid`` from /proc/<pid>/status (``VmRSS`` now, ``VmHWM`` its peak), in MB; None
    where there is no such file or field (not Linux, a process that is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_memory_mb() -> float:
    """This process's peak resident memory in MB since it started (or exec'd). Linux's ``ru_maxrss`` is not
    that: a child keeps its parent's high-water mark across fork and exec, so a small process started from a
    4 GB test runner reports 4 GB. ``VmHWM`` in /proc/self/status belongs to the process's own memory map."""
    peak = process_memory_mb("VmHWM")
    if peak is not None:
        return peak
    import resource

    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 / (1024 if sys.platform == "darwin" else 1)  # macOS reports bytes
