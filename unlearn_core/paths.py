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


def _first_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (the directory a write would have to create things in)."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path(path.anchor or ".")


def _probe_writable(folder: Path) -> str | None:
    """Why a new file cannot be created in ``folder`` (``None`` when it can): by creating one and removing it.

    ``os.access`` is not enough: it says yes to root on /proc and on read-only mounts.
    """
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".unlearn-write-test-"):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def check_output_file(path: str | os.PathLike[str], *, flag: str = "--json") -> Path:
    """Refuse, before any work, an output file that cannot be written (``--json /dev/null/x.json``).

    The file may exist (it is then replaced) or not (its missing parent directories are then created), but
    whatever already exists on its way must be a directory we may write into. Nothing is created here.

    Raises:
        ConfigError: one line naming the path and why.
    """
    from unlearn_core.errors import ConfigError, abbreviate

    target = Path(path).expanduser()
    shown = abbreviate(str(path))
    if target.is_dir():
        raise ConfigError(f"{flag} {shown} is a directory: expected a file path such as out.json")
    existing = _first_existing(target.parent)
    if not existing.is_dir():
        raise ConfigError(f"{flag} {shown} cannot be written: {existing} is not a directory")
    why = _probe_writable(existing)
    if why:
        raise ConfigError(f"{flag} {shown} cannot be written: {why.lower()} in {existing}")
    if target.exists() and not os.access(target, os.W_OK):
        raise ConfigError(f"{flag} {shown} cannot be written: the file is read-only")
    return target


def check_output_dir(path: str | os.PathLike[str], *, flag: str = "--out") -> Path:
    """Refuse, before any work, an output directory that cannot be created or written (``--out /dev/null/x``).

    Raises:
        ConfigError: one line naming the path and why.
    """
    from unlearn_core.errors import ConfigError, abbreviate

    target = Path(path).expanduser()
    shown = abbreviate(str(path))
    existing = _first_existing(target)
    if not existing.is_dir():
        raise ConfigError(f"{flag} {shown} cannot be used as a directory: {existing} is not a directory")
    why = _probe_writable(existing)
    if why:
        raise ConfigError(f"{flag} {shown} cannot be written: {why.lower()} in {existing}")
    return target
