"""Figures on small hand-made DataFrames and run cards: traces, axis titles, the retrained reference, direction."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import pytest

from unlearn_core import plots
from unlearn_core.certificate import Certificate
from unlearn_core.diagnostics import Diagnostics, LissaTrace, SplitAccuracy

CLOSER = plots.CLOSER


def _ref_lines(fig: go.Figure) -> list:
    return [s for s in fig.layout.shapes if s.line.dash == "dash"]


def _title(fig: go.Figure) -> str:
    """The figure's title and subtitle as one line of text (the title is split in two and wrapped)."""
    t = fig.layout.title
    return f"{t.text} — {t.subtitle.text or ''}".replace("<br>", " ")


def _compare_df() -> pd.DataFrame:
    rows = []
    for seed in (0, 1):
        for method, acc, t in (("original", 0.95, 10.0), ("retrained", 0.80, 9.0), ("certified_newton", 0.82, 1.0),
                               ("finetune", 0.90, 2.0)):
            rows.append({"seed": seed, "method": method, "acc_forget": acc + 0.01 * seed, "acc_retain": 0.97,
                         "acc_test": 0.9, "time_s": t, "mia_loss_auc": 0.5 + (acc - 0.8),
                         "mia_posterior_auc": None if method == "original" else 0.55,
                         "mia_svc_forget_nonmember_rate": 0.3})
    return pd.DataFrame(rows)


def test_compare_figures() -> None:
    df = _compare_df()
    fig = plots.compare_figure(df)
    assert len(fig.data) == 3 and list(fig.data[0].x) == ["original", "certified_newton", "finetune"]
    assert fig.data[0].y[1] == pytest.approx(0.825)  # mean over the two seeds
    assert len(_ref_lines(fig)) == 3
    assert "closer to retrained is better" in _title(fig)
    assert fig.layout.yaxis.title.text == "accuracy" and fig.layout.yaxis.tickformat == ".0%"
    t = plots.compare_time_figure(df)
    assert list(t.data[0].x) == ["certified_newton", "finetune"]
    assert t.layout.yaxis.type == "log" and "s" in t.layout.yaxis.title.text
    assert _ref_lines(t)[0].y0 == pytest.approx(9.0)
    m = plots.compare_mia_figure(df)
    assert len(m.data) == 3 and len(_ref_lines(m)) == 3
    assert "original" not in list(m.data[1].x)  # no posterior-difference score for the original itself
    assert "over-unlearning" in _title(m)


def test_sequential_and_sensitivity_figures() -> None:
    seq = pd.DataFrame({"seed": [0, 0, 0], "step": [1, 2, 3], "grad_norm": [1.0, 0.5, 0.25],
                        "delta_bound": [10.0, 10.0, 10.0], "approx_error": [None, None, 0.3],
                        "acc_forget": [0.9] * 3, "acc_retain": [0.95] * 3, "acc_test": [0.9, 0.89, 0.88],
                        "acc_test_retrained": [0.87] * 3})
    fig = plots.sequential_figure(seq)
    names = [tr.name for tr in fig.data]
    assert {"gradient norm", "bound Δ", "actual error", "test accuracy"} <= set(names)
    assert fig.layout.yaxis.type == "log" and fig.layout.xaxis.title.text == "request k"
    assert len(_ref_lines(fig)) == 1 and _ref_lines(fig)[0].y0 == pytest.approx(0.87)
    sens = pd.DataFrame({"seed": [0, 0], "param": ["lam", "lam"], "value": [1.0, 10.0], "delta_bound": [50.0, 45.0],
                         "sigma_required": [200.0, 180.0], "approx_error": [0.5, 0.4], "dist_to_retrained": [9e3, 8e3],
                         "acc_forget": [0.2, 0.2], "acc_retain": [0.2, 0.2], "acc_test": [0.2, 0.2],
                         "acc_test_retrained": [0.9, 0.9]})
    fig = plots.sensitivity_figure(sens)
    assert fig.layout.xaxis.title.text == "lam (log scale)" and fig.layout.xaxis.type == "log"
    assert len(_ref_lines(fig)) == 1
    bva = plots.bound_vs_actual_figure(sens)
    assert list(bva.data[0].x) == [0.5, 0.4] and list(bva.data[0].y) == [50.0, 45.0]
    assert bva.data[1].name == "bound = actual"


