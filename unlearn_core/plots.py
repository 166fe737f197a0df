"""Figures: pure functions from experiment DataFrames (and run cards) to ``plotly.graph_objects.Figure``.

No Streamlit here: the dashboard passes the figures to ``st.plotly_chart``, the CLI can write them as HTML, and
the tests inspect traces, axis titles and reference lines. Conventions on every chart:

* the retrained model is drawn as the reference (a dashed line, or a bar/trace named "retrained");
* the metric's direction is stated in the title ("closer to retrained is better", "lower is better");
* axis titles carry units (seconds, ℓ2 distance in parameter space, accuracy as a fraction, ε in nats).

Experiment figures take the tidy DataFrames of :mod:`unlearn_core.experiments` and aggregate over seeds
themselves (mean, with ±1 standard deviation error bars, or ±1.96·SE bands for the budget curves).
The card figures (:func:`accuracy_bars`, :func:`lissa_convergence`, :func:`bound_vs_actual`) keep the names and
signatures the dashboard's ``pages/_figures.py`` looks up, so they replace its fallbacks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

SPLITS = ("forget", "retain", "test")
COLOURS = {"original": "#8c8c8c", "retrained": "#2b6cb0", "unlearned": "#d9480f"}
REFERENCE = dict(color=COLOURS["retrained"], dash="dash", width=2)
CLOSER = "closer to retrained is better"


def _layout(fig: go.Figure, title: str, *, height: int = 380, **kwargs: Any) -> go.Figure:
    fig.update_layout(title=title, margin=dict(l=50, r=20, t=60, b=45), height=height, legend_title_text="",
                      **kwargs)
    return fig


def _agg(df: pd.DataFrame, by: Sequence[str], col: str) -> pd.DataFrame:
    """Mean, std (0 for one seed), count and 1.96·SE of ``col`` per group, groups in first-seen order."""
    g = df.groupby(list(by), sort=False, dropna=False)[col]
    out = pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1).fillna(0.0), "n": g.count()})
    out["ci95"] = 1.96 * out["std"] / np.sqrt(out["n"].clip(lower=1))
    return out.reset_index()


def _num(values: Any) -> list[float | None]:
    return [None if v is None or (isinstance(v, float) and not np.isfinite(v)) else float(v) for v in values]


# ----------------------------------------------------------------------------------------------------------------
# Experiments
# ----------------------------------------------------------------------------------------------------------------


def compare_figure(df: pd.DataFrame) -> go.Figure:
    """Accuracy on forget / retain / test per method, retrained values as dashed reference lines (Zhang Table 1)."""
    methods = [m for m in dict.fromkeys(df["method"]) if m != "retrained"]
    fig = make_subplots(rows=1, cols=3, subplot_titles=[f"{s} accuracy" for s in SPLITS], shared_yaxes=True)
    for j, split in enumerate(SPLITS, start=1):
        col = f"acc_{split}"
        agg = _agg(df, ["method"], col).set_index("method")
        fig.add_bar(x=methods, y=[agg.loc[m, "mean"] for m in methods],
                    error_y=dict(type="data", array=[agg.loc[m, "std"] for m in methods]),
                    marker_color=[COLOURS["original"] if m == "original" else COLOURS["unlearned"] for m in methods],
                    name=split, showlegend=False, row=1, col=j)
        if "retrained" in agg.index:
            fig.add_hline(y=agg.loc["retrained", "mean"], line=REFERENCE, row=1, col=j,
                          annotation_text="retrained", annotation_position="top left")
        fig.update_xaxes(title_text="method", row=1, col=j)
    fig.update_yaxes(title_text="accuracy (fraction)", range=[0, 1.05], row=1, col=1)
    return _layout(fig, f"Accuracy per method (mean ± sd over seeds; dashed: retrained) — {CLOSER}", height=420)


def compare_time_figure(df: pd.DataFrame) -> go.Figure:
    """Unlearning wall time per method on a log scale, retraining time as the reference (Zhang Fig. 2)."""
    rows = df[~df["method"].isin(["original", "retrained"])]
    agg = _agg(rows, ["method"], "time_s")
    fig = go.Figure(go.Bar(x=agg["method"], y=agg["mean"], error_y=dict(type="data", array=agg["std"]),
                           marker_color=COLOURS["unlearned"], name="unlearning time",
                           text=[f"{v:.3g} s" for v in agg["mean"]], textposition="outside"))
    ref = df[df["method"] == "retrained"]["time_s"].dropna()
    if len(ref):
        fig.add_hline(y=float(ref.mean()), line=REFERENCE, annotation_text=f"retrain {ref.mean():.3g} s",
                      annotation_position="top left")
    fig.update_xaxes(title_text="method")
    fig.update_yaxes(title_text="wall time (s, log scale)", type="log")
    return _layout(fig, "Unlearning time vs retraining (dashed) — lower is better")


def compare_mia_figure(df: pd.DataFrame, *, columns: Sequence[str] | None = None) -> go.Figure:
    """Membership-inference scores per method; the retrained model's score is the dashed target line.

    Below the line is over-unlearning (the forget set stands out as *too* unfamiliar), above it under-unlearning.
    """
    if columns is None:
        columns = [c for c in ("mia_loss_auc", "mia_posterior_auc", "mia_svc_forget_nonmember_rate") if c in df]
    columns = list(columns)
    methods = [m for m in dict.fromkeys(df["method"]) if m != "retrained"]
    fig = make_subplots(rows=1, cols=max(1, len(columns)), subplot_titles=[c.removeprefix("mia_") for c in columns])
    for j, col in enumerate(columns, start=1):
        agg = _agg(df, ["method"], col).set_index("method")
        shown = [m for m in methods if m in agg.index and np.isfinite(agg.loc[m, "mean"])]
        fig.add_bar(x=shown, y=[agg.loc[m, "mean"] for m in shown],
                    error_y=dict(type="data", array=[agg.loc[m, "std"] for m in shown]),
                    marker_color=COLOURS["unlearned"], name=col, showlegend=False, row=1, col=j)
        if "retrained" in agg.index and np.isfinite(agg.loc["retrained", "mean"]):
            fig.add_hline(y=agg.loc["retrained", "mean"], line=REFERENCE, row=1, col=j, annotation_text="retrained",
                          annotation_position="top left")
        fig.update_xaxes(title_text="method", row=1, col=j)
    fig.update_yaxes(title_text="attack score (AUC or rate, 0–1)", range=[0, 1.05], row=1, col=1)
    return _layout(fig, f"Membership inference (held-out) — {CLOSER}; below it is over-unlearning", height=420)


def sequential_figure(df: pd.DataFrame) -> go.Figure:
    """Per request k: retain-gradient norm, Δ bound and actual error, accuracy vs retrained (Zhang Fig. 3)."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=("gradient norm ‖∇L(w̃_{k−1}, D_r,k)‖",
                                                        "bound Δ vs actual ‖w̃_k − w̃*_k‖", "accuracy"))
    g = _agg(df, ["step"], "grad_norm")
    fig.add_scatter(x=g["step"], y=g["mean"], error_y=dict(type="data", array=g["std"]), mode="lines+markers",
                    name="gradient norm", row=1, col=1)
    for col, name in (("delta_bound", "bound Δ"), ("approx_error", "actual error"),
                      ("released_to_retrained", "released − retrained")):
        if col in df and df[col].notna().any():
            a = _agg(df.assign(**{col: pd.to_numeric(df[col], errors="coerce")}), ["step"], col)
            fig.add_scatter(x=a["step"], y=_num(a["mean"]), mode="lines+markers", name=name, row=1, col=2)
    for split in SPLITS:
        col = f"acc_{split}"
        if col in df:
            a = _agg(df, ["step"], col)
            fig.add_scatter(x=a["step"], y=a["mean"], error_y=dict(type="data", array=a["std"]),
                            mode="lines+markers", name=f"{split} accuracy", row=1, col=3)
    if "acc_test_retrained" in df:
        fig.add_hline(y=float(df["acc_test_retrained"].mean()), line=REFERENCE, row=1, col=3,
                      annotation_text="retrained (all requests), test", annotation_position="bottom left")
    fig.update_xaxes(title_text="request k")
    fig.update_yaxes(title_text="‖∇L‖ (log)", type="log", row=1, col=1)
    fig.update_yaxes(title_text="ℓ2 distance in parameter space (log)", type="log", row=1, col=2)
    fig.update_yaxes(title_text="accuracy (fraction)", range=[0, 1.05], row=1, col=3)
    return _layout(fig, f"Sequential unlearning — gradient norm and error: lower is better; accuracy: {CLOSER}",
                   height=420)


