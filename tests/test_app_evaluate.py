"""AppTest of the Evaluate page and of the new forget-set widgets, as a user opens them from a deep link.

Anchors: every setting of the page comes from the URL and goes back to it; a bad value is one warning line and the
page still opens; a run from a deep link shows each certified method's reading, the table and the certified-vs-
attacked figure, and says that an attack can refute a certificate but never confirm it; the sub-class and
memorisation forget sets round-trip between the URL and their widgets on Explore.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from unlearn_core.refutation import NEVER_CONFIRMS
from unlearn_core.service.jobs import shutdown_all

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TINY = {"dataset": "synthetic", "model": "mlp", "hidden": "8", "epochs": "3", "forget": "random:40"}


@pytest.fixture(autouse=True)
def _fresh_app(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("UNLEARN_EXECUTOR", raising=False)
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    shutdown_all(timeout=60)
    st.cache_resource.clear()
    st.cache_data.clear()


def _open(page: str, query: dict[str, str]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(query)
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def _q(at: AppTest, key: str) -> str:
    value = at.query_params[key]
    return value[-1] if isinstance(value, list) else value


def test_evaluate_page_runs_from_a_deep_link_and_reads_each_certificate() -> None:
    at = _open("pages/evaluate.py", {**TINY, "methods": "finetune,output_perturbation", "models": "4",
                                     "shadows": "4", "audit": "0", "scores": "challenge,tow,ulira",
                                     "p.output_perturbation.finetune_epochs": "1", "p.finetune.epochs": "1"})
    assert any(NEVER_CONFIRMS in i.value for i in at.info)
    ss = at.session_state
    assert ss["evaluate.methods"] == ["finetune", "output_perturbation"] and ss["evaluate.models"] == 4
    assert ss["evaluate.p.output_perturbation.finetune_epochs"] == 1
    assert _q(at, "models") == "4" and _q(at, "methods") == "finetune,output_perturbation"
    at.button(key="FormSubmitter:evaluate.form-Run evaluation").click().run()
    deadline = time.time() + 300
    while time.time() < deadline and not any("output_perturbation" in i.value for i in at.info):
        assert not at.exception, at.exception
        time.sleep(0.5)
        at.run()
    reading = next(i.value for i in at.info if "output_perturbation" in i.value)
    assert "Not refuted" in reading and NEVER_CONFIRMS in reading
    table = at.dataframe[0].value
    assert list(table.index) == ["original", "retrained", "finetune", "output_perturbation"]
    assert table.loc["original", "challenge F"] == "0" and "certified ε (upper bound)" in table.columns
    assert at.get("plotly_chart")  # the certified-vs-attacked figure
    # Reopened on the Runs page (the latest run), it is drawn as it was live: no error, the same figure.
    at.switch_page("pages/runs.py").run()
    assert not at.exception, at.exception
    assert any("A evaluate experiment" in c.value or "evaluate experiment" in c.value for c in at.caption)
    assert at.get("plotly_chart")


def test_evaluate_page_bad_link_values_are_one_line_warnings() -> None:
    at = _open("pages/evaluate.py", {**TINY, "methods": "nope", "models": "2", "shadows": "x", "scores": "bogus"})
    text = " | ".join(w.value for w in at.warning)
    for fragment in ("methods='nope' is not valid", "models", "shadows", "scores=bogus is not valid"):
        assert fragment in text, fragment
    assert at.session_state["evaluate.models"] == 16 and at.session_state["evaluate.shadows"] == 16


@pytest.mark.parametrize("spec", ["subclass:3:1:6", "memorised:low:0.05"])
def test_new_forget_sets_round_trip_through_the_url(spec: str) -> None:
    at = _open("pages/explore.py", {"dataset": "digits", "forget": spec})
    ss = at.session_state
    assert ss["explore.fkind"] == spec.split(":")[0]
    if spec.startswith("subclass"):
        assert (ss["explore.fsubclass"], ss["explore.fcluster"], ss["explore.fclusters"]) == (3, 1, 6)
    else:
        assert (ss["explore.flevel"], ss["explore.fmemamount"]) == ("low", 0.05)
    assert _q(at, "forget") == spec
    at.selectbox(key="explore.fkind").set_value("subclass").run()
    at.number_input(key="explore.fclusters").set_value(3).run()
    assert _q(at, "forget") == ("subclass:3:1:3" if spec.startswith("subclass") else "subclass:0:0:3")
