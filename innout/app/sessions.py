"""The pages open now, and what they may hold: memory and disk stay bounded however many pages come and go.

- A closed page (Gradio's ``unload``: the browser tab or the API client went away) lets go of its scene and its
  folder at once.
- A page idle for ``idle_minutes`` (no event: a tab left open, a client that never came back) lets go of its
  scene, its prepared clip and its files; when it comes back it is told so and what to do (the caches make the
  fit and the example quick to get back).
- At most ``max_scenes`` scenes are held in the process: opening one more lets go of the scene of the page used
  least recently (its file stays: that page gets it back on its next render, paying a reload).
- Each page's files (upload, fitted scenes, exports) are held to ``page_disk_mb``.

Freed memory is handed back to the system (glibc's ``malloc_trim``, every few seconds): a render frees its
buffers, but glibc keeps the pages, and the server's resident memory grew by about 40 MB a page for nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from dataclasses import dataclass

import gradio as gr

from .runtime import Runtime
from .session import StudioSession


@dataclass
class Limits:
    """What a page may hold (``app.py --idle-minutes --max-scenes --page-disk-mb``)."""

    idle_minutes: float = 30.0
    max_scenes: int = 8
    page_disk_mb: float = 1000.0


def _libc():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


LIBC = _libc()
TRIM_EVERY_S = 5.0  # a trim takes about 7 ms on a 2-core CPU


def give_memory_back() -> None:
    """Return freed heap memory to the system (glibc); nothing elsewhere."""
    if LIBC is not None and hasattr(LIBC, "malloc_trim"):
        LIBC.malloc_trim(0)


class Sessions:
    """The pages open now, by Gradio's session hash (a page, or an API client). ``runtime`` is the generator new
    pages get."""

    def __init__(self, runtime: Runtime, tmp_root: str | None, limits: Limits | None = None) -> None:
        self.runtime = runtime
        self.tmp_root = tmp_root
        self.limits = limits or Limits()
        self._open: dict[str, StudioSession] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None

    def open(self, request: gr.Request) -> StudioSession:
        session = StudioSession(self.runtime, tmp_root=self.tmp_root, disk_quota_mb=self.limits.page_disk_mb,
                                on_scene=self.scene_opened)  # fmt: skip
        with self._lock:
            old = self._open.pop(request.session_hash, None)
            self._open[request.session_hash] = session
        if old is not None:
            old.close()
        self._start_reaper()
        return session

    def for_request(self, request: gr.Request) -> StudioSession:
        """The session of this client (an API client's calls share one, as a page's events do); opened on first use."""
        with self._lock:
            session = self._open.get(request.session_hash)
        return session if session is not None else self.open(request)

    def close(self, request: gr.Request) -> None:
        """The page went away (Gradio's ``unload``; the request tells which)."""
        with self._lock:
            session = self._open.pop(request.session_hash, None)
        if session is not None:
            session.close()
            give_memory_back()

    def close_all(self) -> None:
        self._stop.set()
        with self._lock:
            sessions, self._open = list(self._open.values()), {}
        for session in sessions:
            session.close()

    def __len__(self) -> int:
        return len(self._open)

    def live(self) -> list[StudioSession]:
        with self._lock:
            return list(self._open.values())

    # --- bounds ----------------------------------------------------------------------------------------
    def scene_opened(self, opened: StudioSession) -> None:
        """A page opened a scene: keep at most ``max_scenes``, letting go of those of the pages used least recently
        (never one at work)."""
        holding = sorted((s for s in self.live() if s.scene is not None and s is not opened and not s.busy),
                         key=lambda s: s.last_used)  # fmt: skip
        extra = len(holding) + 1 - self.limits.max_scenes
        for session in holding[: max(extra, 0)]:
            session.release(
                f"This page's scene was let go: the server holds {self.limits.max_scenes} scenes at once and other "
                "pages opened theirs since. Open it again (the example, a scene file, or Fit: its stages are cached).",
                files=False,
            )
        if extra > 0:
            give_memory_back()

    def release_idle(self, now: float | None = None) -> int:
        """Let go of what the pages idle for ``idle_minutes`` hold (scene, prepared clip, files); returns how many."""
        now = time.monotonic() if now is None else now
        idle_s = self.limits.idle_minutes * 60
        count = 0
        for session in self.live():
            holding = session.scene is not None or session.prepared is not None or session.folder.exists()
            if holding and not session.busy and not session.fit_requested and now - session.last_used >= idle_s:
                session.release(
                    f"This page was idle for over {self.limits.idle_minutes:g} minutes and the server let go of its "
                    "scene and files. Open the example again, or prepare and fit the clip again: the caches make "
                    "both quick.",
                    files=True,
                )
                count += 1
        if count:
            give_memory_back()
        return count

    def _start_reaper(self) -> None:
        """One thread: freed memory handed back every few seconds (renders free their buffers all the time), idle
        pages released every quarter of ``idle_minutes`` (at most every minute)."""
        if self._reaper is not None:
            return
        every_s = min(60.0, max(TRIM_EVERY_S, self.limits.idle_minutes * 60 / 4))

        def run() -> None:
            next_check = time.monotonic() + every_s
            while not self._stop.wait(TRIM_EVERY_S):
                if time.monotonic() >= next_check:
                    self.release_idle()
                    next_check = time.monotonic() + every_s
                give_memory_back()

        self._reaper = threading.Thread(target=run, name="idle-pages", daemon=True)
        self._reaper.start()