def sensitivity_figure(df: pd.DataFrame) -> go.Figure:
    """Bound Δ, σ required, actual error and accuracy against the swept hyperparameter (Zhang Fig. 4)."""
    param = str(df["param"].iloc[0]) if "param" in df and len(df) else "value"
    fig = make_subplots(rows=1, cols=2, subplot_titles=("bound, noise and actual error", "accuracy of the release"))
    for col, name in (("delta_bound", "bound Δ"), ("sigma_required", "σ required"), ("sigma_used", "σ used"),
                      ("approx_error", "actual ‖w̃ − w̃*‖ (before noise)"),
                      ("dist_to_retrained", "‖w⁻ − w̃*‖ (after noise)")):
        if col in df and pd.to_numeric(df[col], errors="coerce").notna().any():
            a = _agg(df.assign(**{col: pd.to_numeric(df[col], errors="coerce")}), ["value"], col)
            fig.add_scatter(x=a["value"], y=_num(a["mean"]), mode="lines+markers", name=name, row=1, col=1)
    for split in SPLITS:
        col = f"acc_{split}"
        if col in df:
            a = _agg(df, ["value"], col)
            fig.add_scatter(x=a["value"], y=a["mean"], error_y=dict(type="data", array=a["std"]),
                            mode="lines+markers", name=f"{split} accuracy", row=1, col=2)
    if "acc_test_retrained" in df:
        fig.add_hline(y=float(df["acc_test_retrained"].mean()), line=REFERENCE, row=1, col=2,
                      annotation_text="retrained, test", annotation_position="bottom left")
    fig.update_xaxes(title_text=f"{param} (log scale)", type="log")
    fig.update_yaxes(title_text="ℓ2 distance / noise std (log)", type="log", row=1, col=1)
    fig.update_yaxes(title_text="accuracy (fraction)", range=[0, 1.05], row=1, col=2)
    return _layout(fig, f"Sensitivity to {param} — bound and error: lower is better; accuracy: {CLOSER}",
                   height=420)


