"""The SQLite run history: save, list, get, find, delete, export."""

from __future__ import annotations

import csv
import io
import json
import threading

import pytest
import torch

from unlearn_core.errors import ConfigError
from unlearn_core.service.runstore import RunStore, card_row, state_dict_bytes


def _card(method="retrain", acc=0.9):
    return {
        "config": {"dataset": "digits", "model": "mlp", "forget": "random:0.1", "method": method, "params": {}},
        "method": {"name": method, "family": "oracle"},
        "models": {"unlearned": {"acc_test": acc, "acc_forget": 0.5}, "original": {"acc_test": 0.95}},
        "distance": {"unlearned_to_retrained": 0.0},
        "timing_s": {"unlearn": 1.5},
        "certificate": None,
        "diagnostics": {"curve": [1, 2, 3]},
        "device": "cpu",
    }


def test_save_list_get_delete(tmp_path):
    store = RunStore(tmp_path)
    assert store.path == tmp_path / "runs.sqlite"
    model = torch.nn.Linear(3, 2)
    a = store.save(_card(acc=0.8), config_hash="h1", weights=state_dict_bytes(model))
    b = store.save(_card("fisher", 0.7), config_hash="h2", kind="compare", label="two")
    listed = store.list()
    assert [r.id for r in listed] == [b, a]  # newest first
    assert listed[0].method == "fisher" and listed[0].label == "two" and not listed[0].has_weights
    assert listed[1].has_weights and listed[1].weights is None  # list() does not load blobs
    assert [r.id for r in store.list(kind="compare")] == [b]

    got = store.get(a)
    assert got.card["models"]["unlearned"]["acc_test"] == 0.8
    state = torch.load(io.BytesIO(got.weights), weights_only=True)
    assert torch.equal(state["weight"], model.weight.detach())

    assert store.delete(a) and not store.delete(a)
    assert len(store) == 1
    with pytest.raises(ConfigError, match="does not exist"):
        store.get(a)


def test_find_returns_newest_for_config_and_survives_reopen(tmp_path):
    store = RunStore(tmp_path)
    store.save(_card(acc=0.1), config_hash="same")
    newest = store.save(_card(acc=0.2), config_hash="same")
    assert store.find("other") is None
    reopened = RunStore(tmp_path)  # a restart: a new object on the same file
    assert reopened.find("same").id == newest


def test_export_json_and_csv(tmp_path):
    store = RunStore(tmp_path)
    a = store.save(_card(acc=0.8), config_hash="h1")
    store.save(_card("fisher", 0.7), config_hash="h2")
    cards = json.loads(store.export_json())
    assert {c["card"]["config"]["method"] for c in cards} == {"retrain", "fisher"}
    rows = list(csv.DictReader(io.StringIO(store.export_csv([a]))))
    assert len(rows) == 1
    assert rows[0]["id"] == a and float(rows[0]["models.unlearned.acc_test"]) == 0.8
    assert "diagnostics.curve" not in rows[0]


def test_card_row_flattens_and_skips_lists():
    row = card_row(_card())
    assert row["config.method"] == "retrain"
    assert row["timing_s.unlearn"] == 1.5
    assert row["device"] == "cpu"
    assert not any(k.startswith("diagnostics") for k in row)


def test_concurrent_writers(tmp_path):
    store = RunStore(tmp_path)
    errors = []

    def write(i):
        try:
            for j in range(5):
                store.save(_card(acc=i + j / 10), config_hash=f"h{i}")
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(store) == 20


# -- issue 24: readers that never write or wait, a broken store in one line, the journal of jobs -------------------


