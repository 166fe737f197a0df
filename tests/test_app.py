"""AppTest for every page: loads without exception, the quick demo runs and shows its metrics, bad query
parameters warn, and the UI-free state helpers round-trip.

Polling is driven by calling ``at.run()`` again (``run_every`` timers do not fire in AppTest). Caches are cleared
and worker threads joined around every test.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest
from timeouts import poll_app, scaled

from unlearn_core.service import ui_state
from unlearn_core.service.jobs import shutdown_all
from unlearn_core.service.text import visible
from unlearn_core.unlearners import get_unlearner, list_unlearners

APP = str(Path(__file__).resolve().parents[1] / "app.py")
PAGES = ["pages/explore.py", "pages/compare.py", "pages/sequential.py", "pages/sensitivity.py",
         "pages/forget_size.py", "pages/audit.py", "pages/evaluate.py", "pages/learn.py", "pages/runs.py"]


@pytest.fixture(autouse=True)
def _fresh_app(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARN_CACHE_DIR", str(tmp_path / "cache"))
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    shutdown_all(timeout=scaled(60))
    st.cache_resource.clear()
    st.cache_data.clear()


def _number(text: str) -> float:
    """A number as the page writes it (:mod:`unlearn_core.formatting`: "3,382", "5.65 × 10⁻⁶", "1.8 × 10⁶")."""
    text = text.replace(",", "").replace("−", "-")
    if " × 10" in text:
        mantissa, power = text.split(" × 10")
        return float(mantissa) * 10 ** int(power.translate(str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")))
    return float(text)


def _errors(at: AppTest) -> list[str]:
    """The page's error boxes that report a failure: a destroyed model's verdict is drawn red (st.error) too, and
    is a result, not a failure."""
    return [e.value for e in at.error if "**Like retraining?**" not in e.value]


def _app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=scaled(60))
    at.run()
    assert not at.exception, at.exception
    return at


_poll = functools.partial(poll_app, timeout=120.0)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_loads(page):
    at = _app()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert not _errors(at), _errors(at)
    assert at.title, "each page has a title"


def test_learn_calculators_use_the_certificate_module():
    at = _app()
    at.switch_page("pages/learn.py").run()
    metrics = {m.label: m.value for m in at.metric}
    # methods.md §8: σ_analytic(ε=1, δ=1e-5, Δ=1) = 3.7306, classical 4.8448; Δ_exact(20, 1, 200, 0) = 44.
    assert _number(metrics["σ analytic (Balle & Wang)"]) == pytest.approx(3.7306, rel=1e-3)
    assert _number(metrics["σ classical"].strip("()")) == pytest.approx(4.8448, rel=1e-3)  # bracketed: ε = 1 ≥ 1
    assert _number(metrics["Δ"]) == pytest.approx(44.0, rel=1e-6)
    at.number_input(key="learn.lmin").set_value(-300.0).run()
    assert any("the bound does not apply" in w.value for w in at.warning)


def test_learn_explains_the_terms_of_delta_and_links_every_preset():
    """Issue 12: Learn shows where Δ's terms come from with the vacuous preset's measured constants — the LiSSA
    term (16κ√(ln(p/ρ)/S₁) + 1/16)(2CL + G) dominates — uses the analytic σ where the classical one is invalid,
    links each preset and draws the frontier measured on digits."""
    at = _app()
    at.switch_page("pages/learn.py").run()
    metrics = {m.label: m.value for m in at.metric}
    C, lam, M, lmin, G, L, H, zeta, p, rho, reps = 20.0, 1.0, 1.0, -0.0792, 1.0, 15.63, 36.41, 0.3352, 3466, 0.05, 4
    exact = 2 * C * (M * C + lam) / (lam + lmin)
    lissa = (16 * (H / zeta) * math.sqrt(math.log(p / rho) / reps) + 1 / 16) * (2 * C * L + G)
    assert _number(metrics["exact term"]) == pytest.approx(exact, rel=1e-3)
    assert _number(metrics["+ non-convergence (G)"]) == pytest.approx(G / (lam + lmin), rel=1e-3)
    assert _number(metrics["+ LiSSA term"]) == pytest.approx(lissa, rel=1e-3)
    assert lissa > 1000 * exact  # why σ ≈ 10⁶ on the MLP
    # Section 4 quotes the analytic σ at Δ = 2C = 40 (ε = 1, δ = 1e-5): 40 × 3.7306, not the classical 194.
    text = " ".join(m.value for m in at.markdown)
    assert "σ ≥ **149**" in text and "194" in text and "not proved at ε = 1" in text
    links = {pl.proto.label.split(" — ")[0]: pl.proto.query_string for pl in at.get("page_link")
             if pl.proto.page in ("explore", "")}  # Explore is the default page: its path is ""
    # (the Playground links are tested in test_app_playground.py)
    assert links == {name: f"preset={ui_state.preset_slug(name)}" for name in ui_state.PRESETS}
    assert len(at.get("plotly_chart")) == 1  # the frontier


def test_bad_query_parameters_warn_and_fall_back():
    at = AppTest.from_file(APP, default_timeout=scaled(60))
    at.query_params["dataset"] = "nope"
    at.query_params["forget"] = "random:2.5x"
    at.query_params["method"] = "certified_newton"
    at.query_params["p.lam"] = "-1"
    at.query_params["hidden"] = "32-99999"
    at.run()
    assert not at.exception
    warnings = [visible(w.value) for w in at.warning]  # URL text is escaped Markdown (service.text.plain)
    assert any(w.startswith("dataset='nope' is not valid: choose one of digits") for w in warnings), warnings
    assert any("forget spec 'random:2.5x' is not valid" in w for w in warnings), warnings
    assert any(w.startswith("lam=") and "expected a number in [0" in w for w in warnings), warnings
    assert any(w.startswith("hidden='32-99999' is not valid: expected 1-8 widths") for w in warnings), warnings
    assert at.session_state["explore.dataset"] == "digits"
    assert at.session_state["explore.p.certified_newton.lam"] == pytest.approx(0.01)


def test_deep_link_restores_the_configuration():
    at = AppTest.from_file(APP, default_timeout=scaled(60))
    at.query_params.update({"dataset": "synthetic", "model": "logreg", "forget": "class:2", "epochs": "7",
                            "method": "retrain", "p.seed_offset": "3"})
    at.run()
    assert not at.exception and not at.warning
    ss = at.session_state
    assert ss["explore.dataset"] == "synthetic" and ss["explore.model"] == "logreg"
    assert ss["explore.fkind"] == "class" and ss["explore.fclasses"] == [2]
    assert ss["explore.epochs"] == 7 and ss["explore.method"] == "retrain"
    assert ss["explore.p.retrain.seed_offset"] == 3
    # and the URL is rewritten with the whole configuration
    assert at.query_params["forget"] in ("class:2", ["class:2"]) and at.query_params["p.seed_offset"] in ("3", ["3"])


def _verdict(at: AppTest) -> tuple[str, str]:
    """The verdict box (its colour and its Markdown): the one box with the three questions."""
    for tone, boxes in (("success", at.success), ("info", at.info), ("warning", at.warning), ("error", at.error)):
        for box in boxes:
            if "**Like retraining?**" in box.value:
                return tone, box.value
    raise AssertionError("no verdict on the page")


def _run_preset(name: str) -> AppTest:
    at = _app()
    at.button(key=f"explore.preset.{name}").click().run()
    at.button(key="FormSubmitter:explore.form-Run").click().run()
    _poll(at, lambda a: any(s.value.startswith("Results") for s in a.subheader) or bool(a.exception))
    assert not at.exception, at.exception
    return at


def test_quick_demo_shows_a_method_that_works():
    """The quick demo is the first thing a stakeholder sees: noisy fine-tuning forgets the digit 3 — forget accuracy
    0 % like the retrained model — keeps the retrained model's test accuracy, and is certified at ε = 1. The verdict
    says so first, in green; pressing Run again reuses the stored run; the Runs page lists it with its verdict."""
    at = _app()
    at.button(key=f"explore.preset.{ui_state.QUICK_DEMO}").click().run()
    ss = at.session_state
    assert (ss["explore.dataset"], ss["explore.model"], ss["explore.fkind"]) == ("digits", "mlp", "class")
    assert ss["explore.fclasses"] == [3] and ss["explore.method"] == ui_state.preset(ui_state.QUICK_DEMO).method
    at.button(key="FormSubmitter:explore.form-Run").click().run()
    _poll(at, lambda a: any(s.value.startswith("Results") for s in a.subheader))
    assert not _errors(at), _errors(at)
    tone, text = _verdict(at)
    assert tone == "success" and text.startswith("**Works: forgets like retraining"), text
    assert "**Certified?** Yes — certified at ε = 1" in text and "**Cost?** Unlearning" in text
    table = at.dataframe[0].value
    assert list(table.index) == ["original", "retrained", "unlearned"]
    assert table.loc["original", "acc forget"] > 0.9  # the original knows the 3s...
    assert table.loc["retrained", "acc forget"] == table.loc["unlearned", "acc forget"] == 0.0  # ...both forgot
    assert abs(table.loc["unlearned", "acc test"] - table.loc["retrained", "acc test"]) <= 0.02
    assert any(s.value.startswith("**certified** at (ε, δ) = (1, 1e-05)") for s in at.success)  # the card agrees
    assert at.get("plotly_chart"), "charts are rendered"
    assert len(at.get("download_button")) >= 3
    # the run is in the history, and pressing Run again reuses it instead of recomputing
    at.button(key="FormSubmitter:explore.form-Run").click().run()
    assert any("Reused the finished run" in i.value for i in at.info)
    assert _verdict(at)[0] == "success"
    at.switch_page("pages/runs.py").run()
    assert not at.exception and not _errors(at)
    runs_table = at.dataframe[0].value
    # key columns first: what ran, λ/ε/δ, the verdict, the test accuracy gap, the time
    assert list(runs_table.columns[:12]) == ["select", "method", "dataset", "model", "forget", "settings", "ε", "δ",
                                             "verdict", "test acc. gap", "acc test", "unlearn"]
    assert runs_table["verdict"].iloc[0] == "works" and runs_table["ε"].iloc[0] == "1"
    assert runs_table["settings"].iloc[0].startswith("T=")  # noisy fine-tuning's own names, no bare "λ" column
    assert not any(str(v) in ("None", "nan") for v in runs_table.to_numpy().ravel())
    # Reopen loads the configuration back into Explore
    assert at.button(key="runs.reopen").label == "Open in Explore"
    assert _verdict(at)[0] == "success"  # the reopened run shows its verdict too


def test_certified_and_useful_preset_is_certified_within_two_points_of_retraining():
    # Seeded release noise (a labelled simulation): with secure noise the gap is itself random — one CI run of five
    # measured 2.5 points — so the two-point claim is checked on a repeatable draw.
    at = _app()
    at.button(key=f"explore.preset.{ui_state.CERTIFIED_AND_USEFUL}").click().run()
    at.checkbox(key="explore.reproducible").check().run()
    at.button(key="FormSubmitter:explore.form-Run").click().run()
    _poll(at, lambda a: any(s.value.startswith("Results") for s in a.subheader) or bool(a.exception))
    assert not at.exception, at.exception
    assert not _errors(at), _errors(at)
    tone, text = _verdict(at)
    # Random points: the original model is itself within the tolerances, so the verdict says that nothing
    # measurable was left to forget and that the certificate is the evidence — blue, not green (issue 20).
    assert tone == "info" and "nothing measurable was left to forget" in text, text
    assert ("Certified at ε = 1; a simulation, not a release — the certificate is the evidence of forgetting here."
            in text)
    table = at.dataframe[0].value
    assert abs(table.loc["unlearned", "acc test"] - table.loc["retrained", "acc test"]) <= 0.02
    from dashboard import common

    (stored,) = common.get_store().list()
    assert stored.card["certificate"]["status"] == "certified" and stored.card["config"]["params"]["epsilon"] == 1.0


def test_convex_preset_lands_the_newton_step_on_the_retrained_model():
    """The Convex preset trains both models to a minimiser (L-BFGS, ‖∇‖ ≤ 1e-5) and takes exact Newton steps with
    λ = 0: the page shows the noise-free estimate's distance to the retrained model as a fraction of the
    original's (≈ 0.002 on random:0.05; with the paper's Adam recipe the same step moved away: 3.0 against 0.31).
    With bound=strong_convexity (issue 19) the release is certified — every constant a bound — at ε = 1 and as
    accurate as retraining: the verdict says it works, the card says certified."""
    at = _app()
    at.button(key=f"explore.preset.{ui_state.NEWTON_CONVEX}").click().run()
    ss = at.session_state
    assert ss["explore.model"] == "logreg" and ss["explore.optimizer"] == "lbfgs" and ss["explore.use_tol"] is True
    assert ss["explore.method"] == "certified_newton"
    assert ss["explore.p.certified_newton.solver"] == "exact" and ss["explore.p.certified_newton.lam"] == 0.0
    assert ss["explore.p.certified_newton.bound"] == "strong_convexity"
    at.button(key="FormSubmitter:explore.form-Run").click().run()
    _poll(at, lambda a: any(s.value.startswith("Results") for s in a.subheader))
    metrics = {m.label: m for m in at.metric}
    ratio = metrics["‖w̃ − w̃*‖ / ‖w* − w̃*‖ (noise-free step)"]
    assert _number(ratio.value) < 0.05
    grad = metrics["retrained model's ‖∇(L + wd/2‖w‖²)‖"]
    assert _number(grad.value) <= 1e-5 and grad.delta == "≤ tolerance 1e-05: a minimiser"
    table = at.dataframe[0].value
    assert abs(table.loc["unlearned", "acc test"] - table.loc["retrained", "acc test"]) <= 0.02
    tone, _ = _verdict(at)
    assert tone == "success"
    assert any(b.value.startswith("**certified** at (ε, δ) = (1, 1e-05)") for b in at.success)  # the card agrees
    from dashboard import common

    (stored,) = common.get_store().list()
    cert = stored.card["certificate"]
    assert cert["status"] == "certified" and all(c["tag"] == "bound" for c in cert["constants"])


def test_vacuous_bound_preset_is_certified_and_the_noise_destroys_the_model():
    """Certified Newton on the digits MLP: every condition holds (λ = 1 > −λ_min, depth ≥ the lemma's, G = 1 above
    the retrained model's gradient, checked), and the bound is vacuous: the LiSSA term dominates Δ and σ ≈ 10⁶
    turns the release into noise while the step itself keeps the model's accuracy."""
    at = _run_preset(ui_state.VACUOUS)
    table = at.dataframe[0].value
    assert list(table.index) == ["original", "retrained", "unlearned before noise", "unlearned"]
    assert table.loc["unlearned before noise", "acc test"] > 0.8  # the Newton step itself keeps the utility
    assert table.loc["unlearned", "acc test"] < 0.3  # the certified noise does not
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Δ (sensitivity bound)"] != "∞" and _number(metrics["Δ (sensitivity bound)"]) > 0
    assert metrics["σ used"] == metrics["σ required"] and _number(metrics["σ used"]) > 1e5
    tone, text = _verdict(at)
    assert tone == "error" and "but the noise that certifies it destroyed the model" in text, text
    assert "**Certified?** Yes, under assumptions" in text
    from dashboard import common

    (stored,) = common.get_store().list()
    cert = stored.card["certificate"]
    assert cert["status"] == "certified under assumptions"
    terms = cert["sensitivity_terms"]
    assert terms["lissa"] > 100 * terms["exact"]  # why σ is ≈ 10⁶: the LiSSA term, not the exact step's


@pytest.mark.slow
@pytest.mark.usefixtures("shared_data")
def test_paper_preset_does_not_forget_and_is_not_certified():
    """Zhang et al.'s setting (the preset: MNIST MLP, 1,000 random points, 50 epochs, λ = 0.01) tells its story on a
    reduced setting that keeps it true: the preset's method, λ, recipe and 50 epochs on digits, forgetting half of
    it (700 points, so that the forget accuracy's sampling noise stays under the verdict's 2 points). λ + λ_min ≤ 0,
    so Δ = ∞ and no noise is added; the Newton step barely moves, and the model still remembers the forget set.
    The preset itself at full scale (MNIST, 50 epochs, twice: ≈ 15 min on a loaded 2-core machine, 92 s quiet) is
    bench/bench_paper_preset.py's; a test over 60 s does not belong in the suite."""
    at = AppTest.from_file(APP, default_timeout=scaled(120))
    at.run()
    at.button(key=f"explore.preset.{ui_state.PAPER}").click().run()
    ss = at.session_state
    assert ss["explore.dataset"] == "mnist" and ss["explore.epochs"] == 50 and ss["explore.famount"] == 1000
    assert ss["explore.method"] == "certified_newton" and ss["explore.p.certified_newton.lam"] == 0.01
    at.selectbox(key="explore.dataset").set_value("digits").run()
    at.number_input(key="explore.famount").set_value(700).run()
    assert ss["explore.epochs"] == 50 and ss["explore.p.certified_newton.lam"] == 0.01  # the preset's, kept
    at.button(key="FormSubmitter:explore.form-Run").click().run()
    _poll(at, lambda a: any(s.value.startswith("Results") for s in a.subheader) or bool(a.error), timeout=600)
    assert not _errors(at), _errors(at)
    tone, text = _verdict(at)
    # Both fail — it does not forget and it is not certified: red under the one colour rule (issue 20).
    assert tone == "error" and ("still remembers" in text or "Does not forget" in text), text
    assert "**Certified?** No — λ + λ_min > 0" in text


def test_engine_error_is_one_line_not_a_traceback():
    at = _app()
    at.selectbox(key="explore.fkind").set_value("indices").run()
    at.text_input(key="explore.findices").set_value("1,99999").run()
    at.selectbox(key="explore.method").set_value("retrain").run()
    at.button(key="FormSubmitter:explore.form-Run").click().run()
    _poll(at, lambda a: bool(a.error))
    assert not at.exception
    message = at.error[0].value
    assert "index 99999 is out of range" in message and "\n" not in message and "Traceback" not in message


# -- the UI-free state helpers --------------------------------------------------------------------------------


def test_query_round_trip():
    cfg = ui_state.UIConfig(dataset="mnist", model="mlp", hidden=(64, 16), forget="class-fraction:3:0.5",
                            method="retrain", params={"seed_offset": 2, "epochs": None}, seed=4, epochs=9,
                            norm_bound=None, weight_decay=1e-3)
    parsed, _, warnings = ui_state.from_query(ui_state.to_query(cfg))
    assert warnings == []
    assert parsed == cfg


def test_training_recipe_round_trips_through_the_url():
    cfg = ui_state.UIConfig(model="logreg", method="retrain", optimizer="lbfgs", grad_tol=2.5e-6, max_iter=321)
    query = ui_state.to_query(cfg)
    assert (query["optimizer"], query["grad_tol"], query["max_iter"]) == ("lbfgs", "2.5e-06", "321")
    parsed, _, warnings = ui_state.from_query(query)
    assert warnings == [] and parsed == cfg
    run_config = parsed.to_run_config()
    assert (run_config.train.optimizer, run_config.train.grad_tol, run_config.train.max_iter) == ("lbfgs", 2.5e-6, 321)
    no_tol, _, warnings = ui_state.from_query(ui_state.to_query(ui_state.UIConfig(method="retrain", grad_tol=None)))
    assert warnings == [] and no_tol.grad_tol is None and no_tol.optimizer == "auto"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("optimizer", "foo", "optimizer='foo' is not valid: choose one of auto, adam, sgd, lbfgs, gd, noisy_gd — "
                             "using the default auto"),
        ("grad_tol", "-1", "grad_tol='-1' is not valid: expected a number in (0, 1000] or 'none' — using the "
                           "default none"),
        ("grad_tol", "abc", "grad_tol='abc' is not valid"),
        ("max_iter", "2.5", "max_iter='2.5' is not valid: expected an integer in [0, 100000]"),
    ],
)
def test_bad_training_recipe_in_the_url_warns_once_and_falls_back(key, value, message):
    base = ui_state.UIConfig(method="retrain")
    parsed, _, warnings = ui_state.from_query({"method": "retrain", key: value}, base=base)
    assert len(warnings) == 1 and warnings[0].startswith(message), warnings
    assert getattr(parsed, key) == getattr(base, key)


