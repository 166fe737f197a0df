"""On-disk cache of trained models, keyed by a hash of everything that determines the weights.

* **Key** — SHA-256 of a canonical JSON of the dataset, its split seed, the forget set (for retrains), the model
  and its options, the recipe, the seed, and the versions that change the numbers (torch, the cache format).
  Hyperparameters never appear in file names (Zhang et al.'s released code loads the wrong checkpoint that way).
* **Atomic** — an entry is written to a temporary file in the same directory and ``os.replace``-d into place, so
  a reader sees either nothing or a complete file.
* **Safe loading** — ``torch.load(weights_only=True)``: only tensors and primitive containers, no pickled code.
* **Self-healing** — an entry that fails to load, does not match its model (truncated, corrupt, stale) or holds
  a NaN or an infinite weight is deleted and recomputed, and :attr:`ModelCache.notes` says so in one line; a model
  whose weights are not finite (a diverged training) is never stored.
* **One trainer** — a file lock per key: a second process (or dashboard session) asking for the same model
  waits for the first and then reads its result instead of training again.
* **No litter** — a process killed while saving leaves its ``<hash><random>.tmp`` behind (never a corrupt
  ``.pt``: the rename did not happen). Opening the cache removes such files once they are older than
  :data:`STALE_TMP_AGE_S`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock, Timeout
from torch import nn

from unlearn_core.paths import cache_dir

#: 2: the metadata is the full training summary (``grad_norm``, ``grad_tol``, ``converged``, ``stop_reason``, ...).
CACHE_FORMAT = 2
#: A ``.tmp`` file older than this is a dead writer's. Why a minute: a live save rewrites its file continuously and
#: takes well under a second here (a 45 MB ResNet-18 state dict), so a minute never catches a save in progress in
#: another process, and litter from a killed one is gone the next time any process opens the cache.
STALE_TMP_AGE_S = 60.0
#: How often (seconds) a caller waiting for a model's lock looks at its cancel flag.
LOCK_POLL_S = 0.25


def config_hash(key: dict[str, Any]) -> str:
    """SHA-256 hex digest of the canonical JSON of ``key`` (sorted keys, no whitespace)."""
    text = json.dumps(key, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def non_finite(state: dict[str, Any]) -> str | None:
    """The first tensor of a state dict holding a NaN or ±∞, as ``"name: n of m values"``; ``None`` when all are
    finite (integer buffers such as BatchNorm's counter always are)."""
    for name, tensor in state.items():
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point():
            bad = int((~torch.isfinite(tensor)).sum())
            if bad:
                return f"{name}: {bad:,} of {tensor.numel():,} values"
    return None


class ModelCache:
    """A directory of ``<hash>.pt`` files, each ``{"state_dict": ..., "meta": ...}``.

    ``meta`` is what the trainer returned (the pipeline stores :func:`unlearn_core.training.train`'s summary) plus
    the key, so a cache hit reports the same training summary — final gradient norm, convergence — as the run
    that trained the model.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, *, stale_tmp_age_s: float = STALE_TMP_AGE_S) -> None:
        self.root = cache_dir(root) / "models"
        self.removed_tmp = self.remove_stale_tmp(stale_tmp_age_s)
        #: One line per entry this cache discarded or declined to store, and why (the run card's warnings).
        self.notes: list[str] = []

    def remove_stale_tmp(self, age_s: float = STALE_TMP_AGE_S) -> int:
        """Delete ``<root>/<xx>/*.tmp`` files last modified more than ``age_s`` seconds ago; return how many."""
        if not self.root.is_dir():
            return 0
        now, removed = time.time(), 0
        for tmp in self.root.glob("*/*.tmp"):
            try:
                if now - tmp.stat().st_mtime > age_s:
                    tmp.unlink()
                    removed += 1
            except OSError:  # another process removed or replaced it meanwhile
                continue
        return removed

    def path(self, key: dict[str, Any]) -> Path:
        digest = config_hash({**key, "cache_format": CACHE_FORMAT, "torch": torch.__version__})
        return self.root / digest[:2] / f"{digest}.pt"

    def load(self, key: dict[str, Any], model: nn.Module) -> dict[str, Any] | None:
        """Load the entry into ``model`` and return its metadata, or ``None`` if there is no valid entry.

        A corrupt entry (unreadable, or not matching ``model``'s parameters) is deleted.
        """
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            # Load into a scratch copy first: a failed strict load may have half-overwritten the target.
            scratch = copy.deepcopy(model)
            scratch.load_state_dict(payload["state_dict"], strict=True)
            meta = dict(payload.get("meta", {}))
        except Exception:  # any failure to read or match means the entry is unusable: recompute it
            path.unlink(missing_ok=True)
            return None
        bad = non_finite(payload["state_dict"])
        if bad is not None:  # written by an older version, or damaged on disk: served, it poisoned every result
            path.unlink(missing_ok=True)
            self.notes.append(f"the cached model {path.name[:12]}… held non-finite weights ({bad}): it was deleted and "
                              "trained again")
            return None
        model.load_state_dict(scratch.state_dict())
        return meta

    def save(self, key: dict[str, Any], model: nn.Module, meta: dict[str, Any]) -> Path:
        """Write the entry atomically (temporary file in the same directory, then ``os.replace``)."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        bad = non_finite(state)
        if bad is not None:  # a diverged training: never stored, so the next run trains again instead of reading it
            self.notes.append(f"the trained model was not cached: its weights are not finite ({bad}; the training "
                              "diverged — try a smaller lr)")
            return path
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                torch.save({"state_dict": state, "meta": {**meta, "key": key}}, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def get_or_train(
        self,
        key: dict[str, Any],
        model: nn.Module,
        train_fn: Callable[[nn.Module], dict[str, Any]],
        *,
        cancel: Any = None,
    ) -> tuple[dict[str, Any], bool]:
        """Fill ``model`` from the cache, or train it with ``train_fn(model)`` and store it.

        Returns ``(meta, hit)``. The lock makes concurrent callers with the same key train once: the second
        waits, then finds the entry. ``train_fn`` returns the metadata to store (time, final loss, ...). A caller
        waiting for the lock checks ``cancel`` (an object with ``is_set()``) every :data:`LOCK_POLL_S` seconds and
        raises :class:`~unlearn_core.progress.Cancelled` when it is set: a cancelled cell never waits out another
        process's training.
        """
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path) + ".lock")
        while True:
            if cancel is not None and cancel.is_set():
                from unlearn_core.progress import Cancelled

                raise Cancelled("cancelled while waiting for another process to train this model")
            try:
                lock.acquire(timeout=LOCK_POLL_S)
                break
            except Timeout:
                continue
        try:
            meta = self.load(key, model)
            if meta is not None:
                return meta, True
            meta = train_fn(model)
            self.save(key, model, meta)
            return meta, False
        finally:
            lock.release()