def test_readers_write_nothing_and_a_new_store_touches_nothing(tmp_path):
    """Every open used to write ``PRAGMA user_version`` (and create the file): a reader then waited behind any
    writer. Now only the first save creates the file; reading leaves it byte for byte and time for time."""
    store = RunStore(tmp_path / "cache")
    assert list(store.list()) == [] and store.find("h") is None and len(store) == 0
    assert not (tmp_path / "cache").exists()
    run_id = store.save(_card(), config_hash="h")
    before = (store.path.stat().st_mtime_ns, store.path.read_bytes())
    reader = RunStore(tmp_path / "cache")
    assert [r.id for r in reader.list()] == [run_id] and reader.find("h").id == run_id and len(reader) == 1
    assert reader.get(run_id).card["config"]["method"] == "retrain"
    assert (store.path.stat().st_mtime_ns, store.path.read_bytes()) == before


def test_a_reader_does_not_wait_behind_a_writer(tmp_path):
    """A writer holds its transaction open (as a long save would); a fresh store object still lists at once."""
    import sqlite3
    import time

    store = RunStore(tmp_path)
    store.save(_card(), config_hash="h")
    writer = sqlite3.connect(store.path, timeout=30)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO runs (id, created, kind, config_hash, card) VALUES ('w', 1, 'x', 'h2', '{}')")
    try:
        start = time.perf_counter()
        listed = RunStore(tmp_path).list()
        waited = time.perf_counter() - start
    finally:
        writer.rollback()
        writer.close()
    assert len(listed) == 1 and waited < 1.0, waited  # it waited up to 30 s (the connect timeout) before


def _truncated(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path):
    path.write_bytes(b"this is not a database, it is a shopping list\n" * 200)