def test_budget_figure() -> None:
    df = pd.DataFrame({"seed": [0, 1, 0, 1], "method": ["noisy_finetune"] * 2 + ["retrain"] * 2,
                       "budget_epochs": [1, 1, 1, 1], "acc_test": [0.8, 0.9, 0.5, 0.7]})
    fig = plots.budget_figure(df)
    assert [tr.name for tr in fig.data] == ["noisy_finetune", "retrain (reference)"]
    assert fig.data[1].line.dash == "dash"
    assert fig.data[0].error_y.array[0] == pytest.approx(1.96 * 0.0707107 / 2**0.5, rel=1e-4)
    assert fig.layout.xaxis.title.text.startswith("unlearning budget")


def test_audit_figures() -> None:
    audit = pd.DataFrame({"seed": [0, 0], "method": ["certified_newton"] * 2, "sigma_factor": [1.0, 1e-10],
                          "epsilon": [1.0, 1.0], "epsilon_certified": [1.0, 1e18], "epsilon_lower": [0.0, 1.6],
                          "epsilon_lower_cap": [1.6, 1.6], "pe_epsilon_median": [1.3, 4.0],
                          "pe_epsilon_median_null": [1.3, 1.3], "lira_auc": [0.5, 0.6],
                          "lira_auc_reference": [0.5, 0.5]})
    fig = plots.audit_epsilon_figure(audit)
    names = [tr.name for tr in fig.data]
    assert names == ["ε certified at this σ", "ε lower bound (audit, Clopper–Pearson)", "claimed ε (target)",
                     "largest ε these runs can show"]
    top = fig.layout.yaxis.range[1]
    assert top == pytest.approx(1.3 * 1.6)  # just above the runs' cap: the 1e18 bar is clipped, its value written
    assert fig.data[0].y[1] == pytest.approx(top) and fig.data[0].text[1] == "1e+18"
    assert list(fig.data[1].y) == [0.0, 1.6] and list(fig.data[0].x) == ["certified_newton<br>σ × 1",
                                                                           "certified_newton<br>σ × 1e-10"]
    assert plots.has_lira(audit) and not plots.has_lira(audit.drop(columns="lira_auc"))
    attacks = plots.audit_attacks_figure(audit)
    assert [tr.name for tr in attacks.data] == ["unlearned vs noisy retrain (ε̂)", "noisy retrain vs itself (ε̂)",
                                                "unlearned vs noisy retrain (AUC)", "noisy retrain vs itself (AUC)"]
    assert list(attacks.data[0].y) == [1.3, 4.0] and attacks.data[1].marker.color == plots.COLOURS["retrained"]
    assert set(plots.experiment_figures("audit", audit)) == {"Audit", "Per-example ε and LiRA"}


def test_forget_size_figure() -> None:
    df = pd.DataFrame({"seed": [0] * 4, "n_forget": [10, 10, 50, 50], "method": ["retrained", "m"] * 2,
                       "time_s": [2.0, 0.1, 2.0, 0.3], "acc_test": [0.9, 0.8, 0.9, 0.7],
                       "sigma_required": [None, 1.0, None, 4.0]})
    fig = plots.forget_size_figure(df)
    ref = [tr for tr in fig.data if tr.name == "retraining (reference)"]
    assert len(ref) == 2 and all(tr.line.dash == "dash" for tr in ref)  # time and accuracy references
    sigma = [tr for tr in fig.data if tr.xaxis == "x3"]
    assert len(sigma) == 1 and list(sigma[0].y) == [1.0, 4.0]  # only the certified method has a σ
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis3.type == "log"
    assert list(plots.experiment_figures("forget_size", df)) == ["Forget-set size"]