def test_training_recipe_deep_link_fills_the_widgets():
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update({"model": "logreg", "method": "retrain", "optimizer": "lbfgs", "grad_tol": "1e-06",
                            "max_iter": "40", "wd": "0.005"})
    at.run()
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    ss = at.session_state
    assert ss["explore.optimizer"] == "lbfgs" and ss["explore.use_tol"] is True
    assert ss["explore.grad_tol"] == pytest.approx(1e-6) and ss["explore.max_iter"] == 40
    assert at.query_params["grad_tol"] in ("1e-06", ["1e-06"])  # and the URL is rewritten with it

    bad = AppTest.from_file(APP, default_timeout=60)
    bad.query_params.update({"optimizer": "foo", "grad_tol": "-1"})
    bad.run()
    assert not bad.exception
    warnings = [visible(w.value) for w in bad.warning]
    assert sum(w.startswith("optimizer='foo' is not valid") for w in warnings) == 1, warnings
    assert sum(w.startswith("grad_tol='-1' is not valid") for w in warnings) == 1, warnings
    assert bad.session_state["explore.optimizer"] == "auto" and bad.session_state["explore.use_tol"] is False


def test_every_preset_validates():
    from unlearn_core.pipeline import validate_config

    for name in ui_state.PRESETS:
        validate_config(ui_state.preset(name).to_run_config())


