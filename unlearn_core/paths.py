"""Where data and cached models live.

``UNLEARN_DATA_DIR`` and ``UNLEARN_CACHE_DIR`` override the per-user cache directory (platformdirs), so tests,
benchmarks and CI can point at ``../shared/data`` and a temporary cache without touching the user's home.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "unlearn-explorer"


def data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The dataset root: ``override``, else ``$UNLEARN_DATA_DIR``, else ``<user cache>/data``."""
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get("UNLEARN_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir(APP_NAME)) / "data"


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The cache root (trained models, run history): ``override``, else ``$UNLEARN_CACHE_DIR``, else the user cache."""
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get("UNLEARN_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir(APP_NAME)) / "cache"