def bound_vs_actual_figure(df: pd.DataFrame) -> go.Figure:
    """Certified bound Δ against the actual error ‖w̃ − w̃*‖, one point per row, with the diagonal y = x.

    Every point must lie above the diagonal (the bound holds); its height above it is the bound's slack.
    """
    d = df.assign(delta_bound=pd.to_numeric(df["delta_bound"], errors="coerce"),
                  approx_error=pd.to_numeric(df["approx_error"], errors="coerce")).dropna(
        subset=["delta_bound", "approx_error"])
    label = d["value"].map(lambda v: f"{v:g}") if "value" in d else d.index.astype(str)
    fig = go.Figure(go.Scatter(x=d["approx_error"], y=d["delta_bound"], mode="markers+text", text=label,
                               textposition="top center", name="runs", marker=dict(size=10)))
    if len(d):
        lo = float(min(d["approx_error"].min(), d["delta_bound"].min()))
        hi = float(max(d["approx_error"].max(), d["delta_bound"].max()))
        fig.add_scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="bound = actual", line=dict(dash="dot"))
    fig.update_xaxes(title_text="actual error ‖w̃ − w̃*‖ to the retrained model (ℓ2, log)", type="log")
    fig.update_yaxes(title_text="certified bound Δ (ℓ2, log)", type="log")
    return _layout(fig, "Bound vs actual approximation error (retrained model = 0 error) — tighter (nearer y = x) "
                        "is better; below y = x would break the bound")


def budget_figure(df: pd.DataFrame) -> go.Figure:
    """Test accuracy against the unlearning budget, mean ± 1.96·SE, retraining as reference (Koloskova Fig. 1)."""
    fig = go.Figure()
    for method in dict.fromkeys(df["method"]):
        a = _agg(df[df["method"] == method], ["budget_epochs"], "acc_test")
        is_ref = method == "retrain"
        fig.add_scatter(x=a["budget_epochs"], y=a["mean"], error_y=dict(type="data", array=a["ci95"]),
                        mode="lines+markers", name="retrain (reference)" if is_ref else method,
                        line=REFERENCE if is_ref else None)
    fig.update_xaxes(title_text="unlearning budget (epochs over D_r)")
    fig.update_yaxes(title_text="test accuracy (fraction)", range=[0, 1.05])
    return _layout(fig, "Accuracy vs unlearning budget (±1.96·SE; dashed: retraining with the same budget) — "
                        "higher is better")


