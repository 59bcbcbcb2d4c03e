"""One progress bar for a whole fit: which stage of how many, how far, and the time left in the stage.

The stages report their own steps (``run_loop``'s progress: stage name, steps done, steps in the stage).
Their steps cost very different amounts (an inversion step renders one frame, a joint step renders two
fields), so the overall share counts stages, not steps, and the time left is the current stage's, from its
own pace: an estimate that says what it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..fit import planned_stages

__all__ = ["OverallProgress", "duration", "planned_stages"]


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class OverallProgress:
    """Turns stage reports into (share of the whole fit in [0, 1], a line that names the stage and its time
    left)."""

    def __init__(self, stages: list[str], clock: Callable[[], float] = time.monotonic) -> None:
        self.stages = list(stages)
        self.clock = clock
        self.started: dict[str, tuple[float, int]] = {}  # stage -> (time, steps done) at its first report

    def update(self, stage: str, done: int, total: int) -> tuple[float, str]:
        if stage not in self.stages:
            self.stages.append(stage)  # a stage the plan did not name: counted, not hidden
        k, n = self.stages.index(stage), len(self.stages)
        now = self.clock()
        start, first = self.started.setdefault(stage, (now, done))
        fraction = min(max(done / total, 0.0), 1.0) if total > 0 else 1.0
        line = f"stage {k + 1} of {n}: {stage}, {done}/{total}"
        if first < done < total and now > start:
            line += f", about {duration((now - start) / (done - first) * (total - done))} left in this stage"
        return (k + fraction) / n, line