def _lissa() -> LissaTrace:
    return LissaTrace(scale=1000.0, depth=3, reps=2, batch_size=10, num_hvps=6, rep_spread=0.1,
                      hvp_backend="mlp", ihvp_norm=2.6, norm_steps=[1, 2, 3],
                      norms=[[1.0, 2.0], [1.5, 2.5], [1.6, 2.6]])


def _certificate(sensitivity: float | None = 44.0) -> dict:
    """A run card's certificate, built through the typed record (the one shape every page reads)."""
    return Certificate(method="certified_newton", theorem="t", epsilon=1.0, delta=1e-5, delta_guaranteed=1e-5,
                       accountant="analytic", sigma_required=164.0, sigma_used=164.0, epsilon_certified=1.0,
                       sensitivity=sensitivity).to_dict()


def _card() -> dict:
    m = {"acc_forget": 0.9, "acc_retain": 0.95, "acc_test": 0.9}
    return {
        "models": {"original": m, "retrained": {**m, "acc_forget": 0.85}, "unlearned": m},
        "distance": {"unlearned_to_retrained": 0.7},
        "certificate": _certificate(),
        "diagnostics": Diagnostics(approx_error=0.5, lissa=_lissa()).to_dict(),
    }


def test_card_figures() -> None:
    card = _card()
    fig = plots.accuracy_bars(card)
    assert [tr.name for tr in fig.data] == ["original", "retrained", "unlearned"]
    assert len(_ref_lines(fig)) == 3 and _ref_lines(fig)[0].y0 == pytest.approx(0.85)
    fig = plots.lissa_convergence(card)
    assert len(fig.data) == 2 and list(fig.data[1].y) == [2.0, 2.5, 2.6]
    assert fig.layout.yaxis.type == "log" and fig.layout.xaxis.title.text == "LiSSA step t"
    fig = plots.bound_vs_actual(card)
    assert list(fig.data[0].y) == [44.0, 0.5]
    assert fig.layout.yaxis.type == "log" and "ℓ2" in fig.layout.yaxis.title.text
    assert plots.bound_vs_actual({**card, "certificate": None}) is None  # an uncertified method has no bound
    assert plots.bound_vs_actual({**card, "certificate": _certificate(math.inf)}) is None  # Δ = ∞
    assert plots.bound_vs_actual({**card, "certificate": _certificate(None)}) is None  # no single sensitivity


def _full_card() -> dict:
    card = _card()
    card["timing_s"] = {"train": 2.0, "retrain": 1.8, "unlearn": 0.1}
    diag = Diagnostics(approx_error=0.5, lissa=_lissa(), grad_norm=0.4, grad_norm_after=0.05, retrained_grad_norm=0.02,
                       noiseless_accuracy=SplitAccuracy(forget=0.86, retain=0.96, test=0.91))
    diag.add_curve("finetune", 1, loss=0.9)
    diag.add_curve("finetune", 2, loss=0.5)
    card["diagnostics"] = diag.to_dict()
    mia = {"loss_auc": 0.55, "posterior_auc": None, "svc_forget_nonmember_rate": 0.3, "loss_tpr_at_1fpr": 0.01}
    card["mia"] = {"original": mia, "retrained": {**mia, "loss_auc": 0.51, "posterior_auc": 0.5},
                   "unlearned": {**mia, "loss_auc": 0.53, "posterior_auc": 0.56}, "convention": "text"}
    return card


def test_accuracy_bars_show_the_noise_free_estimate_when_reported() -> None:
    fig = plots.accuracy_bars(_full_card())
    names = [tr.name for tr in fig.data]
    assert names == ["original", "retrained", "unlearned before noise", "unlearned"]
    assert list(fig.data[2].y) == [0.86, 0.96, 0.91]
    assert fig.layout.xaxis.title.text == "evaluation set" and fig.layout.yaxis.title.text == "accuracy"
    assert plots.accuracy_bars({"models": {}}) is None


