"""Where data and cached models live.

``UNLEARN_DATA_DIR`` and ``UNLEARN_CACHE_DIR`` override the per-user cache directory (platformdirs), so tests,
benchmarks and CI can point at ``../shared/data`` and a temporary cache without touching the user's home.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import platformdirs

from unlearn_core.errors import ConfigError, abbreviate

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
        try:
            os.lstat(candidate)
        except OSError:  # missing, or not even a valid name (ENAMETOOLONG, ENOTDIR): look further up
            continue
        return candidate
    return Path(path.anchor or ".")


def shown_path(path: str | os.PathLike[str], *, limit: int = 60, quote: bool = True) -> str:
    """A path for a one-line message, quoted; a long one keeps its end (the file name that says what it is) and
    notes its length: ``'…/out/compare.json' (312 characters)``. ``quote=False``: bare, the end only."""
    text = os.fspath(path)
    if len(text) + 2 <= limit:
        return repr(text) if quote else text
    tail = f"…{text[-(limit - 3):]}"
    return f"'{tail}' ({len(text):,} characters)" if quote else tail


def _probe_writable(folder: Path) -> str | None:
    """Why a new file cannot be created in ``folder`` (``None`` when it can): by creating one and removing it.

    ``os.access`` is not enough: it says yes to root on /proc, /sys and on read-only mounts.
    """
    import errno
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".unlearn-write-test-"):
            return None
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.EINVAL, errno.ENOTSUP) and folder.is_dir():
            # /proc and /sys answer "no such file" or "invalid argument" for a new file: not a place for files.
            return f"{(exc.strerror or type(exc).__name__).lower()} (a virtual file system such as /proc or /sys?)"
        return (exc.strerror or type(exc).__name__).lower()


#: What a path that exists is, when it is not a regular file or a directory (for the one-line refusal).
_FILE_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)

#: Longest file name and path, when the file system does not say (Linux's NAME_MAX and PATH_MAX).
NAME_MAX, PATH_MAX = 255, 4096


def _name_limits(folder: Path) -> tuple[int, int]:
    """(longest file name in bytes, longest path in bytes) on the file system of ``folder``."""
    limits = []
    for name, default in (("PC_NAME_MAX", NAME_MAX), ("PC_PATH_MAX", PATH_MAX)):
        try:
            limits.append(int(os.pathconf(folder, name)))
        except (OSError, ValueError, AttributeError):
            limits.append(default)
    return limits[0], limits[1]


def _check_lengths(target: Path, existing: Path, *, flag: str, shown: str) -> None:
    """Refuse a path with a component or a total length above the file system's limits (an ``OSError`` after all
    the work otherwise: "File name too long")."""
    name_max, path_max = _name_limits(existing if existing.is_dir() else existing.parent)
    for part in target.parts:
        size = len(os.fsencode(part))
        if size > name_max:
            raise ConfigError(f"{flag} {shown} cannot be written: a file name of {size:,} bytes is above this file "
                              f"system's limit of {name_max} bytes")
    size = len(os.fsencode(str(target.absolute())))
    if size >= path_max:
        raise ConfigError(f"{flag} {shown} cannot be written: the path is {size:,} bytes long, above this file "
                          f"system's limit of {path_max - 1:,} bytes")


def _refuse_empty(text: str, *, flag: str, example: str) -> None:
    if not text.strip():
        raise ConfigError(f"{flag} {abbreviate(text)} is empty: expected a path such as {example}")


def check_output_file(path: str | os.PathLike[str], *, flag: str = "--json") -> Path:
    """Refuse, before any work, an output file that cannot be written as a regular file.

    Allowed: a regular file (then replaced, atomically: :func:`unlearn_core.jsonio.write_files_atomic`) or a path
    that does not exist yet (its missing parent directories are then created), under directories we may write
    into. Refused, each in one line naming the path and why: an empty path, a directory (``dir/``, ``/``), a
    symbolic link, a named pipe, a device or a socket (an atomic write would *replace* them: ``--json /dev/null``
    as root would have replaced the machine's ``/dev/null``), a name or path longer than the file system allows,
    a parent that is a file, and a directory where files cannot be created (read-only, /proc, /sys). Nothing is
    created here.

    Raises:
        ConfigError: one line naming the path and why.
    """
    text = os.fspath(path)
    shown = shown_path(text)
    _refuse_empty(str(text), flag=flag, example="out.json")
    target = Path(text).expanduser()
    if str(text).endswith(("/", os.sep)) or target.name in ("", ".", ".."):
        raise ConfigError(f"{flag} {shown} is a directory: expected a file path such as out.json")
    existing = _first_existing(target.parent)
    _check_lengths(target, existing, flag=flag, shown=shown)
    try:
        mode: int | None = os.lstat(target).st_mode
    except OSError:  # missing, or a parent that is a file (ENOTDIR, said below)
        mode = None
    if mode is not None:
        if stat.S_ISLNK(mode):
            raise ConfigError(f"{flag} {shown} is a symbolic link (to {shown_path(os.readlink(target))}): expected "
                              "a regular file (a link is never replaced; write to its target's path instead)")
        if stat.S_ISDIR(mode):
            raise ConfigError(f"{flag} {shown} is a directory: expected a file path such as out.json")
        for test, kind in _FILE_KINDS:
            if test(mode):
                raise ConfigError(f"{flag} {shown} is {kind}: expected a regular file (it would be replaced by one)")
    if not existing.is_dir():
        raise ConfigError(f"{flag} {shown} cannot be written: {shown_path(existing, quote=False)} is not a directory")
    why = _probe_writable(existing)
    if why:
        raise ConfigError(f"{flag} {shown} cannot be written: {why} in {shown_path(existing, quote=False)}")
    if mode is not None and not os.access(target, os.W_OK):
        raise ConfigError(f"{flag} {shown} cannot be written: the file is read-only")
    return target


def check_output_dir(path: str | os.PathLike[str], *, flag: str = "--out") -> Path:
    """Refuse, before any work, an output directory that cannot be created or written (``--out /dev/null/x``,
    ``--out ''``, a file, /proc, a read-only mount, a name longer than the file system allows).

    Raises:
        ConfigError: one line naming the path and why.
    """
    text = os.fspath(path)
    shown = shown_path(text)
    _refuse_empty(str(text), flag=flag, example="experiments/")
    target = Path(text).expanduser()
    existing = _first_existing(target)
    _check_lengths(target, existing, flag=flag, shown=shown)
    if not existing.is_dir():
        raise ConfigError(f"{flag} {shown} cannot be used as a directory: {shown_path(existing, quote=False)} is not a "
                          "directory")
    why = _probe_writable(existing)
    if why:
        raise ConfigError(f"{flag} {shown} cannot be written: {why} in {shown_path(existing, quote=False)}")
    return target


def check_cache_dir(path: str | os.PathLike[str] | None, *, flag: str = "--cache-dir") -> Path:
    """The model cache's root (``path``, else ``$UNLEARN_CACHE_DIR``, else the user cache), refused before any work
    when it cannot hold files: empty (``--cache-dir ''`` wrote into the current directory), a file, read-only,
    under /proc or /sys (each was a traceback after the data had loaded).

    Raises:
        ConfigError: one line naming the directory, why, and what to do.
    """
    if path is not None:
        _refuse_empty(os.fspath(path), flag=flag, example="~/.cache/unlearn")
    root = cache_dir(path)  # an empty UNLEARN_CACHE_DIR means "unset": the user cache
    where = flag if path is not None else ("UNLEARN_CACHE_DIR" if os.environ.get("UNLEARN_CACHE_DIR") else
                                           "the cache directory")
    try:
        check_output_dir(root, flag=where)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (choose a writable directory with --cache-dir or UNLEARN_CACHE_DIR)") from None
    return root


def check_data_dir(path: str | os.PathLike[str] | None, *, flag: str = "--data-dir") -> None:
    """Refuse an empty ``--data-dir ''`` (it meant the current directory) before any work."""
    if path is not None:
        _refuse_empty(os.fspath(path), flag=flag, example="../shared/data")
