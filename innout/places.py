"""Where the project keeps things on disk: the one place that reads the folders' environment variables.

- ``pretrained_dir()``: downloaded and converted weights, learned directions (``$INNOUT_PRETRAINED_DIR``, default
  the repository's ``pretrained/``);
- ``cache_root()``: caches that can be recomputed: prepared videos, fit stages, converted copies, fit times
  (``$INNOUT_CACHE_DIR``, default ``~/.cache/innout``).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def pretrained_dir() -> Path:
    return Path(os.environ.get("INNOUT_PRETRAINED_DIR", REPO_ROOT / "pretrained"))


def directions_dir() -> Path:
    """Where ``python -m innout directions learn`` saves and the CLI and app look: pretrained/directions."""
    return pretrained_dir() / "directions"


def cache_root() -> Path:
    return Path(os.environ.get("INNOUT_CACHE_DIR", Path.home() / ".cache" / "innout"))


def prepare_cache_dir() -> Path:
    """Prepared videos, one folder per (input content, preprocessing options)."""
    return cache_root() / "prepare"


def fit_cache_dir() -> Path:
    """The fit's stage caches (the default ``--workdir``)."""
    return cache_root() / "fit"