def test_time_bars() -> None:
    fig = plots.time_bars(_full_card())
    assert list(fig.data[0].x) == ["train", "retrain", "unlearn"] and list(fig.data[0].y) == [2.0, 1.8, 0.1]
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis.title.text == "wall time (s, log scale)"
    assert _ref_lines(fig)[0].y0 == pytest.approx(1.8)  # retraining is the reference
    assert "lower is better" in _title(fig)
    assert plots.time_bars({"timing_s": {"train": 1.0}}) is None  # nothing was unlearned


def test_gradient_norms() -> None:
    fig = plots.gradient_norms(_full_card())
    assert list(fig.data[0].x) == ["before (w*)", "after (w̃)", "retrained (w̃*)"]
    assert list(fig.data[0].y) == [0.4, 0.05, 0.02]
    assert _ref_lines(fig)[0].y0 == pytest.approx(0.02)
    assert fig.layout.yaxis.type == "log" and "‖∇L(w, D_r)‖" in fig.layout.yaxis.title.text
    assert CLOSER in _title(fig)
    only_before = plots.gradient_norms({"diagnostics": Diagnostics(grad_norm=0.3).to_dict()})
    assert list(only_before.data[0].y) == [0.3] and not _ref_lines(only_before)
    assert plots.gradient_norms({"diagnostics": {}}) is None


def test_lissa_convergence_is_none_without_a_curve() -> None:
    exact = Diagnostics(details={"solve": [{"iterations": 3}]})
    assert plots.lissa_convergence({"diagnostics": exact.to_dict()}) is None
    assert plots.lissa_convergence({}) is None


def test_mia_bars() -> None:
    fig = plots.mia_bars(_full_card())
    assert [tr.name for tr in fig.data] == ["original", "retrained", "unlearned"]
    # the original has no posterior-difference score (it is the attack's own reference): two bars, not three
    assert list(fig.data[0].x) == ["loss MIA AUC", "SVC: forget called non-member"]
    assert list(fig.data[2].y) == [0.53, 0.56, 0.3]
    assert [s.y0 for s in _ref_lines(fig)] == [0.51, 0.5, 0.3]  # one dashed retrained target per attack
    assert fig.layout.yaxis.title.text == "attack score (0–1)" and CLOSER in _title(fig)
    # the missing bar is explained where it would be
    assert any(a.text == "original:<br>n/a" and a.x == "posterior-difference AUC" for a in fig.layout.annotations)
    assert plots.mia_bars(_card()) is None  # no MIA block in the card


def test_card_figures_registry_skips_missing_data() -> None:
    shown = {t for t, make in plots.CARD_FIGURES.items() if make(_full_card()) is not None}
    assert shown == set(plots.CARD_FIGURES)
    bare = {"models": _card()["models"], "timing_s": {"unlearn": 0.1}, "diagnostics": Diagnostics().to_dict()}
    assert {t for t, make in plots.CARD_FIGURES.items() if make(bare) is not None} == {"Accuracy", "Time"}


def test_cards_tradeoff_and_accuracy() -> None:
    a, b = _full_card(), _full_card()
    b["timing_s"] = {**b["timing_s"], "unlearn": 0.5}
    b["distance"] = {"unlearned_to_retrained": 0.2}
    b["models"] = {**b["models"], "unlearned": {**b["models"]["unlearned"], "acc_test": 0.87}}
    fig = plots.cards_tradeoff([a, b], ["A", "B"])
    # the test-accuracy gap to retraining in points (not the parameter distance, which a noisy release inflates)
    assert list(fig.data[0].x) == [0.1, 0.5] and list(fig.data[0].y) == pytest.approx([0.0, 3.0])
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis.title.text.startswith("unlearning wall time (s")
    assert _ref_lines(fig)[0].x0 == pytest.approx(1.8)  # retraining time
    fig = plots.cards_accuracy([a, b], ["A", "B"])
    assert len(fig.data) == 3 and list(fig.data[0].x) == ["A", "B"]
    assert [s.y0 for s in _ref_lines(fig)] == [0.85, 0.95, 0.9]
    assert plots.cards_tradeoff([{"models": {}}], ["x"]) is None and plots.cards_accuracy([{}], ["x"]) is None


