"""History of finished runs: a small SQLite database in the cache directory.

The dashboard's Runs page lists, reopens, compares, deletes and exports what was run before, and the Explore
page reuses a finished run with the same configuration instead of recomputing it — also after a restart, which
is why this is on disk and not in memory. Each row holds the JSON run card (all parameters, seeds, versions,
device, metrics, certificate) and, optionally, the unlearned weights (a ``torch.save``'d state dict).

SQLite because it is in the standard library, is safe for concurrent readers and writers across threads and
processes (each call opens its own connection; WAL journal), and is one file the user can copy.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from unlearn_core.errors import ConfigError
from unlearn_core.jsonio import to_jsonable
from unlearn_core.paths import cache_dir

DB_NAME = "runs.sqlite"
SCHEMA_VERSION = 1
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
"""


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


class RunStore:
    """The run history in ``<cache dir>/runs.sqlite`` (``UNLEARN_CACHE_DIR`` or the per-user cache)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.path = cache_dir(root) / DB_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")  # persistent: stored in the database file, set once
            con.executescript(_SCHEMA)
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30.0)
        try:
            yield con
            con.commit()
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
        """Store a finished run; returns its id. Weights above :data:`MAX_WEIGHTS_BYTES` are dropped."""
        card = to_jsonable(card)
        config = card.get("config", {}) if isinstance(card.get("config"), dict) else {}
        if weights is not None and len(weights) > MAX_WEIGHTS_BYTES:
            weights = None
        run_id = uuid.uuid4().hex[:12]
        with self._connect() as con:
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
        with self._connect() as con:
            cur = con.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            return cur.rowcount > 0

    # -- reading -----------------------------------------------------------------------------------------
    @staticmethod
    def _row(row: tuple[Any, ...], *, with_weights: bool) -> StoredRun:
        (run_id, created, kind, chash, dataset, model, method, forget, label, card, has_w, *rest) = row
        return StoredRun(
            id=run_id, created=created, kind=kind, config_hash=chash, dataset=dataset, model=model, method=method,
            forget=forget, label=label, card=json.loads(card), has_weights=bool(has_w),
            weights=rest[0] if with_weights and rest else None,
        )

    _COLUMNS = "id, created, kind, config_hash, dataset, model, method, forget, label, card, weights IS NOT NULL"

    def list(self, *, kind: str | None = None, limit: int = 500) -> list[StoredRun]:
        """Runs, newest first (without weights)."""
        query = f"SELECT {self._COLUMNS} FROM runs"
        args: tuple[Any, ...] = ()
        if kind is not None:
            query += " WHERE kind = ?"
            args = (kind,)
        query += " ORDER BY created DESC LIMIT ?"
        with self._connect() as con:
            rows = con.execute(query, (*args, int(limit))).fetchall()
        return [self._row(r, with_weights=False) for r in rows]

    def _columns(self, with_weights: bool) -> str:
        return f"{self._COLUMNS}, weights" if with_weights else self._COLUMNS

    def get(self, run_id: str, *, with_weights: bool = True) -> StoredRun:
        """One run, with its weights unless ``with_weights=False`` (the blob can be tens of MiB).

        Raises:
            ConfigError: when no run has this id.
        """
        with self._connect() as con:
            row = con.execute(f"SELECT {self._columns(with_weights)} FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise ConfigError(f"run {run_id!r} does not exist: pick an id from the run history")
        return self._row(row, with_weights=with_weights)

    def find(self, config_hash: str, *, with_weights: bool = False) -> StoredRun | None:
        """The newest run with this configuration hash, or ``None``: how finished runs are reused.

        Without its weights by default: reuse needs the id and the card, the weights only for a download.
        """
        with self._connect() as con:
            row = con.execute(
                f"SELECT {self._columns(with_weights)} FROM runs WHERE config_hash = ? ORDER BY created DESC LIMIT 1",
                (config_hash,),
            ).fetchone()
        return None if row is None else self._row(row, with_weights=with_weights)

    def __len__(self) -> int:
        with self._connect() as con:
            return int(con.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

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
