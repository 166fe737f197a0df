"""History of finished runs: a small SQLite database in the cache directory.

The dashboard's Runs page lists, reopens, compares, deletes and exports what was run before, and the Explore
page reuses a finished run with the same configuration instead of recomputing it — also after a restart, which
is why this is on disk and not in memory. Each row holds the JSON run card (all parameters, seeds, versions,
device, metrics, certificate) and, optionally, the unlearned weights (a ``torch.save``'d state dict).

SQLite because it is in the standard library, is safe for concurrent readers and writers across threads and
processes (each call opens its own connection; WAL journal), and is one file the user can copy.

**Readers never write, and never block behind a writer.** Listing, reopening and finding a run open the file
read-only (``mode=ro``); the schema is created, and ``PRAGMA user_version`` written, only by the first write to a
new file — every open used to write it, so a page that only read waited up to 30 s behind any writer. In WAL mode a
reader sees the last committed state while a writer works.

**A broken store is one line, never a crashed page.** A truncated, garbage or locked ``runs.sqlite`` raises
:class:`RunStoreError` (a :class:`~unlearn_core.errors.ConfigError`: one line with the file's path, what is wrong
and what to do); a row whose card is not a JSON object is left out of the listing and counted
(:attr:`RunList.unreadable`), and opening it says so. The dashboard shows the line (Runs page) or goes on without
the history (Explore: the run is computed and shown, with a warning that it was not stored).

The same file holds the **journal of jobs in progress** (:class:`JobJournal`, the ``jobs`` table): a job that was
running when the server stopped is found there by the next server, marked *interrupted*, and the page that
started it says so instead of showing an empty result.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from unlearn_core.errors import ConfigError
from unlearn_core.jsonio import to_jsonable
from unlearn_core.paths import cache_dir

DB_NAME = "runs.sqlite"
#: 2: the ``jobs`` table (the journal of jobs in progress). A version-1 file gets it on its first write.
SCHEMA_VERSION = 2
#: How long a read waits for a lock before it says the store is locked. Readers do not wait for writers in WAL mode,
#: so only an exclusive lock (another program's, or a crashed one's) makes them wait: a page must not hang on it.
READ_TIMEOUT_S = 2.0
#: How long a write waits for another writer (a job's save is off the page's thread: it may wait).
WRITE_TIMEOUT_S = 30.0
MAX_WEIGHTS_BYTES = 64 * 1024 * 1024  # bigger state dicts are not stored (the run card still is)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    kind TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    dataset TEXT,
    model TEXT,
    method TEXT,
    forget TEXT,
    label TEXT,
    card TEXT NOT NULL,
    weights BLOB
);
CREATE INDEX IF NOT EXISTS runs_config_hash ON runs (config_hash, created);
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY,
    label TEXT,
    page TEXT,
    query TEXT,
    owner TEXT NOT NULL,
    started REAL NOT NULL,
    updated REAL NOT NULL,
    state TEXT NOT NULL,
    progress TEXT
);
"""


class RunStoreError(ConfigError):
    """The run history cannot be read or written: one line with its path, what is wrong and what to do."""



@dataclass(frozen=True)
class StoredRun:
    """One row of the history: ``card`` is the parsed JSON run card; ``weights`` is loaded only by ``get``."""

    id: str
    created: float
    kind: str
    config_hash: str
    dataset: str | None
    model: str | None
    method: str | None
    forget: str | None
    label: str | None
    card: dict[str, Any]
    has_weights: bool
    weights: bytes | None = None


def state_dict_bytes(model: nn.Module) -> bytes:
    """The model's state dict as bytes (``torch.save``), loadable with ``torch.load(weights_only=True)``."""
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, buffer)
    return buffer.getvalue()


def card_row(card: dict[str, Any]) -> dict[str, Any]:
    """Flatten a run card into one CSV row: config, per-model accuracies and losses, distances, timings, certificate.

    Nested keys are joined with dots (``models.unlearned.acc_test``); lists (curves) are left out of the row
    because they do not fit a cell — they are in the JSON card.
    """
    row: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, (list, tuple)):
            return
        else:
            row[prefix] = value

    for section in ("config", "method", "data", "models", "distance", "timing_s", "training", "certificate", "mia",
                    "device"):
        if section in card and card[section] is not None:
            walk(section, to_jsonable(card[section]))
    return row


def rows_to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """CSV text with the union of the rows' columns (in first-seen order)."""
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return out.getvalue()