def audit_figure(df: pd.DataFrame) -> go.Figure:
    """Empirical ε lower bound vs the exact ε of the pair vs the certified ε, per σ (log scales).

    The reference is the noisy retrain the certificate compares with; ε_lower above ε_certified would refute it.
    """
    d = df.sort_values("sigma")
    fig = go.Figure()
    for col, name, dash in (("epsilon_certified", "ε certified (bound Δ)", "solid"),
                            ("epsilon_gaussian_at_actual", "ε exact at actual distance", "dot"),
                            ("epsilon_lower", "ε lower bound (audit, 95 %)", "dash")):
        a = _agg(d.assign(**{col: pd.to_numeric(d[col], errors="coerce").clip(upper=1e6)}), ["sigma"], col)
        fig.add_scatter(x=a["sigma"], y=_num(a["mean"]), mode="lines+markers", name=name, line=dict(dash=dash))
    if "epsilon_target" in d and len(d):
        fig.add_hline(y=float(d["epsilon_target"].iloc[0]), line=dict(color="#555", dash="dashdot"),
                      annotation_text="target ε", annotation_position="top right")
    fig.update_xaxes(title_text="noise std σ (log)", type="log")
    fig.update_yaxes(title_text="ε (nats, log; capped at 1e6)", type="log")
    return _layout(fig, "Audit vs the noisy retrain: ε_lower ≤ ε_certified means not refuted; lower ε is more "
                        "private")


EXPERIMENT_FIGURES = {
    "compare": (compare_figure, compare_time_figure, compare_mia_figure),
    "sequential": (sequential_figure,),
    "sensitivity": (sensitivity_figure, bound_vs_actual_figure),
    "budget": (budget_figure,),
    "audit": (audit_figure,),
}


# ----------------------------------------------------------------------------------------------------------------
# Run cards (the dashboard looks these names up)
# ----------------------------------------------------------------------------------------------------------------


def accuracy_bars(card: Mapping[str, Any]) -> go.Figure:
    """Accuracy of original / retrained / unlearned on forget, retain and test, retrained values dashed."""
    fig = go.Figure()
    models = card["models"]
    for name in ("original", "retrained", "unlearned"):
        m = models.get(name)
        if m is None:
            continue
        fig.add_bar(name=name, x=list(SPLITS), y=[m[f"acc_{s}"] for s in SPLITS], marker_color=COLOURS[name],
                    text=[f"{m[f'acc_{s}']:.3f}" for s in SPLITS], textposition="outside")
    if models.get("retrained"):
        for i, split in enumerate(SPLITS):
            fig.add_shape(type="line", x0=i - 0.45, x1=i + 0.45, y0=models["retrained"][f"acc_{split}"],
                          y1=models["retrained"][f"acc_{split}"], line=REFERENCE)
    fig.update_xaxes(title_text="evaluation set")
    fig.update_yaxes(title_text="accuracy (fraction)", range=[0, 1.1])
    return _layout(fig, f"Accuracy (dashed: retrained) — {CLOSER}", barmode="group", height=340)


def lissa_convergence(card: Mapping[str, Any]) -> go.Figure:
    """‖v_t‖ per LiSSA repetition against the step t (log y): flattening out = converged, growth = H too small."""
    lissa = card["diagnostics"]["lissa"]
    steps, norms = lissa["norm_steps"], lissa["norms"]
    fig = go.Figure()
    reps = len(norms[0]) if norms else 0
    for r in range(reps):
        fig.add_scatter(x=steps, y=[row[r] for row in norms], mode="lines", name=f"rep {r + 1}", line=dict(width=1))
    fig.update_xaxes(title_text="LiSSA step t")
    fig.update_yaxes(title_text="‖v_t‖ (log scale)", type="log")
    scale = lissa.get("scale")
    title = "LiSSA convergence — flat is converged, growth means H is too small"
    if scale is not None:
        title += f" (H = {float(scale):.4g}, {lissa.get('num_hvps')} HVPs)"
    return _layout(fig, title, height=340)


def bound_vs_actual(card: Mapping[str, Any]) -> go.Figure:
    """The certified bound Δ beside the actual error ‖w̃ − w̃*‖ before noise (log scale; the bound is worst case)."""
    cert = card.get("certificate")
    if not cert or cert.get("delta_bound") is None:
        raise ValueError("the run has no finite bound Δ")
    diag = card.get("diagnostics", {})
    actual = diag.get("approx_error")
    if actual is None:
        actual = card["distance"]["unlearned_to_retrained"]
    names = ["bound Δ", "actual ‖w̃ − w̃*‖"]
    values = [float(cert["delta_bound"]), float(actual)]
    fig = go.Figure(go.Bar(x=names, y=values, text=[f"{v:.3g}" for v in values], textposition="outside",
                           marker_color=["#805ad5", COLOURS["unlearned"]], name="ℓ2 distance"))
    fig.update_yaxes(type="log", title_text="ℓ2 distance in parameter space (log)")
    fig.update_xaxes(title_text="quantity (retrained model = distance 0)")
    return _layout(fig, "Approximation error: bound vs actual (before noise) — lower is better", height=340)
