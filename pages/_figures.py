"""Figures for the dashboard: pure functions of run cards returning ``plotly.graph_objects.Figure``.

:mod:`unlearn_core.plots` is the home of the project's figures; a figure it provides is preferred (see
:func:`figure`), and the small functions below draw the rest straight from the JSON run card, so the dashboard
works with whichever engine modules have landed. No maths here — only data already in the card.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

SPLITS = ("forget", "retain", "test")
MODEL_COLOURS = {"original": "#8c8c8c", "retrained": "#2b6cb0", "unlearned": "#d9480f"}


def figure(name: str, *args: Any, **kwargs: Any) -> go.Figure | None:
    """``unlearn_core.plots.<name>(*args)`` when it exists and accepts a run card, else the local function of the
    same name; ``None`` when the card lacks the data (e.g. no LiSSA curve for an exact solve)."""
    try:
        from unlearn_core import plots  # optional: written by another module owner
    except ImportError:
        plots = None
    candidates = [getattr(plots, name, None) if plots is not None else None, globals().get(name)]
    for fn in candidates:
        if fn is None:
            continue
        try:
            fig = fn(*args, **kwargs)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            continue
        if isinstance(fig, go.Figure):
            return fig
    return None


def _layout(fig: go.Figure, title: str, **kwargs: Any) -> go.Figure:
    fig.update_layout(title=title, margin=dict(l=40, r=20, t=50, b=40), height=340, legend_title_text="", **kwargs)
    return fig


def accuracy_bars(card: Mapping[str, Any]) -> go.Figure:
    """Accuracy of original / retrained / unlearned on forget, retain and test (closer to retrained is better)."""
    fig = go.Figure()
    for name in ("original", "retrained", "unlearned"):
        m = card["models"].get(name)
        if m is None:
            continue
        fig.add_bar(name=name, x=list(SPLITS), y=[m[f"acc_{s}"] for s in SPLITS], marker_color=MODEL_COLOURS[name],
                    text=[f"{m[f'acc_{s}']:.3f}" for s in SPLITS], textposition="outside")
    fig.update_yaxes(title="accuracy", range=[0, 1.1])
    return _layout(fig, "Accuracy: closer to the retrained model is better", barmode="group")


def time_bars(card: Mapping[str, Any]) -> go.Figure:
    """Wall time of training, retraining and unlearning (log scale)."""
    timing = card.get("timing_s", {})
    names = [k for k in ("train", "retrain", "unlearn") if timing.get(k)]
    fig = go.Figure(go.Bar(x=names, y=[timing[k] for k in names], text=[f"{timing[k]:.2f} s" for k in names],
                           textposition="outside", marker_color=["#8c8c8c", "#2b6cb0", "#d9480f"][: len(names)]))
    fig.update_yaxes(title="seconds", type="log")
    return _layout(fig, "Unlearning time vs retraining time")


def lissa_convergence(card: Mapping[str, Any]) -> go.Figure:
    """‖v_t‖/H per repetition against the LiSSA step: a converged run flattens out; a blow-up means H is too small."""
    lissa = card["diagnostics"]["lissa"]
    steps, norms = lissa["norm_steps"], lissa["norms"]
    fig = go.Figure()
    reps = len(norms[0]) if norms else 0
    for r in range(reps):
        fig.add_scatter(x=steps, y=[row[r] for row in norms], mode="lines", name=f"rep {r + 1}",
                        line=dict(width=1))
    fig.update_xaxes(title="LiSSA step t")
    fig.update_yaxes(title="‖v_t‖ / H", type="log")
    return _layout(fig, f"LiSSA convergence (H = {lissa.get('scale'):.4g}, {lissa.get('num_hvps')} HVPs)")


def bound_vs_actual(card: Mapping[str, Any]) -> go.Figure:
    """The certified bound Δ next to the actual error ‖w̃ − w̃*‖ (log scale; the bound is worst case)."""
    diag = card["diagnostics"]
    bound = card["certificate"]["delta_bound"]
    actual = diag.get("approx_error")
    if actual is None:
        actual = card["distance"]["unlearned_to_retrained"]
    names = ["bound Δ", "actual ‖w̃ − w̃*‖"]
    values = [bound, actual]
    fig = go.Figure(go.Bar(x=names, y=values, text=[f"{v:.3g}" for v in values], textposition="outside",
                           marker_color=["#805ad5", "#d9480f"]))
    fig.update_yaxes(type="log", title="ℓ2 distance")
    return _layout(fig, "Approximation error: bound vs actual (before noise)")


def gradient_norms(card: Mapping[str, Any]) -> go.Figure:
    """Retain-gradient norm before and after the step (and at the retrained model, the stationarity floor)."""
    diag = card["diagnostics"]
    steps = diag.get("steps") or []
    names, values = [], []
    if steps:
        names += ["before (w*)", "after (w̃)"]
        values += [steps[0]["grad_norm"], steps[0]["grad_norm_after"]]
    elif diag.get("grad_norm") is not None:
        names.append("before (w*)")
        values.append(diag["grad_norm"])
    if diag.get("retrained_grad_norm") is not None:
        names.append("retrained (w̃*)")
        values.append(diag["retrained_grad_norm"])
    fig = go.Figure(go.Bar(x=names, y=values, text=[f"{v:.3g}" for v in values], textposition="outside",
                           marker_color="#2f855a"))
    fig.update_yaxes(type="log", title="‖∇L(w, D_r)‖")
    return _layout(fig, "Gradient norm on the retain set")


def mia_bars(card: Mapping[str, Any]) -> go.Figure:
    """MIA scores of the unlearned and retrained models side by side (the target is the retrained value)."""
    mia = card["mia"]
    fig = go.Figure()
    for model in ("original", "retrained", "unlearned"):
        block = mia.get(model)
        if not isinstance(block, Mapping):
            continue
        keys = [k for k, v in block.items() if isinstance(v, (int, float))]
        fig.add_bar(name=model, x=keys, y=[block[k] for k in keys], marker_color=MODEL_COLOURS[model])
    return _layout(fig, "Membership inference: closer to the retrained model is better", barmode="group")


def compare_scatter(cards: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> go.Figure:
    """Unlearning time against distance to the retrained model, one point per method (lower-left is better)."""
    fig = go.Figure()
    for card, label in zip(cards, labels, strict=True):
        fig.add_scatter(x=[card["timing_s"]["unlearn"]], y=[card["distance"]["unlearned_to_retrained"]],
                        mode="markers+text", text=[label], textposition="top center", name=label,
                        marker=dict(size=12))
    if cards and cards[0]["timing_s"].get("retrain"):
        fig.add_vline(x=cards[0]["timing_s"]["retrain"], line_dash="dash", annotation_text="retrain time")
    fig.update_xaxes(title="unlearning time (s)", type="log")
    fig.update_yaxes(title="‖w − w_retrained‖", type="log")
    return _layout(fig, "Time vs closeness to retraining", showlegend=False)


def compare_accuracy(cards: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> go.Figure:
    """Forget / retain / test accuracy per method, with the retrained model's values as dashed lines."""
    fig = go.Figure()
    for split in SPLITS:
        fig.add_bar(name=split, x=list(labels), y=[c["models"]["unlearned"][f"acc_{split}"] for c in cards])
    retrained = cards[0]["models"].get("retrained") if cards else None
    if retrained:
        for split, dash in zip(SPLITS, ("dash", "dot", "dashdot"), strict=True):
            fig.add_hline(y=retrained[f"acc_{split}"], line_dash=dash, annotation_text=f"retrained {split}",
                          annotation_position="top left", line_color="#2b6cb0")
    fig.update_yaxes(range=[0, 1.1], title="accuracy")
    return _layout(fig, "Accuracy per method (dashed: retrained)", barmode="group")


