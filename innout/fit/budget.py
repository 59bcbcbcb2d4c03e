"""A fit in slices: a time budget after which the fit stops, to be continued by running the same fit again (every
stage resumes from its cache or its last checkpoint, so the slices add up to the fit an uninterrupted run makes: bit
for bit on a CPU).

A stage that keeps checkpoints writes one at the first step that ends past the budget and stops there, so a slice
overruns its budget by one step (a ZeroGPU call must end within its declared duration); each slice makes at least
one step, so a fit cut in slices always ends. Work without checkpoints (the nearest-neighbour init, the OOD head
start) finishes before the fit stops.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

_local = threading.local()  # the deadline of the fit running in this thread (the app runs fits in worker threads)


class FitUnfinished(Exception):  # noqa: N818 - an outcome, not an error: the slice ended as asked
    """The time budget was spent: the fit stopped at a checkpoint of ``stage`` (``step`` of ``total``); running
    the same fit again continues from there."""

    def __init__(self, stage: str, step: int, total: int, seconds: float) -> None:
        self.stage, self.step, self.total, self.seconds = stage, step, total, seconds
        super().__init__(f"stopped in {stage} at step {step} of {total} after {seconds:.0f} s (the time budget)")


@contextlib.contextmanager
def time_budget(seconds: float | None) -> Iterator[None]:
    """Fits run inside stop at their next checkpoint once ``seconds`` have passed (None: no budget)."""
    previous = getattr(_local, "budget", None)
    _local.budget = None if seconds is None else (time.monotonic(), time.monotonic() + float(seconds))
    try:
        yield
    finally:
        _local.budget = previous


def budget_spent() -> bool:
    """Whether this thread runs under a time budget that is spent."""
    budget = getattr(_local, "budget", None)
    return budget is not None and time.monotonic() >= budget[1]


def check_budget(stage: str, step: int, total: int) -> None:
    """Called after a checkpoint is written: raise ``FitUnfinished`` when this thread's budget is spent."""
    budget = getattr(_local, "budget", None)
    if budget is not None and time.monotonic() >= budget[1]:
        raise FitUnfinished(stage, step, total, time.monotonic() - budget[0])
