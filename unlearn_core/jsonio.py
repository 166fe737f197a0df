"""JSON helpers: make results serialisable and write files atomically (nothing half-written)."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch


def to_jsonable(value: Any) -> Any:
    """Recursively convert tensors, numpy values and non-finite floats (→ ``None``) into plain JSON values."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return to_jsonable(value.detach().cpu().tolist())
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, Path):
        return str(value)
    return str(value)


def json_text(payload: Any) -> str:
    """``payload`` as the indented JSON every file of this package is written in (non-finite floats → ``null``)."""
    return json.dumps(to_jsonable(payload), indent=2) + "\n"


def _new_file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give a new file: 0o666 less the process's umask.

    ``mkstemp`` creates 0o600 files, so an atomically written card was unreadable to the user's group where a plain
    write would not have been. The umask is read from /proc (Linux), else set and restored (not thread-safe, but
    only where /proc is missing).
    """
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def write_files_atomic(files: Mapping[str | os.PathLike[str], str | bytes]) -> list[Path]:
    """Write every file of ``files`` or none: each to a temporary file beside it first, then all renamed into place.

    Why: an experiment writes a CSV, a JSON and an HTML report; a failure (a full disk, a target that turned into a
    directory meanwhile) used to leave some written and some not — after all the work. Here a failure while
    writing removes every temporary file and leaves the targets as they were; the renames (``os.replace``, atomic
    within a directory) come only after every file has been written and flushed. An existing target keeps its
    permissions; a new one gets the mode a plain write would give. The targets are meant to be checked beforehand
    (:func:`unlearn_core.paths.check_output_file`); one that is not a regular file by now is refused here too.

    Returns:
        the paths written, in order.

    Raises:
        OSError: the first failure; nothing was replaced.
    """
    import stat

    staged: list[tuple[str, Path]] = []
    try:
        for path, data in files.items():
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            # A short prefix: a name close to the file system's limit must still leave room for the temporary's.
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name[:40]}.", suffix=".tmp")
            staged.append((tmp, target))
            with os.fdopen(fd, "wb") as handle:
                handle.write(data.encode() if isinstance(data, str) else data)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                mode = stat.S_IMODE(os.stat(target).st_mode)
            except OSError:
                mode = _new_file_mode()
            os.chmod(tmp, mode)
        for _, target in staged:
            try:
                kind = os.lstat(target).st_mode
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(kind):
                raise IsADirectoryError(f"{target} is no longer a regular file: nothing was written")
        for tmp, target in staged:
            os.replace(tmp, target)
    except BaseException:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
        raise
    return [target for _, target in staged]


def write_json_atomic(path: str | os.PathLike[str], payload: Any) -> None:
    """Write ``payload`` as indented JSON via a temporary file and ``os.replace`` (:func:`write_files_atomic`)."""
    write_files_atomic({path: json_text(payload)})