def test_compare_tradeoff_figure() -> None:
    df = _compare_df().assign(dist_to_retrained=lambda d: d["method"].map(
        {"original": 2.0, "retrained": 0.0, "certified_newton": 0.5, "finetune": 1.0}))
    fig = plots.compare_tradeoff_figure(df)
    assert list(fig.data[0].text) == ["certified_newton", "finetune"]
    assert list(fig.data[0].x) == [1.0, 2.0] and list(fig.data[0].y) == [0.5, 1.0]
    assert _ref_lines(fig)[0].x0 == pytest.approx(9.0)
    assert fig.layout.yaxis.title.text.startswith("‖w − w_retrained‖") and "lower-left" in _title(fig)


def test_experiment_figures_leave_out_charts_without_data() -> None:
    """What the pages, the Runs page and ``--html`` draw: every applicable chart, none drawn empty."""
    df = _compare_df().assign(dist_to_retrained=1.0)
    assert list(plots.experiment_figures("compare", df)) == ["Accuracy", "Time vs closeness", "Time",
                                                            "Membership inference"]
    no_mia = df.drop(columns=[c for c in df.columns if c.startswith("mia_")])
    assert "Membership inference" not in plots.experiment_figures("compare", no_mia)
    sens = pd.DataFrame({"seed": [0, 0], "param": ["lam", "lam"], "value": [0.01, 1.0], "delta_bound": [None, 45.0],
                         "sigma_required": [None, 180.0], "approx_error": [0.5, 0.4], "dist_to_retrained": [9e3, 8e3],
                         "acc_forget": [0.2, 0.2], "acc_retain": [0.2, 0.2], "acc_test": [0.2, 0.2],
                         "acc_test_retrained": [0.9, 0.9]})
    assert list(plots.experiment_figures("sensitivity", sens)) == ["Sweep", "Bound vs actual"]
    unbounded = sens.assign(delta_bound=[None, None])  # Δ = ∞ everywhere (λ + λ_min ≤ 0): nothing to plot
    assert list(plots.experiment_figures("sensitivity", unbounded)) == ["Sweep"]
    assert list(plots.experiment_figures("sensitivity", sens.drop(columns=["approx_error"]))) == ["Sweep"]


def test_step_curves_draw_every_metric_and_phase() -> None:
    diag = Diagnostics()
    for t in (1, 2, 3):
        diag.add_curve("noisy", t, grad_norm=1.0 / t, param_norm=2.0)
    diag.add_curve("finetune", 5, loss=0.3, grad_norm=float("nan"))  # non-finite values are skipped
    fig = plots.step_curves({"diagnostics": diag.to_dict()})
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["gradient norm", "‖w‖", "mini-batch loss"]
    assert (fig.data[0].name, list(fig.data[0].y)) == ("noisy", [1.0, 0.5, 1.0 / 3])
    assert plots.step_curves({"diagnostics": Diagnostics().to_dict()}) is None


# -- the chart defects of issue 12 --------------------------------------------------------------------------------


def _category_order(fig: go.Figure) -> list[str]:
    """The x categories in the order plotly draws them: the given array, else first seen over the traces."""
    axis = fig.layout.xaxis
    if axis.categoryorder == "array":
        return list(axis.categoryarray)
    order: list[str] = []
    for trace in fig.data:
        order += [x for x in trace.x if x not in order]
    return order


