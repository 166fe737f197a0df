"""Figures on small hand-made DataFrames and run cards: traces, axis titles, the retrained reference, direction."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import pytest

from unlearn_core import plots


def _ref_lines(fig: go.Figure) -> list:
    return [s for s in fig.layout.shapes if s.line.dash == "dash"]


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
    assert "closer to retrained is better" in fig.layout.title.text
    assert fig.layout.yaxis.title.text == "accuracy (fraction)"
    t = plots.compare_time_figure(df)
    assert list(t.data[0].x) == ["certified_newton", "finetune"]
    assert t.layout.yaxis.type == "log" and "s" in t.layout.yaxis.title.text
    assert _ref_lines(t)[0].y0 == pytest.approx(9.0)
    m = plots.compare_mia_figure(df)
    assert len(m.data) == 3 and len(_ref_lines(m)) == 3
    assert "original" not in list(m.data[1].x)  # no posterior-difference score for the original itself
    assert "over-unlearning" in m.layout.title.text


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


def test_budget_and_audit_figures() -> None:
    df = pd.DataFrame({"seed": [0, 1, 0, 1], "method": ["noisy_finetune"] * 2 + ["retrain"] * 2,
                       "budget_epochs": [1, 1, 1, 1], "acc_test": [0.8, 0.9, 0.5, 0.7]})
    fig = plots.budget_figure(df)
    assert [tr.name for tr in fig.data] == ["noisy_finetune", "retrain (reference)"]
    assert fig.data[1].line.dash == "dash"
    assert fig.data[0].error_y.array[0] == pytest.approx(1.96 * 0.0707107 / 2**0.5, rel=1e-4)
    assert fig.layout.xaxis.title.text.startswith("unlearning budget")
    audit = pd.DataFrame({"seed": [0, 0], "sigma": [1e-3, 100.0], "epsilon_certified": [1e9, 1.0],
                          "epsilon_gaussian_at_actual": [1e3, 1e-3], "epsilon_lower": [4.9, 0.0],
                          "epsilon_target": [1.0, 1.0]})
    fig = plots.audit_figure(audit)
    assert len(fig.data) == 3 and fig.layout.xaxis.type == "log"
    assert fig.data[0].y[0] == pytest.approx(1e6)  # capped for display


def _card() -> dict:
    m = {"acc_forget": 0.9, "acc_retain": 0.95, "acc_test": 0.9}
    return {
        "models": {"original": m, "retrained": {**m, "acc_forget": 0.85}, "unlearned": m},
        "distance": {"unlearned_to_retrained": 0.7},
        "certificate": {"delta_bound": 44.0},
        "diagnostics": {"approx_error": 0.5, "lissa": {"norm_steps": [1, 2, 3], "norms": [[1.0, 2.0], [1.5, 2.5],
                                                                                          [1.6, 2.6]],
                                                       "scale": 1000.0, "num_hvps": 6}},
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
    with pytest.raises(ValueError, match="no finite bound"):
        plots.bound_vs_actual({**card, "certificate": None})