# -- Compare, Sequential, Sensitivity: a real (tiny) experiment each ----------------------------------------------


def test_reference_code_form_is_shown_as_not_certified():
    """A deep link to the reference code's step (reg_form=official, its σ = 0.001) runs and says, in the UI, that
    the bound does not cover it — never "certified"."""
    at = AppTest.from_file(APP, default_timeout=scaled(60))
    at.query_params.update({"dataset": "digits", "model": "mlp", "hidden": "16", "epochs": "3",
                            "forget": "random:0.1", "method": "certified_newton", "p.reg_form": "official",
                            "p.sigma": "0.001", "p.depth": "100", "p.reps": "2"})
    at.run()
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    assert at.session_state["explore.p.certified_newton.reg_form"] == "official"
    at.button(key="FormSubmitter:explore.form-Run").click().run()
    _poll(at, lambda a: any(s.value.startswith("Results") for s in a.subheader))
    assert not _errors(at), _errors(at)
    assert not at.success, "nothing may be labelled certified"
    assert any(w.value.startswith("**not certified** — the step is the paper's (local convex term λI) fails")
               for w in at.warning), [w.value for w in at.warning]
    assert any("reg_form='official'" in c.value and "does not cover this step" in c.value for c in at.caption)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Δ (sensitivity bound)"] == "∞" and _number(metrics["σ used"]) == pytest.approx(0.001)


