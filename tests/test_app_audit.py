"""AppTest of the Audit and Forget-set size pages, as a user runs them: every certified method of the registry gets
an audit result, an under-noised release is shown as refuted, the page says what an audit cannot show, and the
executor an operator configured (``UNLEARN_EXECUTOR``, no widget) runs the cells and is named on the page.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest
from timeouts import poll_app

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


_poll = functools.partial(poll_app, timeout=300.0, interval=0.5, scale_deadline=False)


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
    # convex model: on a network they say "not certified", and an audit of an unnoised release refutes it), trained
    # by the page's recipe: a method with its own (Rewind-to-Delete: gradient descent with checkpoints) trains the
    # models again and runs hundreds of descent steps per release — its audit is tested in test_experiments.py.
    on_mlp = [m for m in certified_methods() if get_unlearner(m).certified_models in (None, ("mlp",))
              and get_unlearner(m).training_optimizer is None]
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
    certified_rows = table[table["σ"] == "× 1"]
    assert (certified_rows["verdict"] == "not refuted (nothing confirmed)").all()

    def number(text: str) -> float:  # the table shows 3 significant digits, ∞ as ∞
        return float(text.replace("∞", "inf"))

    lower, cert = certified_rows["ε lower (audit)"].map(number), certified_rows["ε certified at σ"].map(number)
    assert (lower <= cert * (1 + 1e-3)).all()
    op = table[(table["method"] == "output_perturbation") & (table["σ"] == "× 1e-10")].iloc[0]
    assert op["verdict"] == "refutes the claimed ε"
    assert any("output_perturbation" in e.value and "exceeds the claimed ε" in e.value for e in at.error)
    assert len(at.get("plotly_chart")) == 2  # ε bound vs claims, per-example ε and LiRA


def _q(at: AppTest, key: str) -> str:
    value = at.query_params[key]
    return value[-1] if isinstance(value, list) else value


def test_forget_size_page_runs_a_sweep():
    at = _page("pages/forget_size.py")
    assert not any("Cells run on" in c.value for c in at.caption)  # no executor configured: nothing said
    _tiny(at, "forget_size")
    at.multiselect(key="forget_size.methods").set_value(["output_perturbation"]).run()  # its tab appears
    at.text_input(key="forget_size.sizes").set_value("10,40")
    _numeric(at, "forget_size.p.output_perturbation.finetune_epochs").set_value(1)
    at.button(key="FormSubmitter:forget_size.form-Run sweep").click().run()
    _poll(at, lambda a: any(s.value == "Results" for s in a.subheader))
    assert not at.error, [e.value for e in at.error]
    table = at.dataframe[0].value
    assert list(zip(table.index, table["n_u"], strict=True)) == [
        ("retrained", "10"), ("output_perturbation", "10"), ("retrained", "40"), ("output_perturbation", "40")]
    assert table.iloc[1]["certificate"] == "certified"
    assert _q(at, "methods") == "output_perturbation" and _q(at, "sizes") == "10,40"  # every setting in the URL
    assert len(at.get("plotly_chart")) == 1
    at.text_input(key="forget_size.sizes").set_value("10,abc")
    at.button(key="FormSubmitter:forget_size.form-Run sweep").click().run()
    assert any(e.value.startswith("sizes='10,abc' is not valid") for e in at.error)


def test_audit_page_defaults_can_refute_and_every_setting_is_in_the_url():
    """Before Run the page says what its design can show; it starts at the smallest runs per arm that can refute the
    claimed ε = 1 (24: ceiling 1.02), warns below, and mirrors every setting into the URL (and back from a link)."""
    at = _page("pages/audit.py")
    assert at.slider(key="audit.runs").value == 24
    assert list(at.multiselect(key="audit.factors").value) == [1.0, 1e-10]
    assert all(at.session_state[f"audit.p.{m}.finetune_epochs"] == 0 for m in certified_methods()
               if f"audit.p.{m}.finetune_epochs" in at.session_state)  # the noisy release itself is audited
    before = [c.value for c in at.caption if c.value.startswith("**Before Run:**")]
    assert before and "24 runs per arm can show ε up to 1.02, above the claimed ε = 1" in before[0]
    assert "unlearning runs" in before[0]
    query = at.query_params
    for key, value in (("runs", "24"), ("mode", "runs"), ("factors", "1,1e-10")):
        assert query[key] == [value] or query[key] == value, (key, query.get(key))
    at.slider(key="audit.runs").set_value(16).run()
    assert any("cannot refute every claim" in w.value and "at least 23 runs per arm" in w.value for w in at.warning)
    at.radio(key="audit.mode").set_value("one_run").run()
    assert any("256 canaries, 32 guesses per side can show ε up to 1.50" in c.value for c in at.caption)

    # a shared link opens the page with its settings (through the router, as a deep link is)
    link = AppTest.from_file(APP, default_timeout=60)
    link.query_params.update({"methods": "output_perturbation", "mode": "one_run", "canaries": "128",
                              "guesses": "16", "factors": "1,0.0001", "seeds": "2",
                              "p.output_perturbation.C0": "10"})
    link.switch_page("pages/audit.py").run()
    assert not link.exception and link.session_state["audit.methods"] == ["output_perturbation"]
    assert link.session_state["audit.mode"] == "one_run" and link.session_state["audit.canaries"] == 128
    assert link.session_state["audit.guesses"] == 16 and link.session_state["audit.factors"] == [1.0, 1e-4]
    assert link.session_state["audit.nseeds"] == 2 and link.session_state["audit.p.output_perturbation.C0"] == 10.0


def test_a_per_example_epsilon_above_the_claim_is_read_against_its_null():
    from unlearn_core.experiments import audit_per_example_note

    row = {"method": "noisy_finetune", "sigma_factor": 1.0, "epsilon": 1.0, "pe_epsilon_median": 1.35,
           "pe_epsilon_median_null": 1.3}
    assert "not evidence of a leak" in audit_per_example_note(row)
    assert "a sign of leakage" in audit_per_example_note({**row, "pe_epsilon_median_null": 0.4})
    assert audit_per_example_note({**row, "pe_epsilon_median": 0.9}) is None
