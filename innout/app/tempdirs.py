"""The app's own temporary folder: every session's files and Gradio's uploads and exports live under one
folder of this server, removed when it stops.

Gradio's default upload folder (``/tmp/gradio``) is shared by every Gradio app on the machine and kept
forever; an upload there may be referenced by any app that knows its path. Pointing ``GRADIO_TEMP_DIR``
at a folder of our own, before Gradio is imported, keeps uploads and exports private to this server.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path


def app_temp_root(base: str | os.PathLike | None = None) -> Path:
    """A new folder ``innout-app-XXXX`` under ``base`` (default: the system temp folder), with
    ``sessions/`` and ``gradio/`` inside; Gradio is pointed at the latter. Removed at exit, including a
    SIGTERM (the usual way a server is stopped)."""
    parent = Path(base or tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="innout-app-", dir=parent))
    (root / "sessions").mkdir()
    (root / "gradio").mkdir()
    os.environ["GRADIO_TEMP_DIR"] = str(root / "gradio")
    atexit.register(shutil.rmtree, root, True)
    _exit_on_sigterm()
    return root


def _exit_on_sigterm() -> None:
    """Turn SIGTERM into a normal exit so that the atexit clean-up runs (the default handler skips it)."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