def _tiny(at: AppTest, prefix: str) -> None:
    at.number_input(key=f"{prefix}.epochs").set_value(3)
    at.text_input(key=f"{prefix}.hidden").set_value("16").run()


def test_compare_page_runs_an_experiment():
    at = _app()
    at.switch_page("pages/compare.py").run()
    _tiny(at, "compare")
    at.multiselect(key="compare.methods").set_value(["finetune", "neggrad"]).run()
    at.checkbox(key="compare.relearn").uncheck()
    at.number_input(key="compare.p.finetune.epochs").set_value(2)  # each method runs with its own tab's settings
    at.button(key="FormSubmitter:compare.form-Run comparison").click().run()
    _poll(at, lambda a: any(s.value == "Results" for s in a.subheader))
    assert not _errors(at), _errors(at)
    table = at.dataframe[0].value
    assert list(table.index) == ["original", "retrained", "finetune", "neggrad"]
    assert table.columns[0] == "verdict" and table.loc["retrained", "verdict"] == "reference"
    assert at.query_params["p.finetune.epochs"] in ("2", ["2"])  # the link carries it
    from dashboard import common

    (stored,) = common.get_store().list()
    assert stored.card["experiment"]["options"]["params"]["finetune"]["epochs"] == 2
    assert at.dataframe[1].value.loc["retrained", "‖w − w_retrained‖"] == "0"  # "All columns"
    assert "MIA AUC" in table.columns
    assert len(at.get("plotly_chart")) == 4  # accuracy, time vs closeness, time, MIA
    # the experiment is in the history, and running it again reuses it
    at.button(key="FormSubmitter:compare.form-Run comparison").click().run()
    assert any("Reused the stored experiment" in i.value for i in at.info)
    # deleting it (as the Runs page's Delete button does) makes the next Run recompute, not reuse
    common.delete_runs(common.get_store().list())
    at.button(key="FormSubmitter:compare.form-Run comparison").click().run()
    assert not any("Reused the stored experiment" in i.value for i in at.info)
    _poll(at, lambda a: any(s.value == "Results" for s in a.subheader))
    assert len(common.get_store().list()) == 1  # computed and stored again
    at.switch_page("pages/runs.py").run()
    assert not at.exception and not _errors(at)
    assert len(at.get("plotly_chart")) == 4  # reopened with the experiment's figures