def test_mia_bars_reference_lines_sit_on_their_own_attack() -> None:
    """With the posterior-difference score missing from the first (original) trace, plotly would order the
    categories loss, SVC, posterior; the dashed retrained line of each attack must still sit on that attack."""
    card = _full_card()
    retrained = card["mia"]["retrained"]
    assert card["mia"]["original"]["posterior_auc"] is None  # the case of the bug
    fig = plots.mia_bars(card)
    order = _category_order(fig)
    label_to_key = {label: key for key, label in plots.MIA_SCORES.items()}
    for line in _ref_lines(fig):
        category = order[round((line.x0 + line.x1) / 2)]
        assert line.y0 == pytest.approx(retrained[label_to_key[category]]), (category, line.y0)


def test_reference_labels_on_log_axes_are_placed_in_log_units() -> None:
    """A label at y on a log axis is placed at log10(y) by plotly: 'retrain' at 18 s must be annotated at
    log10(18), not at 18 (which stretched the time axis to 10^18 s)."""
    card = _full_card()
    card["timing_s"] = {"train": 2.0, "retrain": 18.0, "unlearn": 0.1}
    fig = plots.time_bars(card)
    (label,) = [a for a in fig.layout.annotations if a.text == "retrain"]
    assert label.y == pytest.approx(math.log10(18.0)) and _ref_lines(fig)[0].y0 == pytest.approx(18.0)
    grad = plots.gradient_norms(_full_card())
    (label,) = [a for a in grad.layout.annotations if a.text == "retrained"]
    assert label.y == pytest.approx(math.log10(0.02))
    df = _compare_df().assign(dist_to_retrained=1.0)
    time_fig = plots.compare_time_figure(df)
    (label,) = [a for a in time_fig.layout.annotations if a.text.startswith("retrain")]
    assert label.y == pytest.approx(math.log10(9.0))
    trade = plots.compare_tradeoff_figure(df)
    (label,) = [a for a in trade.layout.annotations if a.text.startswith("retrain")]
    assert label.x == pytest.approx(math.log10(9.0)) and label.xref == "x"
    # a linear axis keeps data units
    acc = plots.compare_figure(df)
    assert all(a.y <= 1.05 for a in acc.layout.annotations if a.text == "retrained")


def test_titles_fit_and_subplot_titles_are_words() -> None:
    """Every title's first line is short (the rest goes to the subtitle, wrapped), and no subplot is titled with a
    raw column key such as svc_forget_nonmember_rate."""
    df = _compare_df().assign(dist_to_retrained=1.0)
    figures = [*plots.experiment_figures("compare", df).values(),
               *(make(_full_card()) for make in plots.CARD_FIGURES.values())]
    for fig in figures:
        for line in fig.layout.title.text.split("<br>"):
            assert len(line) <= plots.TITLE_CHARS, fig.layout.title.text
        for line in (fig.layout.title.subtitle.text or "").split("<br>"):
            assert len(line) <= plots.SUBTITLE_CHARS, fig.layout.title.subtitle.text
    mia = plots.compare_mia_figure(df)
    titles = [a.text for a in mia.layout.annotations if a.yref == "paper"]
    assert titles and not any("_" in t for t in titles), titles


def test_a_title_is_never_split_inside_parentheses() -> None:
    from unlearn_core.plots import split_title

    main, sub = split_title("Accuracy per method (mean ± sd over seeds; dashed: retrained) — closer to retrained")
    assert main == "Accuracy per method"
    assert sub == "(mean ± sd over seeds; dashed: retrained) — closer to retrained"
    assert split_title("Unlearning time vs retraining (dashed) — lower is better") == (
        "Unlearning time vs retraining (dashed)", "lower is better")


# -- issue 20: the chart style guide ----------------------------------------------------------------------------


