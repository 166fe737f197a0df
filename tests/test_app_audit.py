"""AppTest of the Audit and Forget-set size pages, as a user runs them: every certified method of the registry gets
an audit result, an under-noised release is shown as refuted, the page says what an audit cannot show, and the
executor an operator configured (``UNLEARN_EXECUTOR``, no widget) runs the cells and is named on the page.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from unlearn_core.experiments import certified_methods
from unlearn_core.service.jobs import shutdown_all
from unlearn_core.unlearners import get_unlearner

APP = str(Path(__file__).resolve().parents[1] / "app.py")


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


def _page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def _poll(at: AppTest, done, *, timeout: float = 300.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert not at.exception, at.exception
        if done(at):
            return
        time.sleep(0.5)
        at.run()
    raise AssertionError("the job did not finish in time")


def _numeric(at: AppTest, key: str):
    """The numeric widget under ``key``: a slider or a number input (the schema's widget kind decides)."""
    for kind in (at.slider, at.number_input):
        try:
            return kind(key=key)
        except KeyError:
            continue
    raise KeyError(key)


def _tiny(at: AppTest, prefix: str) -> None:
    at.number_input(key=f"{prefix}.epochs").set_value(3)
    at.text_input(key=f"{prefix}.hidden").set_value("16").run()


def test_audit_page_audits_every_certified_method_and_shows_a_refutation(monkeypatch):
    monkeypatch.setenv("UNLEARN_EXECUTOR", "processes")
    monkeypatch.setenv("UNLEARN_WORKERS", "2")
    at = _page("pages/audit.py")
    assert any("What an audit can and cannot show" in i.value and "refutes" in i.value for i in at.info)
    assert any("processes (2 workers" in c.value and "UNLEARN_EXECUTOR" in c.value for c in at.caption)
    assert at.session_state["audit.methods"] == certified_methods()  # every certified method, by default
    assert at.session_state["audit.p.certified_newton.lam"] == 1.0  # the quick demo's finite-Δ setting
    _tiny(at, "audit")
    # The methods whose certificate can hold on this MLP (Descent-to-Delete and Langevin unlearning need a strongly
    # convex model: on a network they say "not certified", and an audit of an unnoised release refutes it).
    on_mlp = [m for m in certified_methods() if get_unlearner(m).certified_models in (None, ("mlp",))]
    at.multiselect(key="audit.methods").set_value(on_mlp)
    at.slider(key="audit.runs").set_value(32)
    at.multiselect(key="audit.factors").set_value([1.0, 1e-10])
    at.number_input(key="audit.p.certified_newton.depth").set_value(50)
    for method in certified_methods():  # no post-processing: the release itself is what is audited
        key = f"audit.p.{method}.finetune_epochs"
        if key in at.session_state:
            _numeric(at, key).set_value(0)
    at.button(key="FormSubmitter:audit.form-Run audit").click().run()
    _poll(at, lambda a: any(s.value == "Results" for s in a.subheader))
    assert not at.exception
    table = at.dataframe[0].value
    assert sorted(set(table["method"])) == sorted(on_mlp)
    certified_rows = table[table["σ ×"] == 1.0]
    assert (certified_rows["verdict"] == "not refuted (nothing confirmed)").all()
    assert (certified_rows["ε lower (audit)"] <= certified_rows["ε certified at σ"]).all()
    op = table[(table["method"] == "output_perturbation") & (table["σ ×"] == 1e-10)].iloc[0]
    assert op["verdict"] == "refutes the claimed ε"
    assert any("output_perturbation" in e.value and "exceeds the claimed ε" in e.value for e in at.error)
    assert len(at.get("plotly_chart")) == 2  # ε bound vs claims, per-example ε and LiRA


def test_forget_size_page_runs_a_sweep():
    at = _page("pages/forget_size.py")
    assert not any("Cells run on" in c.value for c in at.caption)  # no executor configured: nothing said
    _tiny(at, "forget_size")
    at.multiselect(key="forget_size.methods").set_value(["output_perturbation"])
    at.text_input(key="forget_size.sizes").set_value("10,40")
    _numeric(at, "forget_size.p.output_perturbation.finetune_epochs").set_value(1)
    at.button(key="FormSubmitter:forget_size.form-Run sweep").click().run()
    _poll(at, lambda a: any(s.value == "Results" for s in a.subheader))
    assert not at.error, [e.value for e in at.error]
    table = at.dataframe[0].value
    assert list(table.index) == ["retrained · n_u = 10", "output_perturbation · n_u = 10",
                                 "retrained · n_u = 40", "output_perturbation · n_u = 40"]
    assert table.loc["output_perturbation · n_u = 10", "certificate"] == "certified"
    assert len(at.get("plotly_chart")) == 1
    at.text_input(key="forget_size.sizes").set_value("10,abc")
    at.button(key="FormSubmitter:forget_size.form-Run sweep").click().run()
    assert any(e.value.startswith("sizes='10,abc' is not valid") for e in at.error)