def test_compare_page_draws_the_privacy_utility_frontier():
    at = _app()
    at.switch_page("pages/compare.py").run()
    _tiny(at, "compare")
    at.multiselect(key="frontier.methods").set_value(["noisy_finetune"])
    at.text_input(key="frontier.eps").set_value("1,10")
    at.button(key="FormSubmitter:frontier.form-Run frontier").click().run()
    _poll(at, lambda a: any(s.value == "Frontier" for s in a.subheader))
    assert not _errors(at), _errors(at)
    assert any(m.value.startswith("- **noisy_finetune**:") for m in at.markdown)
    assert len(at.get("plotly_chart")) == 1
    assert _q(at, "fmethods") == "noisy_finetune" and _q(at, "eps") == "1,10"
    from dashboard import common

    (stored,) = common.get_store().list()
    assert stored.kind == "frontier" and stored.card["experiment"]["options"]["epsilons"] == [1.0, 10.0]
    at.switch_page("pages/runs.py").run()
    assert not at.exception and not _errors(at) and len(at.get("plotly_chart")) == 1  # reopened with its figure


def test_sequential_page_runs_requests():
    at = _app()
    at.switch_page("pages/sequential.py").run()
    at.button(key="sequential.preset.Quick demo").click().run()
    assert at.session_state["sequential.p.certified_newton.chain_from"] == "noiseless"
    _tiny(at, "sequential")
    # The residual bound needs only λ + λ_min > 0 (λ = 1 here); the LiSSA lemma also needs positive-definite sampled
    # Hessians, which this small MLP does not have at every request (Δ = ∞ there, honestly).
    at.selectbox(key="sequential.p.certified_newton.lissa_bound").set_value("a_posteriori")
    at.slider(key="sequential.requests").set_value(3)
    at.button(key="FormSubmitter:sequential.form-Run requests").click().run()
    _poll(at, lambda a: any(s.value == "Per request" for s in a.subheader))
    assert not _errors(at), _errors(at)
    table = at.dataframe[0].value
    assert list(table.index) == ["1", "2", "3"]
    assert all(float(v.replace(",", "")) > 0 for v in table["Δ bound"])  # λ = 1: a finite bound at every request
    assert len(at.get("plotly_chart")) == 1