def _every_figure() -> list[go.Figure]:
    """Every experiment and card figure on the fixtures above (what the pages draw)."""
    df = _compare_df().assign(dist_to_retrained=1.0, js_forget=0.01)
    seq = pd.DataFrame({"seed": [0, 0, 0], "step": [1, 2, 3], "grad_norm": [1.0, 0.5, 0.25],
                        "delta_bound": [10.0, None, 10.0], "status": ["certified", "not certified", "certified"],
                        "why_not_certified": [None, "σ fixed at request 1 is below σ required", None],
                        "approx_error": [0.2, 0.25, 0.3], "acc_forget": [0.9] * 3, "acc_retain": [0.95] * 3,
                        "acc_test": [0.9, 0.89, 0.88], "acc_test_retrained": [0.87] * 3})
    sens = pd.DataFrame({"seed": [0, 0], "param": ["lam", "lam"], "value": [1.0, 10.0], "delta_bound": [None, 45.0],
                         "status": ["not certified", "certified"],
                         "why_infinite": ["LiSSA term: ζ_min > 0 fails", None],
                         "sigma_required": [None, 180.0], "approx_error": [0.5, 0.4], "dist_to_retrained": [9e3, 8e3],
                         "acc_forget": [0.2, 0.2], "acc_retain": [0.2, 0.2], "acc_test": [0.2, 0.2],
                         "acc_test_retrained": [0.9, 0.9]})
    size = pd.DataFrame({"seed": [0] * 4, "n_forget": [10, 10, 50, 50], "method": ["retrained", "noisy_finetune"] * 2,
                         "time_s": [2.0, 0.1, 2.0, 0.3], "acc_test": [0.9, 0.8, 0.9, 0.7],
                         "sigma_required": [None, 1.0, None, 4.0]})
    figures = [*plots.experiment_figures("compare", df).values(), plots.sequential_figure(seq),
               plots.sensitivity_figure(sens), plots.forget_size_figure(size)]
    figures += [f for make in plots.CARD_FIGURES.values() if (f := make(_full_card())) is not None]
    return figures


def _axis_of(fig: go.Figure, trace: Any, letter: str) -> Any:
    name = getattr(trace, f"{letter}axis") or letter
    return fig.layout[f"{letter}axis{name[1:]}"]


def test_log_quantities_are_points_with_decade_ticks_never_bars() -> None:
    """Issue 20, finding 9: bars on a log axis with a cut base drew a 1.4× speed-up as ~10×, and minor ticks read
    "2, 5, 100, 2, 5". Every log axis now carries points only, a tick per decade, and at least one decade."""
    checked = 0
    for fig in _every_figure():
        for trace in fig.data:
            yaxis = _axis_of(fig, trace, "y")
            if yaxis.type == "log":
                checked += 1
                assert trace.type != "bar", (fig.layout.title.text, trace.name)
                assert yaxis.dtick == 1, (fig.layout.title.text, yaxis.title.text)
                if yaxis.range is not None:
                    assert yaxis.range[1] - yaxis.range[0] >= 1.0
    assert checked >= 8


def test_time_chart_writes_the_ratio_to_retraining() -> None:
    fig = plots.time_bars(_full_card())  # retrain 1.8 s, unlearn 0.1 s
    assert fig.data[0].type == "scatter" and fig.data[0].text[2] == "0.1 s: 18× faster"
    df = _compare_df()
    t = plots.compare_time_figure(df)  # retraining 9 s
    assert list(t.data[0].text) == ["1.0 s: 9× faster", "2.0 s: 4.5× faster"]


def test_every_trace_has_a_tooltip_with_its_unit() -> None:
    """Issue 20, finding 10: tooltips showed raw values ("forget, 0.9520548"). Every trace names what it shows."""
    for fig in _every_figure():
        for trace in fig.data:
            if trace.type in ("bar", "scatter") and trace.name not in ("bound = actual",):
                assert trace.hovertemplate, (fig.layout.title.text, trace.name)