BROKEN = {
    "truncated": (_truncated, "database disk image is malformed", "move it aside"),
    "garbage": (_garbage, "file is not a database", "move it aside"),
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_a_broken_store_is_one_line_with_its_path_and_what_to_do(kind, tmp_path):
    from unlearn_core.service.runstore import RunStoreError

    store = RunStore(tmp_path)
    for i in range(40):  # several pages, so that half a file is a real truncation
        store.save(_card(acc=i / 40), config_hash=f"h{i}")
    damage, cause, fix = BROKEN[kind]
    damage(store.path)
    for call in (store.list, lambda: store.find("h1"), lambda: len(store), lambda: store.get("x"),
                 lambda: store.save(_card(), config_hash="new")):
        with pytest.raises(RunStoreError) as info:
            call()
        message = str(info.value)
        assert "\n" not in message and str(store.path) in message and fix in message, message
        assert cause in message or "malformed" in message, message


def test_a_locked_store_is_one_line_after_a_short_wait(tmp_path):
    import sqlite3
    import time

    from unlearn_core.service.runstore import READ_TIMEOUT_S, RunStoreError

    store = RunStore(tmp_path)
    store.save(_card(), config_hash="h")
    holder = sqlite3.connect(store.path)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        start = time.perf_counter()
        with pytest.raises(RunStoreError, match="database is locked — another program holds a lock on it"):
            store.list()
        assert time.perf_counter() - start < READ_TIMEOUT_S + 2.0
    finally:
        holder.rollback()
        holder.close()
    assert len(store.list()) == 1  # and readable again once released


def test_a_row_whose_card_is_not_an_object_is_left_out_and_said(tmp_path):
    import sqlite3

    from unlearn_core.service.runstore import RunStoreError

    store = RunStore(tmp_path)
    good = store.save(_card(), config_hash="same")
    con = sqlite3.connect(store.path)
    con.executemany("INSERT INTO runs (id, created, kind, config_hash, card) VALUES (?, ?, 'explore', 'same', ?)",
                    [("alist", 9e9, "[1, 2]"), ("nojson", 9e9 + 1, "{not json")])
    con.commit()
    con.close()
    listed = store.list()
    assert [r.id for r in listed] == [good] and listed.total == 3
    assert dict(listed.unreadable) == {"alist": "its card is a JSON list, not an object",
                                       "nojson": listed.unreadable[0][1]}
    assert listed.unreadable[0][1].startswith("its card is not JSON")
    assert store.find("same").id == good  # the newest readable one
    with pytest.raises(RunStoreError, match=r"run 'alist' .* cannot be opened: its card is a JSON list"):
        store.get("alist")
    assert len(json.loads(store.export_json())) == 1


def test_list_says_how_many_there_are_beyond_the_limit(tmp_path):
    store = RunStore(tmp_path)
    for i in range(7):
        store.save(_card(acc=i / 10), config_hash=f"h{i}")
    listed = store.list(limit=5)
    assert len(listed) == 5 and listed.total == 7


_DEAD_SERVER = """
import os, sys
from unlearn_core.service.runstore import JobJournal, RunStore
journal = JobJournal(RunStore(sys.argv[1]))
journal.started("k-lost", label="certified_newton on mnist/mlp", page="explore", query={"dataset": "mnist"})
journal.progress("k-lost", {"stage": "train", "epoch": 3, "epochs": 50, "describe": "training · epoch 3/50"})
journal.started("k-done", label="quick", page="explore", query={})
journal.finished("k-done")
os._exit(0)  # no clean-up: as a server killed mid-job
"""


def test_the_jobs_of_a_process_that_died_are_marked_interrupted_by_the_next_one(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from unlearn_core.service.jobs import JobRegistry
    from unlearn_core.service.runstore import JobJournal

    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", _DEAD_SERVER, str(tmp_path)], cwd=root, check=True, timeout=120)
    journal = JobJournal(RunStore(tmp_path))
    assert journal.interrupted() == []  # still "running" until a new registry looks
    JobRegistry(journal=journal, reap_every_s=None)  # a server starting
    (row,) = journal.interrupted(page="explore")
    assert row["key"] == "k-lost" and row["query"] == {"dataset": "mnist"}
    assert row["progress"]["describe"] == "training · epoch 3/50"
    journal.dismiss("k-lost")
    assert journal.interrupted() == []


def test_a_running_jobs_row_is_kept_while_it_runs_and_removed_when_it_ends(tmp_path):
    import threading

    from unlearn_core.service.jobs import JobRegistry
    from unlearn_core.service.runstore import JobJournal

    journal = JobJournal(RunStore(tmp_path))
    registry = JobRegistry(journal=journal, reap_every_s=None)
    gate = threading.Event()

    def work(progress, cancel):
        progress({"stage": "train", "epoch": 1, "epochs": 2})
        gate.wait(30)
        return 1

    registry.submit("k", work, label="a job", meta={"page": "explore", "query": {"a": "1"}})
    rows = journal.store._query("SELECT key, state, page FROM jobs")
    assert rows == [("k", "running", "explore")]
    assert JobJournal(RunStore(tmp_path)).mark_interrupted() == 0  # its process is alive: not interrupted
    gate.set()
    registry.wait("k", timeout=30)
    assert journal.store._query("SELECT key FROM jobs") == []


def test_a_server_stopping_mid_job_leaves_it_journalled_as_interrupted(tmp_path):
    """SIGTERM to the server runs the registry's exit hook: the job is cancelled at its next step (its thread no
    longer runs into the interpreter's teardown, which aborted the server) and its row stays, interrupted."""
    import threading

    from unlearn_core.progress import Cancelled
    from unlearn_core.service.jobs import CANCELLED, JobRegistry
    from unlearn_core.service.runstore import JobJournal

    journal = JobJournal(RunStore(tmp_path))
    registry = JobRegistry(journal=journal, reap_every_s=None)
    started = threading.Event()

    def work(progress, cancel):
        started.set()
        while not cancel.wait(0.05):
            progress({"stage": "train", "epoch": 1, "epochs": 9})
        raise Cancelled("cancelled")

    job = registry.submit("k", work, label="a long job", meta={"page": "explore", "query": {}})
    assert started.wait(30)
    registry.stop_for_exit(timeout=30)
    assert job.state == CANCELLED and job.cancel_reason == "the server stopped"
    assert [row["key"] for row in journal.interrupted(page="explore")] == ["k"]