def test_sensitivity_page_runs_a_sweep():
    at = _open("pages/sensitivity.py", {"method": "certified_newton", "sweep": "lam"})
    at.button(key="sensitivity.preset.Quick demo").click().run()
    _tiny(at, "sensitivity")
    at.number_input(key="sensitivity.lo.lam").set_value(1.0)
    at.number_input(key="sensitivity.hi.lam").set_value(10.0)
    at.slider(key="sensitivity.n").set_value(2)
    at.button(key="FormSubmitter:sensitivity.form-Run sweep").click().run()
    _poll(at, lambda a: any(s.value == "Results" for s in a.subheader))
    assert not _errors(at), _errors(at)
    table = at.dataframe[0].value
    assert list(table.index) == ["1", "10"]
    bounds = [float(v.replace(",", "")) for v in table["Δ bound"]]
    assert bounds[1] < bounds[0]  # a larger λ gives a smaller bound (Zhang et al. Fig. 4)
    assert len(at.get("plotly_chart")) == 2  # the sweep and bound vs actual


# -- deep links carry every setting; forms do not submit on Enter ---------------------------------------------------


def _open(page: str, query: dict[str, str]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(query)
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def _q(at: AppTest, key: str) -> str:
    value = at.query_params[key]
    return value[-1] if isinstance(value, list) else value


def test_compare_deep_link_carries_methods_seeds_and_each_methods_hyperparameters():
    at = _open("pages/compare.py", {"methods": "certified_newton,finetune", "p.certified_newton.lam": "1",
                                    "p.finetune.epochs": "2", "seeds": "2", "mia": "false", "relearn": "false"})
    assert not at.warning, [w.value for w in at.warning]
    ss = at.session_state
    assert ss["compare.methods"] == ["certified_newton", "finetune"] and ss["compare.nseeds"] == 2
    assert ss["compare.mia"] is False and ss["compare.relearn"] is False
    assert ss["compare.p.certified_newton.lam"] == 1.0 and ss["compare.p.finetune.epochs"] == 2
    assert (_q(at, "methods"), _q(at, "seeds"), _q(at, "mia")) == ("certified_newton,finetune", "2", "false")
    assert _q(at, "p.certified_newton.lam") == "1" and _q(at, "p.finetune.epochs") == "2"
    # The bug of issue 12: Explore's link (method=certified_newton&p.lam=1) opened on Compare ran λ = 0.01.
    carried = _open("pages/compare.py", {"method": "certified_newton", "p.lam": "1"})
    assert carried.session_state["compare.p.certified_newton.lam"] == 1.0
    bad = _open("pages/compare.py", {"p.finetune.epochs": "-3"})
    assert any(w.value.startswith("epochs=") for w in bad.warning), [w.value for w in bad.warning]


def test_a_preset_on_compare_sets_every_methods_hyperparameters():
    at = _open("pages/compare.py", {})
    at.button(key=f"compare.preset.{ui_state.VACUOUS}").click().run()
    assert at.session_state["compare.p.certified_newton.lam"] == 1.0  # the preset's, not the default 0.01
    assert at.session_state["compare.p.certified_newton.G"] == 1.0


def test_sequential_deep_link_carries_k_and_its_options():
    at = _open("pages/sequential.py", {"method": "certified_newton", "requests": "7", "each": "true", "seeds": "2"})
    assert not at.warning, [w.value for w in at.warning]
    ss = at.session_state
    assert (ss["sequential.requests"], ss["sequential.each"], ss["sequential.nseeds"]) == (7, True, 2)
    assert (_q(at, "requests"), _q(at, "each"), _q(at, "seeds")) == ("7", "true", "2")
    bad = _open("pages/sequential.py", {"requests": "99"})
    assert any(visible(w.value).startswith("requests='99' is not valid: expected an integer in [2, 20]")
               for w in bad.warning)


def test_sensitivity_deep_link_carries_the_sweep_and_warns_about_a_method_it_cannot_sweep():
    at = _open("pages/sensitivity.py", {"method": "certified_newton", "sweep": "epsilon", "from": "0.5", "to": "8",
                                        "n": "3", "seeds": "2"})
    assert not at.warning, [w.value for w in at.warning]
    ss = at.session_state
    assert ss["sensitivity.sweep"] == "epsilon" and ss["sensitivity.n"] == 3 and ss["sensitivity.nseeds"] == 2
    assert ss["sensitivity.lo.epsilon"] == 0.5 and ss["sensitivity.hi.epsilon"] == 8.0
    assert (_q(at, "sweep"), _q(at, "from"), _q(at, "to"), _q(at, "n")) == ("epsilon", "0.5", "8", "3")
    # /sensitivity?method=retrain used to switch method silently
    retrain = _open("pages/sensitivity.py", {"method": "retrain"})
    warnings = [w.value for w in retrain.warning]
    assert any(w.startswith("method='retrain' cannot be used here: it has no λ, ε or δ to sweep — using ")
               for w in warnings), warnings


def test_a_preset_link_loads_the_preset():
    at = _open("pages/explore.py", {"preset": ui_state.preset_slug(ui_state.CERTIFIED_AND_USEFUL)})
    assert not at.warning, [w.value for w in at.warning]
    assert at.session_state["explore.method"] == "noisy_finetune" and at.session_state["explore.famount"] == 0.1
    bad = _open("pages/explore.py", {"preset": "nope"})
    assert any(w.value.startswith("preset='nope' is not valid: choose one of quick-demo") for w in bad.warning)


def _forms(node) -> list:
    found = []
    proto = getattr(node, "proto", None)
    if proto is not None and hasattr(proto, "HasField") and "form" in proto.DESCRIPTOR.fields_by_name \
            and proto.HasField("form"):
        found.append(proto.form)
    for child in (getattr(node, "children", None) or {}).values():
        found += _forms(child)
    return found


@pytest.mark.parametrize("page", [p for p in PAGES if p not in ("pages/learn.py", "pages/runs.py")])
def test_enter_in_a_field_does_not_start_a_run(page):
    at = _open(page, {})
    forms = _forms(at.main)
    assert forms and all(not f.enter_to_submit for f in forms), forms


def test_the_form_starts_with_the_basic_hyperparameters():
    """The landing form shows the method's basic hyperparameters with human labels (λ, ε, δ as symbols) and keeps
    the rest in the Advanced expander; the widget keys keep the schema's names."""
    at = _open("pages/explore.py", {"method": "certified_newton"})
    (advanced,) = [e for e in at.expander if e.label.startswith("Advanced")]
    inside = {w.key for kind in ("number_input", "selectbox", "slider", "checkbox", "radio", "text_input")
              for w in getattr(advanced, kind)}
    schema = get_unlearner("certified_newton").schema
    basic = {f"explore.p.certified_newton.{p.name}" for p in schema if p.level == "basic"}
    assert basic and not basic & inside
    assert {f"explore.p.certified_newton.{p.name}" for p in schema if p.level == "advanced"} <= inside
    labels = {w.label for w in at.number_input} | {w.label for w in at.selectbox}
    assert {"λ — local convex term", "ε — privacy budget", "δ — failure probability"} <= labels


# -- every registered method, through the product ----------------------------------------------------------------


@pytest.mark.parametrize("method", [cls.name for cls in list_unlearners()])
def test_every_method_runs_from_a_deep_link_and_reopens_on_runs(method):
    """Issue #11: a deep link to any registered method on a tiny digits MLP runs on Explore and renders with no
    exception and no error box; its certificate card never says "certified" next to an infinite Δ or σ; the stored
    run reopens on the Runs page the same way."""
    cls = get_unlearner(method)
    query = {"dataset": "digits", "model": "mlp", "hidden": "16", "epochs": "3", "forget": "random:0.1",
             "method": method, **{f"p.{k}": str(v) for k, v in cls.demo_params.items()}}
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(query)
    at.run()
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    at.button(key="FormSubmitter:explore.form-Run").click().run()
    _poll(at, lambda a: any(s.value.startswith("Results") for s in a.subheader) or bool(a.error))
    assert not at.exception and not _errors(at), _errors(at)
    _assert_certificate_card_is_honest(at, cls.family)
    from dashboard import common

    (stored,) = common.get_store().list()
    assert stored.method == method
    at.switch_page("pages/runs.py").run()
    assert not at.exception and not _errors(at), _errors(at)
    assert any(m.label == "σ used" for m in at.metric) == (cls.family == "certified")
    _assert_certificate_card_is_honest(at, cls.family)


def _certificate_boxes(at: AppTest) -> list[str]:
    """The certificate card's status boxes that say "certified" (the verdict's boxes are coloured by the verdict)."""
    return [s.value for s in at.success if s.value.startswith("**certified")] + [
        i.value for i in at.info if i.value.startswith("**certified under assumptions")]


def _assert_certificate_card_is_honest(at: AppTest, family: str) -> None:
    metrics = {m.label: m.value for m in at.metric}
    if family != "certified":
        assert "σ used" not in metrics and not _certificate_boxes(at)
        return
    certified = _certificate_boxes(at)
    if certified:
        assert metrics["σ required"] != "∞" and metrics["Δ (sensitivity bound)"] != "∞", metrics
    else:
        assert any(w.value.startswith(("**not certified**", "**not certified by the bound**")) for w in at.warning)


def test_accuracy_table_and_html_report_read_cleanly():
    """Issue 12: the accuracy table showed "None" and a destroyed model's loss as 3.15e+21, and the HTML report had
    no verdict. The display formats accuracies in %, losses above 1,000 as "> 1,000", missing values as "—"; the
    report opens with the verdict, then the accuracy table and the certificate."""
    from dashboard import downloads, results
    from unlearn_core.certificate import Certificate, Condition
    from unlearn_core.diagnostics import Diagnostics, SplitAccuracy

    def acc(forget: float, test: float, loss: float) -> dict:
        return {"acc_forget": forget, "acc_retain": 0.97, "acc_test": test, "loss_forget": loss, "loss_retain": loss,
                "loss_test": loss}

    cert = Certificate(method="certified_newton", theorem="t", epsilon=1.0, delta=1e-5, delta_guaranteed=1e-5,
                       accountant="a", sigma_required=2.5e6, sigma_used=2.5e6, epsilon_certified=1.0,
                       sensitivity=6.6e5, conditions=[Condition("noise", "noise σ_used ≥ σ_required", "ok", "ok",
                                                                True)])
    card = {
        "method": {"name": "certified_newton", "family": "certified"},
        "data": {"n_forget": 144, "n_test": 360, "num_classes": 10},
        "models": {"original": acc(0.96, 0.95, 0.2), "retrained": acc(0.94, 0.94, 0.2),
                   "unlearned": acc(0.1, 0.11, 3.15e21)},
        "distance": {"unlearned_to_retrained": 1.5e8, "original_to_retrained": 1.0},
        "timing_s": {"train": 0.5, "retrain": 0.5, "unlearn": 1.6},
        "certificate": cert.to_dict(),
        "diagnostics": Diagnostics(noiseless_accuracy=SplitAccuracy(forget=0.95, retain=0.97, test=0.95),
                                   approx_error=1.0).to_dict(),
    }
    shown = results.accuracy_frame(card)  # what st.dataframe gets on Explore and Runs
    assert list(shown.loc["unlearned", ["loss forget", "loss test"]]) == ["> 1,000", "> 1,000"]
    assert list(shown.loc["unlearned before noise", ["loss forget", "loss retain", "loss test"]]) == ["—"] * 3
    assert shown.loc["unlearned", "acc test"] == pytest.approx(0.11)  # accuracies stay numbers (shown in %)
    html = results.accuracy_display(results.accuracy_table(card)).to_html()
    assert "None" not in html and "nan" not in html.lower() and "e+21" not in html
    assert "> 1,000" in html and "11.0 %" in html and "—" in html  # the estimate before noise has no loss
    report = downloads.html_report("run", card, {})
    body = report.split("<h2>Run card</h2>")[0]
    assert body.index("<h2>Verdict</h2>") < body.index("<h2>Accuracy</h2>") < body.index("<h2>Certificate</h2>")
    assert "destroyed the model: test accuracy 11.0 % vs 94.0 % retrained" in body
    assert "e+21" not in body and "None" not in body