def test_one_colour_per_method_on_every_chart() -> None:
    """Compare's bars, the frontier (Learn's and Compare's) and the forget-set-size lines give a method the same
    colour (finding 8: frontier colours differed from Learn's)."""
    df = _compare_df()
    bars = plots.compare_figure(df)
    assert list(bars.data[0].marker.color) == [plots.method_colour(m) for m in bars.data[0].x]
    frontier = pd.DataFrame({"seed": [0] * 4, "method": ["retrained", "original", "noisy_finetune",
                                                          "certified_newton"],
                             "epsilon": [None, None, 1.0, 1.0], "acc_test": [0.9, 0.92, 0.88, 0.1],
                             "dist_to_retrained": [0.0, 2.0, 9.0, 1e5]})
    fig = plots.frontier_figure(frontier)
    lines = {tr.name: tr.line.color for tr in fig.data if tr.showlegend is not False and tr.line.color}
    assert lines["noisy_finetune"] == plots.method_colour("noisy_finetune") == plots.METHOD_COLOURS["noisy_finetune"]
    assert lines["certified_newton"] == plots.method_colour("certified_newton")
    size = pd.DataFrame({"seed": [0] * 2, "n_forget": [10, 10], "method": ["retrained", "noisy_finetune"],
                         "time_s": [2.0, 0.1], "acc_test": [0.9, 0.8], "sigma_required": [None, 1.0]})
    per_panel = {tr.line.color for tr in plots.forget_size_figure(size).data if tr.name == "noisy_finetune"}
    assert per_panel == {plots.method_colour("noisy_finetune")}  # every panel, not only the first
    assert plots.method_colour("a_new_method") == plots.method_colour("a_new_method")  # stable for new names


def test_requests_are_integers_and_an_infinite_bound_says_why() -> None:
    """Finding 5: the sequential x axis read 1.5 and 2.5; a request whose bound is infinite shows "Δ = ∞" with its
    cause, as does a sweep value (finding 4)."""
    figures = _every_figure()
    seq = next(f for f in figures if f.layout.title.text.startswith("Sequential"))
    assert list(seq.layout.xaxis.tickvals) == [1, 2, 3] and list(seq.layout.xaxis3.tickvals) == [1, 2, 3]
    (mark,) = [a for a in seq.layout.annotations if a.text == "Δ = ∞"]
    assert mark.x == 2 and mark.hovertext == "∞ (σ fixed at request 1 is below σ required)"
    sens = next(f for f in figures if f.layout.title.text.startswith("Sensitivity"))
    (mark,) = [a for a in sens.layout.annotations if a.text == "Δ = ∞"]
    assert mark.x == pytest.approx(0.0) and mark.hovertext == "∞ (LiSSA term: ζ_min > 0 fails)"  # log10(λ = 1)


def test_subtitles_keep_their_spaces_and_subplot_titles_are_short() -> None:
    """Finding 10: subtitles lost spaces where a line broke ("isbetter"); per-step subplot titles overlapped and
    read "w̃_{k−1}"."""
    for fig in _every_figure():
        sub = fig.layout.title.subtitle.text or ""
        assert "<br>" not in sub.replace(" <br>", "")
        for a in fig.layout.annotations:
            if a.yref == "paper":
                assert "_{" not in a.text and all(len(line) <= 30 for line in a.text.split("<br>")), a.text


def test_the_tradeoff_chart_measures_closeness_in_outputs() -> None:
    """Finding 8: "lower-left is better" put the two methods that work at the worst end, because a noisy release's
    parameter distance is the noise's. With output divergences in the rows, closeness is the JS divergence on the
    forget set."""
    df = _compare_df().assign(dist_to_retrained=lambda d: d["method"].map(
        {"original": 2.0, "retrained": 0.0, "certified_newton": 900.0, "finetune": 1.0}),
        js_forget=lambda d: d["method"].map({"original": 0.2, "retrained": 0.0, "certified_newton": 0.01,
                                             "finetune": 0.1}))
    fig = plots.compare_tradeoff_figure(df)
    assert list(fig.data[0].y) == pytest.approx([0.01, 0.1])
    assert fig.layout.yaxis.title.text.startswith("JS divergence to retrained on the forget set")
