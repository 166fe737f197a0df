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