class RunList(list):
    """The runs of :meth:`RunStore.list`, newest first, with what the listing left out.

    Attributes:
        total: how many runs the store holds (of this kind), listed or not.
        unreadable: ``(id, why)`` of each row left out because its card is not a JSON object.
    """

    def __init__(self, runs: Iterable[StoredRun] = (), *, total: int = 0,
                 unreadable: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(runs)
        self.total = total
        self.unreadable = list(unreadable)


def _card_of(text: Any) -> tuple[dict[str, Any] | None, str]:
    """A row's card parsed, or ``(None, why)``: a card must be a JSON object."""
    try:
        card = json.loads(text)
    except (TypeError, ValueError) as exc:
        return None, f"its card is not JSON ({str(exc).splitlines()[0][:80]})"
    if not isinstance(card, dict):
        return None, f"its card is a JSON {type(card).__name__}, not an object"
    return card, ""


class RunStore:
    """The run history in ``<cache dir>/runs.sqlite`` (``UNLEARN_CACHE_DIR`` or the per-user cache).

    Creating one touches nothing: the file (and its directory) is created by the first write.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.path = cache_dir(root) / DB_NAME
        self._schema_ready = False

    # -- connections -------------------------------------------------------------------------------------
    def _error(self, exc: BaseException, *, doing: str) -> RunStoreError:
        """One line for a failure of SQLite (or of the file system) on this store, with what to do."""
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        low = text.lower()
        if "locked" in low or "busy" in low:
            fix = ("another program holds a lock on it (a write in progress, or a crashed process): try again in a "
                   "moment, or close that program")
        elif isinstance(exc, sqlite3.DatabaseError) and ("not a database" in low or "malformed" in low
                                                        or "corrupt" in low):
            fix = (f"the file is damaged: move it aside (e.g. mv {self.path} {self.path}.broken) and a new, empty "
                   "history starts with the next run")
        elif "newer version" in low:
            fix = "it was written by a newer unlearn-explorer: upgrade, or point UNLEARN_CACHE_DIR elsewhere"
        else:
            fix = "check that the file and its directory can be read and written (UNLEARN_CACHE_DIR chooses where)"
        return RunStoreError(f"the run history {self.path} cannot be {doing}: {text} — {fix}")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection | None]:
        """A read-only connection, or ``None`` when there is no store yet (nothing was ever saved)."""
        if not self.path.exists():
            yield None
            return
        try:
            con = sqlite3.connect(f"{self.path.absolute().as_uri()}?mode=ro", uri=True, timeout=READ_TIMEOUT_S)
        except sqlite3.Error as exc:
            raise self._error(exc, doing="read") from None
        try:
            try:
                version = int(con.execute("PRAGMA user_version").fetchone()[0])
            except sqlite3.Error as exc:
                raise self._error(exc, doing="read") from None
            if version > SCHEMA_VERSION:
                raise self._error(RuntimeError(f"schema version {version} is from a newer version"), doing="read")
            yield con if version >= 1 else None
        finally:
            con.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A read-write connection (a transaction, committed on success); creates the schema on a new file."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.path, timeout=WRITE_TIMEOUT_S)
        except (OSError, sqlite3.Error) as exc:
            raise self._error(exc, doing="written") from None
        try:
            if not self._schema_ready:
                version = int(con.execute("PRAGMA user_version").fetchone()[0])
                if version > SCHEMA_VERSION:
                    raise RuntimeError(f"schema version {version} is from a newer version")
                if version < SCHEMA_VERSION:
                    con.execute("PRAGMA journal_mode=WAL")  # persistent: stored in the database file, set once
                    con.executescript(_SCHEMA)
                    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                    con.commit()
                self._schema_ready = True
            yield con
            con.commit()
        except (sqlite3.Error, RuntimeError) as exc:
            raise self._error(exc, doing="written") from None
        finally:
            con.close()

    # -- writing -----------------------------------------------------------------------------------------
    def save(
        self,
        card: dict[str, Any],
        *,
        config_hash: str,
        kind: str = "explore",
        label: str | None = None,
        weights: bytes | None = None,
    ) -> str:
        """Store a finished run; returns its id. Weights above :data:`MAX_WEIGHTS_BYTES` are dropped.

        Raises:
            RunStoreError: the store cannot be written (one line: path, why, what to do).
        """
        card = to_jsonable(card)
        config = card.get("config", {}) if isinstance(card.get("config"), dict) else {}
        if weights is not None and len(weights) > MAX_WEIGHTS_BYTES:
            weights = None
        run_id = uuid.uuid4().hex[:12]
        with self._write() as con:
            con.execute(
                "INSERT INTO runs (id, created, kind, config_hash, dataset, model, method, forget, label, card,"
                " weights) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id, time.time(), kind, config_hash, config.get("dataset"), config.get("model"),
                    config.get("method"), config.get("forget"), label, json.dumps(card), weights,
                ),
            )
        return run_id

    def delete(self, run_id: str) -> bool:
        """Delete one run; returns whether it existed."""
        if not self.path.exists():
            return False
        with self._write() as con:
            cur = con.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            return cur.rowcount > 0

    # -- reading -----------------------------------------------------------------------------------------
    @staticmethod
    def _row(row: tuple[Any, ...], *, with_weights: bool, card: dict[str, Any]) -> StoredRun:
        (run_id, created, kind, chash, dataset, model, method, forget, label, _, has_w, *rest) = row
        return StoredRun(
            id=run_id, created=created, kind=kind, config_hash=chash, dataset=dataset, model=model, method=method,
            forget=forget, label=label, card=card, has_weights=bool(has_w),
            weights=rest[0] if with_weights and rest else None,
        )

    def _one(self, row: tuple[Any, ...], *, with_weights: bool) -> StoredRun:
        card, why = _card_of(row[9])
        if card is None:
            raise RunStoreError(f"run {row[0]!r} in {self.path} cannot be opened: {why} — delete it on the Runs page")
        return self._row(row, with_weights=with_weights, card=card)

    _COLUMNS = "id, created, kind, config_hash, dataset, model, method, forget, label, card, weights IS NOT NULL"

    def _query(self, query: str, args: tuple[Any, ...] = (), *, one: bool = False) -> Any:
        with self._read() as con:
            if con is None:
                return None if one else []
            try:
                cur = con.execute(query, args)
                return cur.fetchone() if one else cur.fetchall()
            except sqlite3.Error as exc:
                raise self._error(exc, doing="read") from None

    def list(self, *, kind: str | None = None, limit: int = 500) -> RunList:
        """Runs, newest first (without weights): at most ``limit`` of them, and ``total`` (how many there are).

        A row whose card is not a JSON object is left out and counted in ``unreadable``.

        Raises:
            RunStoreError: the store cannot be read (one line: path, why, what to do).
        """
        where, args = (" WHERE kind = ?", (kind,)) if kind is not None else ("", ())
        rows = self._query(f"SELECT {self._COLUMNS} FROM runs{where} ORDER BY created DESC LIMIT ?",
                           (*args, int(limit)))
        total = self._query(f"SELECT COUNT(*) FROM runs{where}", args, one=True)
        runs, unreadable = [], []
        for row in rows:
            card, why = _card_of(row[9])
            if card is None:
                unreadable.append((row[0], why))
            else:
                runs.append(self._row(row, with_weights=False, card=card))
        return RunList(runs, total=int(total[0]) if total else 0, unreadable=unreadable)

    def _columns(self, with_weights: bool) -> str:
        return f"{self._COLUMNS}, weights" if with_weights else self._COLUMNS

    def get(self, run_id: str, *, with_weights: bool = True) -> StoredRun:
        """One run, with its weights unless ``with_weights=False`` (the blob can be tens of MiB).

        Raises:
            ConfigError: when no run has this id; :class:`RunStoreError` when its card cannot be read.
        """
        row = self._query(f"SELECT {self._columns(with_weights)} FROM runs WHERE id = ?", (run_id,), one=True)
        if row is None:
            raise ConfigError(f"run {run_id!r} does not exist: pick an id from the run history")
        return self._one(row, with_weights=with_weights)

    def find(self, config_hash: str, *, with_weights: bool = False) -> StoredRun | None:
        """The newest readable run with this configuration hash, or ``None``: how finished runs are reused.

        Without its weights by default: reuse needs the id and the card, the weights only for a download.
        """
        rows = self._query(
            f"SELECT {self._columns(with_weights)} FROM runs WHERE config_hash = ? ORDER BY created DESC LIMIT 8",
            (config_hash,))
        for row in rows:
            card, _ = _card_of(row[9])
            if card is not None:
                return self._row(row, with_weights=with_weights, card=card)
        return None

    def __len__(self) -> int:
        row = self._query("SELECT COUNT(*) FROM runs", one=True)
        return int(row[0]) if row else 0

    # -- export ------------------------------------------------------------------------------------------
    def export_json(self, run_ids: Sequence[str] | None = None) -> str:
        """The run cards (with id, kind, creation time) as a JSON list; all runs when ``run_ids`` is None."""
        runs = self._select(run_ids)
        return json.dumps(
            [{"id": r.id, "kind": r.kind, "created": r.created, "label": r.label, "card": r.card} for r in runs],
            indent=2,
        )

    def export_csv(self, run_ids: Sequence[str] | None = None) -> str:
        """One CSV row per run (:func:`card_row`), prefixed with the id, kind and creation time."""
        rows = [{"id": r.id, "kind": r.kind, "created": r.created, **card_row(r.card)} for r in self._select(run_ids)]
        return rows_to_csv(rows)

    def _select(self, run_ids: Sequence[str] | None) -> list[StoredRun]:
        if run_ids is None:
            return self.list(limit=1_000_000)
        return [self.get(i, with_weights=False) for i in run_ids]


class JobJournal:
    """The jobs in progress, on disk (the ``jobs`` table of the run store), so that a restart knows what it lost.

    The job registry (:class:`unlearn_core.service.jobs.JobRegistry`) calls :meth:`started` when a job starts,
    :meth:`progress` now and then while it runs, and :meth:`finished` when it ends (done, failed or cancelled: the
    row goes). A server that stops — SIGTERM, a crash, a reboot — leaves its rows behind; the next registry calls
    :meth:`mark_interrupted`, which marks the rows of every process that is gone, and a page asks
    :meth:`interrupted` for the ones it started, to say so. The journal never raises: a broken store must not stop
    a job (it is then simply not journalled).

    ``owner`` identifies this process (host, pid and start time: a pid is reused, a start time is not).
    """

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self.owner = process_owner()
        self.errors: list[str] = []

    def _safely(self, fn: Any) -> Any:
        try:
            with self.store._write() as con:
                return fn(con)
        except RunStoreError as exc:
            self.errors.append(str(exc))
            return None

    def started(self, key: str, *, label: str, page: str | None = None, query: Mapping[str, Any] | None = None
                ) -> None:
        now = time.time()
        self._safely(lambda con: con.execute(
            "INSERT OR REPLACE INTO jobs (key, label, page, query, owner, started, updated, state, progress) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'running', NULL)",
            (key, label, page, json.dumps(dict(query or {}), sort_keys=True), self.owner, now, now)))

    def progress(self, key: str, record: Mapping[str, Any]) -> None:
        text = json.dumps(to_jsonable({k: record.get(k) for k in ("stage", "step", "steps", "epoch", "epochs",
                                                                    "fraction", "describe") if k in record}))
        self._safely(lambda con: con.execute(
            "UPDATE jobs SET updated = ?, progress = ? WHERE key = ? AND owner = ?",
            (time.time(), text, key, self.owner)))

    def finished(self, key: str) -> None:
        self._safely(lambda con: con.execute("DELETE FROM jobs WHERE key = ? AND owner = ?", (key, self.owner)))

    def interrupt(self, key: str) -> None:
        """This process stopped the job because it is ending (the server's SIGTERM): the row stays, interrupted."""
        self._safely(lambda con: con.execute("UPDATE jobs SET state = 'interrupted', updated = ? WHERE key = ? AND "
                                             "owner = ?", (time.time(), key, self.owner)))

    def mark_interrupted(self) -> int:
        """Mark the running rows of processes that are gone as interrupted; returns how many."""
        def mark(con: sqlite3.Connection) -> int:
            rows = con.execute("SELECT key, owner FROM jobs WHERE state = 'running'").fetchall()
            gone = [key for key, owner in rows if owner != self.owner and not owner_alive(owner)]
            con.executemany("UPDATE jobs SET state = 'interrupted' WHERE key = ?", [(k,) for k in gone])
            return len(gone)

        if not self.store.path.exists():
            return 0
        return self._safely(mark) or 0

    def interrupted(self, *, page: str | None = None) -> list[dict[str, Any]]:
        """The interrupted jobs (of ``page``), newest first: key, label, page, query, started, updated, progress."""
        try:
            if not self.store._query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'jobs'", one=True):
                return []  # a store written before the journal existed (schema version 1)
            rows = self.store._query(
                "SELECT key, label, page, query, started, updated, progress FROM jobs WHERE state = 'interrupted'"
                + (" AND page = ?" if page is not None else "") + " ORDER BY started DESC",
                (page,) if page is not None else ())
        except RunStoreError as exc:
            self.errors.append(str(exc))
            return []
        out = []
        for key, label, pg, query, started, updated, progress in rows:
            out.append({"key": key, "label": label, "page": pg, "query": _loads(query, {}), "started": started,
                        "updated": updated, "progress": _loads(progress, {})})
        return out

    def dismiss(self, key: str) -> None:
        """Forget an interrupted job (the user read the notice, or ran it again)."""
        self._safely(lambda con: con.execute("DELETE FROM jobs WHERE key = ? AND state = 'interrupted'", (key,)))


def _loads(text: Any, default: Any) -> Any:
    try:
        value = json.loads(text) if text else default
    except (TypeError, ValueError):
        return default
    return value if isinstance(value, type(default)) else default


def process_owner(pid: int | None = None) -> str:
    """``host:pid:start`` of a process (its start time in clock ticks since boot, from /proc; 0 where unknown)."""
    import socket

    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid)}"


def _start_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return 0


def owner_alive(owner: str) -> bool:
    """Whether the process of ``owner`` (:func:`process_owner`) still runs. Another host's: assumed alive."""
    import socket

    host, _, rest = owner.partition(":")
    pid_text, _, ticks = rest.partition(":")
    if host != socket.gethostname():
        return True
    try:
        pid = int(pid_text)
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (ValueError, PermissionError, OSError):
        return True
    return ticks in ("", "0") or str(_start_ticks(pid)) == ticks
