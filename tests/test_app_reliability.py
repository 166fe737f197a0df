"""The dashboard under faults (issue 24), through the product (AppTest): a broken run history, rows that cannot be
read, a history longer than the Runs page lists, a run interrupted by a server stop, and hostile deep links.

Polling is driven by calling ``at.run()`` again (``run_every`` timers do not fire in AppTest).
"""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest
from timeouts import poll_app, scaled

from unlearn_core.service.jobs import shutdown_all
from unlearn_core.service.runstore import RunStore
from unlearn_core.service.text import visible

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("UNLEARN_CACHE_DIR", str(folder))
    st.cache_resource.clear()
    st.cache_data.clear()
    yield folder
    shutdown_all(timeout=scaled(60))
    st.cache_resource.clear()
    st.cache_data.clear()


def _app(query: dict[str, str] | None = None, page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=scaled(60))
    at.query_params.update(query or {})
    at.run()
    if page is not None:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


_poll = functools.partial(poll_app, timeout=120.0)


def _garbage(cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / "runs.sqlite"
    path.write_bytes(b"not a database\n" * 500)
    return path


def _card(i: int = 0) -> dict:
    return {"config": {"dataset": "digits", "model": "mlp", "forget": "random:0.1", "method": "retrain",
                       "params": {}},
            "method": {"name": "retrain", "family": "oracle"}, "models": {}, "timing_s": {}, "device": "cpu"}


def test_runs_page_with_a_garbage_store_is_one_line_with_its_path(cache) -> None:
    """It was "This app has encountered an error"."""
    path = _garbage(cache)
    at = _app(page="pages/runs.py")
    (error,) = [visible(e.value) for e in at.error]  # shown as plain text (service.text.plain)
    assert str(path) in error and "file is not a database" in error and "move it aside" in error
    assert "\n" not in error


def test_explore_runs_and_shows_its_result_with_a_garbage_store(cache) -> None:
    """Run on Explore used to fail (the store is read for reuse and written at the end): the result does not need
    the history, so it is computed and shown, with one warning that it was not stored."""
    _garbage(cache)
    at = _app({"preset": "quick-demo"})
    at.button(key="FormSubmitter:explore.form-Run").click().run()
    _poll(at, lambda a: any(s.value.startswith("Results") for s in a.subheader) or bool(a.error))
    assert not at.error, [e.value for e in at.error]
    warnings = [visible(w.value) for w in at.warning if visible(w.value).startswith("not saved to the run history:")]
    assert len(warnings) == 1 and "file is not a database" in warnings[0] and "move it aside" in warnings[0], warnings


def test_runs_page_leaves_out_unreadable_rows_says_so_and_deletes_them(cache) -> None:
    import sqlite3

    store = RunStore(cache)
    good = store.save(_card(), config_hash="h")
    con = sqlite3.connect(store.path)
    con.execute("INSERT INTO runs (id, created, kind, config_hash, card) VALUES ('bad', 9e9, 'explore', 'x', '[]')")
    con.commit()
    con.close()
    at = _app(page="pages/runs.py")
    assert not at.error, [e.value for e in at.error]
    (warning,) = [visible(w.value) for w in at.warning]
    assert "1 stored run cannot be read" in warning and "bad: its card is a JSON list, not an object" in warning
    (table,) = [d for d in at.dataframe if d.key == "runs.table"]
    assert table.value["id"].tolist() == [good]
    at.button(key="runs.delete_unreadable").click().run()
    assert not at.warning and len(store) == 1


def test_runs_page_says_when_it_lists_only_the_newest(cache) -> None:
    import json
    import sqlite3

    store = RunStore(cache)
    store.save(_card(), config_hash="h0")
    con = sqlite3.connect(store.path)
    con.executemany("INSERT INTO runs (id, created, kind, config_hash, method, card) VALUES (?, ?, 'explore', ?, "
                    "'retrain', ?)", [(f"r{i}", 1e9 + i, f"h{i}", json.dumps(_card())) for i in range(1, 505)])
    con.commit()
    con.close()
    at = _app(page="pages/runs.py")
    assert not at.error
    captions = [c.value for c in at.caption]
    assert any("Showing the newest 500 of 505 stored runs" in c for c in captions), captions


_KILLED_SERVER = """
import os, sys
from unlearn_core.service.runstore import JobJournal, RunStore
import json
journal = JobJournal(RunStore(sys.argv[1]))
journal.started("lost-job", label="retrain on digits/mlp, forget random:0.1", page="explore",
                query=json.loads(sys.argv[2]))
journal.progress("lost-job", {"stage": "train", "describe": "training the original model · epoch 7/40"})
os._exit(0)  # a server stopped mid-job: nothing cleaned up
"""


def test_after_a_restart_the_page_says_its_run_was_interrupted(cache) -> None:
    """A job in progress is journalled with its page and URL; a server stopped mid-job leaves the row, the next
    server marks it interrupted, and the same link then says so (it showed "Results appear here")."""
    import json

    at = _app({"method": "retrain"})
    query = {k: (v[-1] if isinstance(v, list) else v) for k, v in at.query_params.items()}
    subprocess.run([sys.executable, "-c", _KILLED_SERVER, str(cache), json.dumps(query)], cwd=ROOT, check=True,
                   timeout=scaled(120))
    st.cache_resource.clear()  # a new server process: a new registry, which reads the journal
    at = _app(query)
    notices = [visible(w.value) for w in at.warning if "was interrupted" in w.value]
    assert len(notices) == 1, [w.value for w in at.warning]
    assert "retrain on digits/mlp" in notices[0] and "epoch 7/40" in notices[0] and "press Run" in notices[0]
    other = _app({**query, "epochs": "3"})  # another configuration: not its run
    assert not [w for w in other.warning if "was interrupted" in w.value]
    at.button(key="explore.interrupted.lost-job").click().run()
    assert not [w for w in at.warning if "was interrupted" in w.value]
