"""The CPU's cores shared between the renders running at the same time.

A render alone takes every core torch has (the lowest latency for one page). Renders side by side split them: on the
2-core machine one render of the faces demo takes 0.096 s on two threads but 0.19 core-seconds (the second thread
waits as much as it works), and 0.134 s on one thread, so two renders at once, one thread each, finish sooner than
two renders fighting over four threads. torch's thread count is per thread (OpenMP), so a render sets its own and
puts the previous one back: the fit or export that later runs in the same worker thread keeps every core.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch


class SharedCores:
    def __init__(self, cores: int | None = None) -> None:
        self.cores = cores or torch.get_num_threads()
        self.running = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def share(self) -> Iterator[int]:
        """Run a render with its share of the cores (those of the renders running as it starts); yields the count."""
        with self._lock:
            self.running += 1
            threads = max(1, self.cores // self.running)
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            yield threads
        finally:
            torch.set_num_threads(previous)
            with self._lock:
                self.running -= 1


RENDER_CORES = SharedCores()  # the process's renders (every page's and the API's)