def sequential_curves(card: Mapping[str, Any]) -> go.Figure:
    """Per request k: retain-gradient norm, Δ bound and test accuracy (Zhang et al. Fig. 3)."""
    from plotly.subplots import make_subplots

    steps = card["diagnostics"]["steps"]
    k = [s["step"] for s in steps]
    fig = make_subplots(rows=1, cols=3, subplot_titles=("‖∇L(w̃_k, D_r,k)‖", "Δ bound", "accuracy"))
    fig.add_scatter(x=k, y=[s["grad_norm"] for s in steps], mode="lines+markers", name="gradient norm", row=1, col=1)
    fig.add_scatter(x=k, y=[s.get("delta_bound") for s in steps], mode="lines+markers", name="Δ bound", row=1, col=2)
    for key, name in (("acc_test", "test"), ("acc_forget", "forget"), ("acc_retain", "retain")):
        if key in steps[0]:
            fig.add_scatter(x=k, y=[s[key] for s in steps], mode="lines+markers", name=f"{name} accuracy",
                            row=1, col=3)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_xaxes(title="request k")
    return _layout(fig, "Sequential unlearning, per request", height=380)


def sensitivity_curves(cards: Sequence[Mapping[str, Any]], values: Sequence[float], name: str) -> go.Figure:
    """Bound Δ, σ required, actual error and test accuracy against the swept hyperparameter."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("error and noise", "accuracy of the released model"))

    def col(path: Sequence[str]) -> list[Any]:
        out = []
        for c in cards:
            v: Any = c
            for p in path:
                v = v.get(p) if isinstance(v, Mapping) else None
            out.append(v)
        return out

    for path, label in ((("certificate", "delta_bound"), "Δ bound"), (("certificate", "sigma_required"), "σ required"),
                        (("diagnostics", "approx_error"), "actual ‖w̃ − w̃*‖"),
                        (("distance", "unlearned_to_retrained"), "‖w⁻ − w̃*‖ (after noise)")):
        ys = col(path)
        if any(y is not None for y in ys):
            fig.add_scatter(x=list(values), y=ys, mode="lines+markers", name=label, row=1, col=1)
    for split in SPLITS:
        fig.add_scatter(x=list(values), y=col(("models", "unlearned", f"acc_{split}")), mode="lines+markers",
                        name=f"{split} accuracy", row=1, col=2)
    fig.update_xaxes(type="log", title=name)
    fig.update_yaxes(type="log", row=1, col=1)
    return _layout(fig, f"Sensitivity to {name}", height=380)
