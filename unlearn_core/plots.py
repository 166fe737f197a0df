"""Figures: pure functions from experiment DataFrames (and run cards) to ``plotly.graph_objects.Figure``.

No Streamlit here: the dashboard passes the figures to ``st.plotly_chart``, the CLI can write them as HTML, and
the tests inspect traces, axis titles and reference lines. Conventions on every chart:

* the retrained model is drawn as the reference (a dashed line, or a bar/trace named "retrained");
* the metric's direction is stated in the title ("closer to retrained is better", "lower is better");
* axis titles carry units (seconds, ℓ2 distance in parameter space, accuracy as a fraction, ε in nats).

Experiment figures take the tidy DataFrames of :mod:`unlearn_core.experiments` and aggregate over seeds
themselves (mean, with ±1 standard deviation error bars, or ±1.96·SE bands for the budget curves).
Run-card figures (:data:`CARD_FIGURES`, :func:`cards_tradeoff`, :func:`cards_accuracy`) take the JSON run cards the
dashboard stores. A card that lacks a figure's data (no LiSSA curve after an exact solve, no bound for an
uncertified method, no MIA block) is not an error: the function returns ``None`` and the page shows nothing.

**The style guide** (issue 20; every figure follows it, ``tests/test_plots.py`` checks it):

* *log quantities* (times, gradient norms, bounds, noise) are drawn as points on a log axis with decade ticks
  (:func:`_log_axis`), never as bars — a bar's length from a cut log base means nothing (a 1.4× speed-up looked
  like 10×); a ratio is written beside them ("1.4× faster than retraining");
* *value labels never overlap*: bars carry their value inside and plotly hides a label that does not fit
  (``uniformtext``); every number is in the tooltip;
* *units in every tooltip* (:func:`_hover`): "forget set: 95.2 % accuracy", "unlearn: 0.35 s";
* *subplot titles* are short words, wrapped, with room above the plots; y titles never reach the neighbour;
* *integer axes* where the quantity is an integer (requests, forget-set sizes);
* *one colour per method* on every page (:func:`method_colour`: Learn's frontier = Compare's = Forget-set size's),
  the original grey, the retrained model blue and dashed;
* a category a chart cannot show (the original has no posterior-difference score) is *explained* on the chart;
* numbers are written by :mod:`unlearn_core.formatting` (significant digits, ∞ with its cause, never "None").
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from unlearn_core import formatting as fmt
from unlearn_core.certificate import certificate_from_card
from unlearn_core.diagnostics import SPLITS, diagnostics_from_card

COLOURS = {"original": "#8c8c8c", "retrained": "#2b6cb0", "unlearned": "#d9480f"}
REFERENCE = dict(color=COLOURS["retrained"], dash="dash", width=2)
CLOSER = "closer to retrained is better"

#: One colour per method, the same on every page and chart (colour-blind-safe hues, none the references' grey or
#: blue). A method not listed here (a newly registered one) gets a stable colour from :data:`EXTRA_COLOURS`.
METHOD_COLOURS = {
    "original": COLOURS["original"], "retrained": COLOURS["retrained"], "retrain": COLOURS["retrained"],
    "certified_newton": "#d9480f", "noisy_finetune": "#7048e8", "output_perturbation": "#2f9e44",
    "cure_newton": "#c2255c", "damped_newton": "#e67700", "finetune": "#0c8599", "fisher": "#5c940d",
    "neggrad": "#862e9c", "neggrad_plus": "#a61e4d",
}
EXTRA_COLOURS = ("#1098ad", "#f08c00", "#364fc7", "#087f5b", "#e64980", "#74b816", "#495057")


def method_colour(method: str) -> str:
    """The colour of ``method`` on every chart (:data:`METHOD_COLOURS`; a stable hash for a method not listed)."""
    if method in METHOD_COLOURS:
        return METHOD_COLOURS[method]
    return EXTRA_COLOURS[zlib.crc32(str(method).encode()) % len(EXTRA_COLOURS)]


def _hover(what: str, value: str, *, name: str = "") -> str:
    """A tooltip with the quantity's name and unit: ``<b>%{x}</b><br>accuracy: %{y:.1%}``."""
    return f"<b>%{{x}}</b><br>{what}: {value}<extra>{name}</extra>"


def _log_range(values: Sequence[float | None]) -> list[float] | None:
    """The log10 range of a log axis that shows ``values`` with at least one full decade, on decade bounds."""
    finite = [float(v) for v in values if v is not None and np.isfinite(v) and v > 0]
    if not finite:
        return None
    lo, hi = math.floor(math.log10(min(finite))), math.ceil(math.log10(max(finite)))
    if hi - lo < 1:
        hi = lo + 1
    return [lo - 0.15, hi + 0.15]


def _log_axis(fig: go.Figure, title: str, *, values: Sequence[float | None] = (), axis: str = "y",
              **where: Any) -> None:
    """A log axis with a tick at every decade (labels 0.01, 0.1, 1, 10 … or 10ⁿ beyond), unlabelled minor ticks,
    and a range that spans at least one decade: never the "2, 5, 100, 2, 5" of a short log axis."""
    kwargs: dict[str, Any] = dict(title_text=title, type="log", dtick=1, exponentformat="power",
                                  minor=dict(ticks="outside", ticklen=3, showgrid=True, gridcolor="#eeeeee"),
                                  **where)
    span = _log_range(values)
    if span is not None:
        kwargs["range"] = span
    (fig.update_yaxes if axis == "y" else fig.update_xaxes)(**kwargs)


def _bar_labels(fig: go.Figure) -> None:
    """Bar value labels inside the bars, hidden by plotly when they do not fit: they never overlap."""
    fig.update_layout(uniformtext=dict(minsize=9, mode="hide"))


#: The longest title line a figure gets: longer titles were cut off at the edge of a half-width chart at 1024 px.
TITLE_CHARS = 48
SUBTITLE_CHARS = 80


def _wrap(text: str, width: int) -> str:
    """``text`` broken into lines of at most ``width`` characters at spaces (plotly's ``<br>``)."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return " <br>".join(lines)


def split_title(title: str) -> tuple[str, str]:
    """A figure title as (main line, subtitle): the part before the first " — " (else "; ", ": ", " (") is the main
    line, the rest the subtitle — so that "what" stays in large type and "how to read it" goes below it. Never
    inside parentheses: "Accuracy per method (mean ± sd over seeds; dashed: …)" once lost its ")" to the "; "."""
    for sep in (" — ", "; ", ": ", " ("):
        head, found, tail = title.partition(sep)
        if found and len(head) <= TITLE_CHARS and head.count("(") == head.count(")"):
            return head, (tail if sep != " (" else "(" + tail)
    return title, ""


def _layout(fig: go.Figure, title: str, *, height: int = 380, **kwargs: Any) -> go.Figure:
    """Title (main line + subtitle, both wrapped: :func:`split_title`), margins, height, no legend title."""
    main, sub = split_title(title)
    lines = 1 + _wrap(main, TITLE_CHARS).count("<br>") + (1 + _wrap(sub, SUBTITLE_CHARS).count("<br>") if sub else 0)
    # Subplot titles sit just above their plots, inside the top margin: leave them as many lines as they have.
    title_lines = [1 + (a.text or "").count("<br>") for a in fig.layout.annotations
                   if a.yref == "paper" and (a.y or 0) >= 1]
    top = 40 + 20 * lines + (6 + 18 * max(title_lines) if title_lines else 0)
    fig.update_layout(title=dict(text=_wrap(main, TITLE_CHARS), subtitle=dict(text=_wrap(sub, SUBTITLE_CHARS))),
                      margin=dict(l=50, r=20, t=top, b=45), height=height + 20 * max(0, lines - 2),
                      legend_title_text="", **kwargs)
    return fig


def _reference_line(fig: go.Figure, value: float, text: str, *, axis: str = "y", log: bool = False,
                    line: dict[str, Any] | None = None, row: int | None = None, col: int | None = None,
                    side: str = "left") -> None:
    """A dashed reference line (the retrained model's value) with its label, on a linear or a log axis.

    Why not ``add_hline(annotation_text=...)``: on a log axis plotly places an annotation in log10 units while the
    line is in data units, so the label of a line at 20 s sat at 10²⁰ s and stretched the axis to it. The label is
    added here in the axis's own units.
    """
    line = line or REFERENCE
    where = {} if row is None else {"row": row, "col": col}
    at = math.log10(value) if log and value > 0 else value
    if axis == "y":
        fig.add_hline(y=value, line=line, **where)
        fig.add_annotation(x=0 if side == "left" else 1, xref="x domain", y=at, yref="y", text=text, showarrow=False,
                           xanchor=side, yanchor="bottom", font=dict(color=line.get("color")), **where)
    else:
        fig.add_vline(x=value, line=line, **where)
        fig.add_annotation(x=at, xref="x", y=1, yref="y domain", text=text, showarrow=False, xanchor="left",
                           yanchor="top", font=dict(color=line.get("color")), **where)


def _agg(df: pd.DataFrame, by: Sequence[str], col: str) -> pd.DataFrame:
    """Mean, std (0 for one seed), count and 1.96·SE of ``col`` per group, groups in first-seen order.

    ``col`` is read as numbers: a value that is not one (e.g. the ``None`` of an infinite bound) is missing.
    """
    g = df.assign(**{col: pd.to_numeric(df[col], errors="coerce")}).groupby(list(by), sort=False, dropna=False)[col]
    out = pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1).fillna(0.0), "n": g.count()})
    out["ci95"] = 1.96 * out["std"] / np.sqrt(out["n"].clip(lower=1))
    return out.reset_index()


def _num(values: Any) -> list[float | None]:
    return [None if v is None or (isinstance(v, float) and not np.isfinite(v)) else float(v) for v in values]


# ----------------------------------------------------------------------------------------------------------------
# Experiments
# ----------------------------------------------------------------------------------------------------------------


def compare_figure(df: pd.DataFrame) -> go.Figure:
    """Accuracy on forget / retain / test per method, retrained values as dashed reference lines (Zhang Table 1).

    One colour per method (:func:`method_colour`); the values are in the tooltips and the table, not on the bars
    (three panels of five bars left no room for labels that do not collide)."""
    methods = [m for m in dict.fromkeys(df["method"]) if m != "retrained"]
    fig = make_subplots(rows=1, cols=3, subplot_titles=[f"{s} set" for s in SPLITS], shared_yaxes=True,
                        horizontal_spacing=0.04)
    for j, split in enumerate(SPLITS, start=1):
        col = f"acc_{split}"
        agg = _agg(df, ["method"], col).set_index("method")
        fig.add_bar(x=methods, y=[agg.loc[m, "mean"] for m in methods],
                    error_y=dict(type="data", array=[agg.loc[m, "std"] for m in methods]),
                    marker_color=[method_colour(m) for m in methods], name=split, showlegend=False,
                    hovertemplate=_hover(f"{split}-set accuracy", "%{y:.1%}"), row=1, col=j)
        if "retrained" in agg.index:
            fig.add_hline(y=agg.loc["retrained", "mean"], line=REFERENCE, row=1, col=j,
                          annotation_text="retrained", annotation_position="top left")
        fig.update_xaxes(tickangle=-35, automargin=True, row=1, col=j)
    fig.update_yaxes(title_text="accuracy", tickformat=".0%", range=[0, 1.05], row=1, col=1)
    return _layout(fig, f"Accuracy per method (mean ± sd over seeds; dashed: retrained) — {CLOSER}", height=440)


def compare_time_figure(df: pd.DataFrame) -> go.Figure:
    """Unlearning wall time per method as points on a log axis with decade ticks, each labelled with its ratio to
    the retraining time (the dashed reference line; Zhang Fig. 2). Points, not bars: on a log axis a bar's length
    depends on where the axis is cut."""
    rows = df[~df["method"].isin(["original", "retrained"])]
    agg = _agg(rows, ["method"], "time_s")
    ref = df[df["method"] == "retrained"]["time_s"].dropna()
    retrain = float(ref.mean()) if len(ref) else None

    def ratio(t: float) -> str:
        if retrain is None or not t or not np.isfinite(t):
            return fmt.seconds(t)
        r = retrain / t
        if r >= 1:
            return f"{fmt.seconds(t)}: {fmt.sig(r, 2)}× faster"
        return f"{fmt.seconds(t)}: {fmt.sig(1 / r, 2)}× slower"

    fig = go.Figure(go.Scatter(x=agg["method"], y=agg["mean"], error_y=dict(type="data", array=agg["std"]),
                               mode="markers+text",
                               marker=dict(size=14, color=[method_colour(m) for m in agg["method"]]),
                               text=[ratio(t) for t in agg["mean"]], textposition="top center",
                               hovertemplate=_hover("unlearning time", "%{y:.3g} s"), name="unlearning time"))
    if retrain is not None:
        _reference_line(fig, retrain, f"retrain {fmt.seconds(retrain)}", log=True)
    fig.update_xaxes(tickangle=-35, automargin=True)
    _log_axis(fig, "wall time (s, log scale)", values=[*agg["mean"], retrain])
    return _layout(fig, "Unlearning time vs retraining (dashed) — lower is better; the ratio to retraining is "
                        "written by each point", showlegend=False)


def compare_mia_figure(df: pd.DataFrame, *, columns: Sequence[str] | None = None) -> go.Figure:
    """Membership-inference scores per method; the retrained model's score is the dashed target line.

    Below the line is over-unlearning (the forget set stands out as *too* unfamiliar), above it under-unlearning.
    A panel without the original's bar says why on the chart (the posterior-difference attack compares a model's
    outputs with the original's, so it has no score for the original itself).
    """
    if columns is None:
        columns = [c for c in ("mia_loss_auc", "mia_posterior_auc", "mia_svc_forget_nonmember_rate") if c in df]
    columns = list(columns)
    methods = [m for m in dict.fromkeys(df["method"]) if m != "retrained"]
    def has_original(col: str) -> bool:
        values = pd.to_numeric(df.loc[df["method"] == "original", col], errors="coerce") if col in df else []
        return "original" not in methods or bool(len(values) and np.isfinite(values).any())

    # A panel without the original's bar says why in its title (never over the bars).
    titles = [_wrap(MIA_SCORES.get(c.removeprefix("mia_"), c.removeprefix("mia_").replace("_", " ")), 26)
              + ("" if has_original(c) else "<br>(original = its reference)") for c in columns]
    fig = make_subplots(rows=1, cols=max(1, len(columns)), horizontal_spacing=0.06, subplot_titles=titles)
    for j, col in enumerate(columns, start=1):
        agg = _agg(df, ["method"], col).set_index("method")
        shown = [m for m in methods if m in agg.index and np.isfinite(agg.loc[m, "mean"])]
        fig.add_bar(x=shown, y=[agg.loc[m, "mean"] for m in shown],
                    error_y=dict(type="data", array=[agg.loc[m, "std"] for m in shown]),
                    marker_color=[method_colour(m) for m in shown], name=col, showlegend=False,
                    hovertemplate=_hover(MIA_SCORES.get(col.removeprefix("mia_"), col), "%{y:.3f} (0–1)"),
                    row=1, col=j)
        if "retrained" in agg.index and np.isfinite(agg.loc["retrained", "mean"]):
            fig.add_hline(y=agg.loc["retrained", "mean"], line=REFERENCE, row=1, col=j, annotation_text="retrained",
                          annotation_position="top left")
        fig.update_xaxes(tickangle=-35, automargin=True, row=1, col=j)
    fig.update_yaxes(range=[0, 1.05])
    fig.update_yaxes(title_text="attack score (AUC or rate)", row=1, col=1)
    return _layout(fig, f"Membership inference (held-out) — {CLOSER}; below it is over-unlearning", height=440)


def _accuracy_lines(fig: go.Figure, df: pd.DataFrame, *, x: str, col: int, reference: str) -> None:
    """Mean ± std accuracy per split against ``x`` in subplot (1, col), with the retrained test accuracy dashed and,
    where the method reports it, the test accuracy before its noise (dotted: what the noise costs)."""
    colours = {"forget": "#c2255c", "retain": "#5c940d", "test": "#212529"}
    for split in SPLITS:
        if f"acc_{split}" in df:
            a = _agg(df, [x], f"acc_{split}")
            fig.add_scatter(x=a[x], y=a["mean"], error_y=dict(type="data", array=a["std"]),
                            mode="lines+markers", name=f"{split} accuracy", line=dict(color=colours[split]),
                            hovertemplate=f"{x} %{{x:g}}<br>{split} accuracy: %{{y:.1%}}<extra></extra>",
                            row=1, col=col)
    if "acc_test_noiseless" in df and pd.to_numeric(df["acc_test_noiseless"], errors="coerce").notna().any():
        a = _agg(df, [x], "acc_test_noiseless")
        fig.add_scatter(x=a[x], y=_num(a["mean"]), mode="lines+markers", name="test accuracy before noise",
                        line=dict(color=colours["test"], dash="dot"),
                        hovertemplate=f"{x} %{{x:g}}<br>test accuracy before the noise: %{{y:.1%}}<extra></extra>",
                        row=1, col=col)
    if "acc_test_retrained" in df:
        fig.add_hline(y=float(df["acc_test_retrained"].mean()), line=REFERENCE, row=1, col=col,
                      annotation_text=reference, annotation_position="bottom left")


def _infinity_marks(fig: go.Figure, df: pd.DataFrame, *, x: str, col: int, log_x: bool = False) -> None:
    """Where the bound is infinite, say so on the chart at that x (top of the subplot): "Δ = ∞", with its cause in
    the tooltip, instead of a silent gap in the line (the table gives the same cause in words)."""
    if "delta_bound" not in df or "status" not in df:
        return
    if "delta_bound_infinite" in df:  # the rows say which bounds are infinite (a method without Δ has none)
        infinite = df[df["delta_bound_infinite"].map(lambda v: v in (True,))]
    else:
        bound = pd.to_numeric(df["delta_bound"], errors="coerce")
        infinite = df[bound.isna() & df["status"].notna()]
    for value, part in infinite.groupby(x, sort=True):
        causes = [c for c in (*part.get("why_infinite", []), *part.get("why_not_certified", [])) if isinstance(c, str)]
        cause = causes[0] if causes else "not certified"
        xref = "x" if col == 1 else f"x{col}"
        yref = "y domain" if col == 1 else f"y{col} domain"
        fig.add_annotation(x=math.log10(float(value)) if log_x else float(value), xref=xref, y=1.0, yref=yref,
                           text="Δ = ∞", hovertext=fmt.infinite(cause), showarrow=False, yanchor="top",
                           font=dict(color="#c92a2a", size=11))


def sequential_figure(df: pd.DataFrame) -> go.Figure:
    """Per request k: retain-gradient norm, Δ bound and actual error, accuracy vs retrained (Zhang Fig. 3).

    Requests are integers (ticks 1, 2, 3 …); a request whose bound is infinite is marked "Δ = ∞" with its cause."""
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.1,
                        subplot_titles=("gradient norm before<br>each request", "bound Δ and actual<br>error",
                                        "accuracy of the<br>release"))
    g = _agg(df, ["step"], "grad_norm")
    fig.add_scatter(x=g["step"], y=g["mean"], error_y=dict(type="data", array=g["std"]), mode="lines+markers",
                    name="gradient norm", line=dict(color="#495057"),
                    hovertemplate="request %{x}<br>‖∇L(w, D_r)‖: %{y:.3g}<extra></extra>", row=1, col=1)
    logged: list[float | None] = list(g["mean"])
    for col, name, colour in (("delta_bound", "bound Δ", "#805ad5"), ("approx_error", "actual error", "#d9480f"),
                              ("released_to_retrained", "released − retrained", "#868e96")):
        if col in df and pd.to_numeric(df[col], errors="coerce").notna().any():
            a = _agg(df, ["step"], col)
            fig.add_scatter(x=a["step"], y=_num(a["mean"]), mode="lines+markers", name=name,
                            line=dict(color=colour),
                            hovertemplate=f"request %{{x}}<br>{name}: %{{y:.3g}} (ℓ2, parameters)<extra></extra>",
                            row=1, col=2)
    _infinity_marks(fig, df, x="step", col=2)
    _accuracy_lines(fig, df, x="step", col=3, reference="retrained (all requests), test")
    steps = sorted({int(v) for v in pd.to_numeric(df["step"], errors="coerce").dropna()})
    fig.update_xaxes(title_text="request k", tickmode="array", tickvals=steps, ticktext=[str(k) for k in steps],
                     range=[min(steps, default=1) - 0.3, max(steps, default=1) + 0.3])
    _log_axis(fig, "‖∇L‖ (log)", values=logged, row=1, col=1)
    distances = [v for c in ("delta_bound", "approx_error", "released_to_retrained") if c in df
                 for v in pd.to_numeric(df[c], errors="coerce").dropna()]
    _log_axis(fig, "ℓ2 distance (log)", values=distances, row=1, col=2)
    fig.update_yaxes(title_text="accuracy", tickformat=".0%", range=[0, 1.05], row=1, col=3)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.25, x=0))
    return _layout(fig, f"Sequential unlearning — gradient norm and error: lower is better; accuracy: {CLOSER}",
                   height=460)


def sensitivity_figure(df: pd.DataFrame) -> go.Figure:
    """Bound Δ, σ required, actual error and accuracy against the swept hyperparameter (Zhang Fig. 4); a value
    whose bound is infinite is marked "Δ = ∞" with its cause (the certificate's failing condition)."""
    param = str(df["param"].iloc[0]) if "param" in df and len(df) else "value"
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=("bound, noise and actual error", "accuracy of the release"))
    logged: list[float] = []
    for col, name, colour in (("delta_bound", "bound Δ", "#805ad5"), ("sigma_required", "σ required", "#c92a2a"),
                              ("sigma_used", "σ used (dashed: equal to σ required when certified)", "#e67700"),
                              ("approx_error", "actual ‖w̃ − w̃*‖ (before noise)", "#d9480f"),
                              ("dist_to_retrained", "‖w⁻ − w̃*‖ (after noise)", "#868e96")):
        if col in df and pd.to_numeric(df[col], errors="coerce").notna().any():
            a = _agg(df, ["value"], col)
            values = _num(a["mean"])
            if col == "sigma_used" and not any(v for v in values if v):
                continue  # no noise added at any value: nothing to draw on a log axis
            logged += [v for v in values if v]
            fig.add_scatter(x=a["value"], y=values, mode="lines+markers", name=name,
                            line=dict(color=colour, dash="dash" if col == "sigma_used" else None),
                            hovertemplate=f"{param} %{{x:g}}<br>{name.split(' (')[0]}: %{{y:.3g}}<extra></extra>",
                            row=1, col=1)
    _infinity_marks(fig, df, x="value", col=1, log_x=True)
    _accuracy_lines(fig, df, x="value", col=2, reference="retrained, test")
    fig.update_xaxes(title_text=f"{param} (log scale)", type="log")
    _log_axis(fig, "ℓ2 distance / noise std (log)", values=logged, row=1, col=1)
    fig.update_yaxes(title_text="accuracy", tickformat=".0%", range=[0, 1.05], row=1, col=2)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.22, x=0))
    return _layout(fig, f"Sensitivity to {param} — bound and error: lower is better; accuracy: {CLOSER}",
                   height=480)


def bound_vs_actual_figure(df: pd.DataFrame) -> go.Figure:
    """Certified bound Δ against the actual error ‖w̃ − w̃*‖, one point per row, with the diagonal y = x.

    Every point must lie above the diagonal (the bound holds); its height above it is the bound's slack.
    """
    d = df.assign(delta_bound=pd.to_numeric(df["delta_bound"], errors="coerce"),
                  approx_error=pd.to_numeric(df["approx_error"], errors="coerce")).dropna(
        subset=["delta_bound", "approx_error"])
    label = d["value"].map(lambda v: f"{v:g}") if "value" in d else d.index.astype(str)
    fig = go.Figure(go.Scatter(x=d["approx_error"], y=d["delta_bound"], mode="markers+text", text=label,
                               textposition="top center", name="runs", marker=dict(size=10),
                               hovertemplate="value %{text}<br>actual error: %{x:.3g}<br>bound Δ: %{y:.3g} "
                                             "(ℓ2, parameters)<extra></extra>"))
    values = [*d["approx_error"], *d["delta_bound"]]
    if len(d):
        lo = float(min(d["approx_error"].min(), d["delta_bound"].min()))
        hi = float(max(d["approx_error"].max(), d["delta_bound"].max()))
        fig.add_scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="bound = actual", line=dict(dash="dot"),
                        hoverinfo="skip")
    _log_axis(fig, "actual error ‖w̃ − w̃*‖ to the retrained model (ℓ2, log)", axis="x", values=values)
    _log_axis(fig, "certified bound Δ (ℓ2, log)", values=values)
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
                        line=REFERENCE if is_ref else dict(color=method_colour(str(method))),
                        hovertemplate=f"{method}, %{{x}} epochs<br>test accuracy: %{{y:.1%}}<extra></extra>")
    fig.update_xaxes(title_text="unlearning budget (epochs over D_r)")
    fig.update_yaxes(title_text="test accuracy (fraction)", range=[0, 1.05])
    return _layout(fig, "Accuracy vs unlearning budget (±1.96·SE; dashed: retraining with the same budget) — "
                        "higher is better")


def _audit_groups(df: pd.DataFrame) -> tuple[list[str], pd.DataFrame]:
    """One group per (method, σ factor) in first-seen order, with a readable label; numbers averaged over seeds."""
    d = df.copy()
    d["group"] = [f"{m}<br>σ × {f:g}" for m, f in zip(d["method"], d["sigma_factor"], strict=True)]
    return list(dict.fromkeys(d["group"])), d


def audit_epsilon_figure(df: pd.DataFrame) -> go.Figure:
    """Per certified method and σ: the audit's ε lower bound beside the claimed ε and the certified ε.

    A lower bound above the claimed (or certified) ε refutes it; below, it refutes nothing and confirms nothing.
    The y axis stops a little above the largest ε the runs could show (``epsilon_lower_cap``); certified ε values
    beyond it (an under-noised σ certifies an enormous ε) are clipped and written on the bar.
    """
    groups, d = _audit_groups(df)

    def mean(col: str) -> list[float | None]:
        a = _agg(d, ["group"], col).set_index("group")
        return [float(a.loc[g, "mean"]) if g in a.index and np.isfinite(a.loc[g, "mean"]) else None for g in groups]

    lower, cap, claimed, cert = mean("epsilon_lower"), mean("epsilon_lower_cap"), mean("epsilon"), mean(
        "epsilon_certified")
    top = 1.3 * max([v for v in (*cap, *claimed, *lower) if v is not None] + [1.0])
    fig = go.Figure()
    fig.add_bar(x=groups, y=[None if v is None else min(v, top) for v in cert], name="ε certified at this σ",
                marker_color=COLOURS["original"], text=[None if v is None else f"{v:.3g}" for v in cert],
                textposition="outside")
    fig.add_bar(x=groups, y=lower, name="ε lower bound (audit, Clopper–Pearson)", marker_color=COLOURS["unlearned"],
                text=[None if v is None else f"{v:.2f}" for v in lower], textposition="outside")
    fig.add_scatter(x=groups, y=claimed, mode="markers", name="claimed ε (target)",
                    marker=dict(symbol="line-ew-open", size=40, line=dict(width=3, color="#111")))
    fig.add_scatter(x=groups, y=cap, mode="markers", name="largest ε these runs can show",
                    marker=dict(symbol="line-ew-open", size=40, line=dict(width=2, color=COLOURS["retrained"],
                                                                                 dash="dot")))
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="certified method and audited σ (factor × the σ it certifies with)")
    fig.update_yaxes(title_text="ε (nats; clipped above the runs' cap)", range=[0, top])
    return _layout(fig, "Audit vs the noisy retrain: a lower bound above the claimed ε refutes it; below, it "
                        "refutes nothing (never a confirmation)", height=440)


def has_lira(df: pd.DataFrame) -> bool:
    """Whether audit rows carry the LiRA and per-example ε columns (they need ≥ 3 runs per arm)."""
    return "lira_auc" in df and pd.to_numeric(df["lira_auc"], errors="coerce").notna().any()


def audit_attacks_figure(df: pd.DataFrame) -> go.Figure:
    """Per-example ε (Triantafillou et al.) and offline LiRA AUC, each beside its value for the noisy retrain.

    The reference bars are what identical distributions give with as many models (per-example ε between two
    halves of the noisy retrain; LiRA on the noisy retrain itself): the measured bar should sit at it.
    """
    groups, d = _audit_groups(df)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("per-example ε (median over the forget set)",
                                                        "offline LiRA AUC (forget vs test)"))
    for j, (col, ref, name) in enumerate((("pe_epsilon_median", "pe_epsilon_median_null", "ε̂"),
                                          ("lira_auc", "lira_auc_reference", "AUC")), start=1):
        for c, label, colour in ((col, f"unlearned vs noisy retrain ({name})", COLOURS["unlearned"]),
                                 (ref, f"noisy retrain vs itself ({name})", COLOURS["retrained"])):
            if c not in d:
                continue
            a = _agg(d, ["group"], c).set_index("group")
            fig.add_bar(x=groups, y=_num(a.loc[g, "mean"] if g in a.index else None for g in groups), name=label,
                        marker_color=colour, row=1, col=j)
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="ε̂ (nats)", row=1, col=1)
    fig.update_yaxes(title_text="AUC (0.5 = chance)", range=[0, 1.05], row=1, col=2)
    return _layout(fig, f"Per-example ε and LiRA — {CLOSER.replace('retrained', 'the noisy retrain')}", height=420)


def forget_size_figure(df: pd.DataFrame) -> go.Figure:
    """Cost, accuracy and the certificate against the forget-set size n_u; retraining as the dashed reference.

    One colour per method in every panel (:func:`method_colour`), one legend entry per method."""
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.09,
                        subplot_titles=("wall time", "test accuracy", "σ the certificate<br>requires"))
    times: list[float] = []
    sigmas: list[float] = []
    for method in dict.fromkeys(df["method"]):
        rows = df[df["method"] == method]
        ref = method == "retrained"
        name = "retraining (reference)" if ref else method
        line = REFERENCE if ref else dict(color=method_colour(method))
        t = _agg(rows, ["n_forget"], "time_s")
        times += [v for v in _num(t["mean"]) if v]
        fig.add_scatter(x=t["n_forget"], y=_num(t["mean"]), error_y=dict(type="data", array=t["std"]),
                        mode="lines+markers", name=name, legendgroup=name, line=line,
                        hovertemplate=f"n_u = %{{x}}<br>{name}: %{{y:.3g}} s<extra></extra>", row=1, col=1)
        a = _agg(rows, ["n_forget"], "acc_test")
        fig.add_scatter(x=a["n_forget"], y=_num(a["mean"]), error_y=dict(type="data", array=a["std"]),
                        mode="lines+markers", name=name, legendgroup=name, showlegend=False, line=line,
                        hovertemplate=f"n_u = %{{x}}<br>{name}: test accuracy %{{y:.1%}}<extra></extra>",
                        row=1, col=2)
        if "sigma_required" in rows and pd.to_numeric(rows["sigma_required"], errors="coerce").notna().any():
            sg = _agg(rows, ["n_forget"], "sigma_required")
            sigmas += [v for v in _num(sg["mean"]) if v]
            fig.add_scatter(x=sg["n_forget"], y=_num(sg["mean"]), mode="lines+markers", name=name, legendgroup=name,
                            showlegend=False, line=line,
                            hovertemplate=f"n_u = %{{x}}<br>{name}: σ required %{{y:.3g}}<extra></extra>",
                            row=1, col=3)
    sizes = sorted({int(v) for v in pd.to_numeric(df["n_forget"], errors="coerce").dropna()})
    fig.update_xaxes(title_text="forget-set size n_u (points)", tickmode="array", tickvals=sizes,
                     ticktext=[fmt.count(v) for v in sizes], tickangle=0)
    _log_axis(fig, "seconds (log)", values=times, row=1, col=1)
    fig.update_yaxes(title_text="accuracy", tickformat=".0%", range=[0, 1.05], row=1, col=2)
    _log_axis(fig, "σ required (log)", values=sigmas, row=1, col=3)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.22, x=0))
    return _layout(fig, f"Forget-set size — time: lower is better; accuracy: {CLOSER}; σ: lower is better",
                   height=460)


def compare_tradeoff_figure(df: pd.DataFrame) -> go.Figure:
    """Unlearning time against closeness to the retrained model, one point per method: lower-left is better
    (faster and closer).

    Closeness is measured in what the models compute — the Jensen–Shannon divergence of the outputs on the forget
    set to the retrained model's (``js_forget``) — when the rows have it: the parameter distance of a noisy release
    is the noise's, and put the two methods that work at the worst end (issue 20). Without ``js_forget`` the
    parameter distance is used (and the axis says so). The retrained model takes no time to be itself: it is the
    reference *time* (dashed vertical line); a method right of it is slower than retraining.
    """
    rows = df[~df["method"].isin(["original", "retrained"])]
    column = "js_forget" if "js_forget" in df and pd.to_numeric(df["js_forget"], errors="coerce").notna().any() \
        else "dist_to_retrained"
    t = _agg(rows, ["method"], "time_s").set_index("method")
    d = _agg(rows, ["method"], column).set_index("method")
    methods = list(t.index)
    positions = ("top center", "bottom center", "top right", "bottom left", "top left", "bottom right")
    ytitle = ("JS divergence to retrained on the forget set (log)" if column == "js_forget"
              else "‖w − w_retrained‖ (ℓ2 in parameter space, log)")
    what = "JS to retrained (forget set)" if column == "js_forget" else "‖w − w_retrained‖"
    fig = go.Figure(go.Scatter(x=[t.loc[m, "mean"] for m in methods], y=_num(d.loc[m, "mean"] for m in methods),
                               mode="markers+text", text=methods,
                               textposition=[positions[i % len(positions)] for i in range(len(methods))],
                               name="methods", marker=dict(size=13, color=[method_colour(m) for m in methods]),
                               hovertemplate="<b>%{text}</b><br>time: %{x:.3g} s<br>" + what
                                             + ": %{y:.3g}<extra></extra>"))
    original = df[df["method"] == "original"]
    if column in original and pd.to_numeric(original[column], errors="coerce").notna().any():
        value = float(pd.to_numeric(original[column], errors="coerce").mean())
        if value > 0:
            _reference_line(fig, value, "original (did nothing)", log=True, side="right",
                            line=dict(color=COLOURS["original"], dash="dot", width=2))
    ref = df[df["method"] == "retrained"]["time_s"].dropna()
    if len(ref):
        _reference_line(fig, float(ref.mean()), f"retrain {fmt.seconds(ref.mean())}", axis="x", log=True)
    _log_axis(fig, "unlearning wall time (s, log scale)", axis="x",
              values=[*(t.loc[m, "mean"] for m in methods), *(ref.tolist())])
    ys = _num(d.loc[m, "mean"] for m in methods)
    _log_axis(fig, ytitle, values=[v for v in ys if v])
    return _layout(fig, "Time vs closeness to retraining — lower-left is better: faster, and closer to what the "
                        "retrained model computes", showlegend=False)


def _frontier_tooltip(part: pd.DataFrame) -> list[str]:
    """One tooltip per row of a frontier point or candidate: its setting, the ε it ran for, what is certified."""
    out = []
    for _, row in part.iterrows():
        eps_cert = pd.to_numeric(pd.Series([row.get("epsilon_certified")]), errors="coerce").iloc[0]
        certified = f"certified at ε = {eps_cert:.3g}" if pd.notna(eps_cert) else "not certified at any ε"
        out.append(f"{row.get('setting', 'defaults')}<br>run for ε = {float(row.get('epsilon_run', np.nan)):g} — "
                   f"{row.get('status') or ''}; {certified}")
    return out


def frontier_figure(df: pd.DataFrame) -> go.Figure:
    """The privacy–utility frontier: test accuracy (left) and distance to the retrained model (right) against ε.

    One line per certified method through its frontier points (the rows with ``role="frontier"``: at each ε the
    best release certified at that ε or below over the method's grid, mean ± sd over seeds —
    :func:`unlearn_core.experiments.frontier_envelope`), ε on a log axis; the tooltip names each point's setting and
    the ε it was run for. Candidates that no ε of the grid certifies are drawn hollow, grey and labelled "not
    certified" (the best of them per ε), never as the frontier. The retrained model (dashed) and the original
    (dotted) are the references, the band is ± 2 points around retraining, and a star marks the first ε no more
    than 2 points below it (:func:`unlearn_core.verdict.frontier_first_epsilon`).
    """
    from unlearn_core.verdict import THRESHOLDS, frontier_first_epsilon

    points = THRESHOLDS.accuracy_points
    fig = make_subplots(rows=1, cols=2, subplot_titles=("test accuracy of the certified release",
                                                        "‖w − w_retrained‖ (ℓ2, parameters)"))
    role = df["role"] if "role" in df.columns else pd.Series("frontier", index=df.index)
    rows = df[(role == "frontier") & ~df["method"].isin(["original", "retrained"])].assign(
        epsilon=lambda d: pd.to_numeric(d["epsilon"], errors="coerce"))
    candidates = df[role == "candidate"]
    first = frontier_first_epsilon(df)
    methods = list(dict.fromkeys([*rows["method"], *candidates["method"]]))
    for method in methods:
        part = rows[rows["method"] == method]
        colour = method_colour(str(method))  # the same colour as on every other page
        if len(part):
            acc = _agg(part, ["epsilon"], "acc_test").sort_values("epsilon")
            tips = part.drop_duplicates("epsilon").set_index("epsilon").loc[acc["epsilon"]]
            fig.add_scatter(x=acc["epsilon"], y=acc["mean"], error_y=dict(type="data", array=acc["std"]),
                            mode="lines+markers", name=str(method), legendgroup=str(method), line=dict(color=colour),
                            text=_frontier_tooltip(tips.reset_index()),
                            hovertemplate="ε = %{x:g}: test accuracy %{y:.3f}<br>%{text}<extra>" + str(method)
                            + "</extra>", row=1, col=1)
            dist = _agg(part, ["epsilon"], "dist_to_retrained").sort_values("epsilon")
            fig.add_scatter(x=dist["epsilon"], y=_num(dist["mean"]), mode="lines+markers", name=str(method),
                            legendgroup=str(method), showlegend=False, line=dict(color=colour), row=1, col=2)
            mark = first.get(str(method))
            if mark is not None and mark.first is not None:
                eps = mark.first
                y = float(acc.loc[acc["epsilon"] == eps, "mean"].iloc[0])
                text = f"ε = {eps:g}" + ("" if mark.stays else f" (out again at {mark.leaves_at:g})")
                # The label stays inside the plot: to the left of a star at the grid's largest ε.
                side = "bottom left" if eps >= float(acc["epsilon"].max()) else "bottom right"
                fig.add_scatter(x=[eps], y=[y], mode="markers+text", text=[text], textposition=side,
                                marker=dict(symbol="star", size=16, color=colour, line=dict(color="black", width=1)),
                                name=f"{method}: first ε within {100 * points:g} points", legendgroup=str(method),
                                showlegend=False, row=1, col=1)
        # Candidates certified at no ε of the grid: hollow, grey, labelled — visible, never the frontier.
        cand = candidates[candidates["method"] == method]
        if len(cand):
            certified_at = pd.to_numeric(cand["epsilon_certified"], errors="coerce")
            largest = float(pd.to_numeric(candidates["epsilon_run"], errors="coerce").max())
            uncertified = cand[certified_at.isna() | (certified_at > largest * (1 + 1e-9))]
            if len(uncertified):
                mean = (uncertified.assign(acc_test=pd.to_numeric(uncertified["acc_test"], errors="coerce"))
                        .groupby(["epsilon_run", "setting"], sort=False)["acc_test"].mean().reset_index())
                best = mean.sort_values("acc_test").groupby("epsilon_run").tail(1).sort_values("epsilon_run")
                tips = [f"{s}<br>not certified" for s in best["setting"]]
                fig.add_scatter(x=best["epsilon_run"], y=best["acc_test"], mode="markers",
                                marker=dict(symbol="circle-open", size=11, color="#868e96", line=dict(width=2)),
                                name=f"{method} — not certified", legendgroup=str(method), text=tips,
                                hovertemplate="ε = %{x:g}: test accuracy %{y:.3f}<br>%{text}<extra>" + str(method)
                                + "</extra>", row=1, col=1)
    for ref, style in (("retrained", REFERENCE), ("original", dict(color=COLOURS["original"], dash="dot", width=2))):
        values = pd.to_numeric(df.loc[df["method"] == ref, "acc_test"], errors="coerce").dropna()
        if len(values):
            _reference_line(fig, float(values.mean()), ref, line=style, row=1, col=1,
                            side="left" if ref == "retrained" else "right")
            if ref == "retrained":
                fig.add_hrect(y0=float(values.mean()) - points, y1=float(values.mean()) + points,
                              fillcolor=COLOURS["retrained"], opacity=0.1, line_width=0, row=1, col=1)
    original = pd.to_numeric(df.loc[df["method"] == "original", "dist_to_retrained"], errors="coerce").dropna()
    if len(original) and float(original.mean()) > 0:
        _reference_line(fig, float(original.mean()), "original", log=True, row=1, col=2,
                        line=dict(color=COLOURS["original"], dash="dot", width=2))
    fig.update_xaxes(title_text="ε (log scale; larger = weaker privacy)", type="log")
    fig.update_yaxes(title_text="test accuracy (fraction)", range=[0, 1.05], row=1, col=1)
    fig.update_yaxes(title_text="ℓ2 distance (log)", type="log", row=1, col=2)
    return _layout(fig, f"Privacy–utility frontier — the best certified release per ε; hollow: not certified; "
                        f"band: retrained ± {100 * points:g} points; ★ first ε within it", height=440)


def has_mia(df: pd.DataFrame) -> bool:
    """Whether the rows carry membership-inference scores (compare runs with MIA switched on)."""
    return any(str(c).startswith("mia_") for c in df.columns)


def has_bound(df: pd.DataFrame) -> bool:
    """Whether any row has both a finite bound Δ and a measured actual error (else that chart would be empty)."""
    if "delta_bound" not in df or "approx_error" not in df:
        return False
    both = pd.to_numeric(df["delta_bound"], errors="coerce").notna() & pd.to_numeric(
        df["approx_error"], errors="coerce").notna()
    return bool(both.any())


#: The figures of each experiment kind: (title, figure function, predicate on the rows or None = always drawn).
EXPERIMENT_FIGURES: dict[str, tuple[tuple[str, Any, Any], ...]] = {
    "compare": (("Accuracy", compare_figure, None), ("Time vs closeness", compare_tradeoff_figure, None),
                ("Time", compare_time_figure, None), ("Membership inference", compare_mia_figure, has_mia)),
    "sequential": (("Sequential", sequential_figure, None),),
    "sensitivity": (("Sweep", sensitivity_figure, None), ("Bound vs actual", bound_vs_actual_figure, has_bound)),
    "budget": (("Budget", budget_figure, None),),
    "audit": (("Audit", audit_epsilon_figure, None), ("Per-example ε and LiRA", audit_attacks_figure, has_lira)),
    "forget_size": (("Forget-set size", forget_size_figure, None),),
    "frontier": (("Frontier", frontier_figure, None),),
    "evaluate": (("Certified vs attacked", lambda df: _certified_vs_attacked(df), lambda df: _certified_vs_attacked(
        df) is not None),),
}


def _certified_vs_attacked(df: pd.DataFrame) -> go.Figure | None:
    """The field's evaluation figure, which lives in :mod:`unlearn_core.plots_evaluation` (it imports this module)."""
    from unlearn_core.plots_evaluation import certified_vs_attacked_figure

    return certified_vs_attacked_figure(df)


def experiment_figures(kind: str, df: pd.DataFrame) -> dict[str, go.Figure]:
    """The titled figures of an experiment of this ``kind`` that its rows can fill.

    One list for the pages, the Runs page and the CLI's ``--html``, so a stored experiment is drawn exactly as it
    was when it ran, and a chart whose data the run did not compute (MIA off, Δ = ∞) is left out, not drawn empty.
    """
    return {title: make(df) for title, make, applies in EXPERIMENT_FIGURES[kind] if applies is None or applies(df)}


# ----------------------------------------------------------------------------------------------------------------
# Run cards: each function returns None when the card lacks its data
# ----------------------------------------------------------------------------------------------------------------

MIA_SCORES = {"loss_auc": "loss MIA AUC", "posterior_auc": "posterior-difference AUC",
              "svc_forget_nonmember_rate": "SVC: forget called non-member"}


def noiseless_accuracies(card: Mapping[str, Any]) -> dict[str, float] | None:
    """Accuracies of the noise-free estimate w̃ (methods that release estimate + noise report them), else ``None``."""
    acc = diagnostics_from_card(dict(card)).noiseless_accuracy
    return None if acc is None else {s: getattr(acc, s) for s in SPLITS}


def accuracy_bars(card: Mapping[str, Any]) -> go.Figure | None:
    """Accuracy of original / retrained / unlearned on forget, retain and test, retrained values dashed.

    When the method reports the noise-free estimate w̃ (certified Newton), it is drawn too: the gap between
    "unlearned before noise" and "unlearned" is what the certificate's noise costs. Values sit inside the bars
    (hidden where they do not fit, so they never run together) and in the tooltips, in percent.
    """
    models = card.get("models") or {}
    if not models:
        return None
    fig = go.Figure()
    bars = [(name, models.get(name)) for name in ("original", "retrained", "unlearned")]
    noiseless = noiseless_accuracies(card)
    if noiseless is not None:
        bars.insert(2, ("unlearned before noise", {f"acc_{s}": v for s, v in noiseless.items()}))
    for name, m in bars:
        if m is None:
            continue
        fig.add_bar(name=name, x=list(SPLITS), y=[m[f"acc_{s}"] for s in SPLITS],
                    marker_color=COLOURS.get(name, "#f59f00"), text=[fmt.percent(m[f"acc_{s}"], 0) for s in SPLITS],
                    textposition="inside", insidetextanchor="end", textangle=0,
                    hovertemplate=f"{name}<br>%{{x}} set: %{{y:.1%}} accuracy<extra></extra>")
    if models.get("retrained"):
        for i, split in enumerate(SPLITS):
            fig.add_shape(type="line", x0=i - 0.45, x1=i + 0.45, y0=models["retrained"][f"acc_{split}"],
                          y1=models["retrained"][f"acc_{split}"], line=REFERENCE)
    _bar_labels(fig)
    fig.update_xaxes(title_text="evaluation set")
    fig.update_yaxes(title_text="accuracy", tickformat=".0%", range=[0, 1.1])
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.28, x=0))  # below: never over the subtitle
    return _layout(fig, f"Accuracy (dashed: retrained) — {CLOSER}", barmode="group", height=360)


def time_bars(card: Mapping[str, Any]) -> go.Figure | None:
    """Wall time of training, retraining (the reference) and unlearning as points on a log axis with decade ticks,
    the unlearning-to-retraining ratio written beside it: lower is better. (Points, not bars: a bar on a cut log
    axis drew a 1.4× speed-up as ~10×.)"""
    timing = card.get("timing_s") or {}
    names = [k for k in ("train", "retrain", "unlearn") if isinstance(timing.get(k), (int, float)) and timing[k] > 0]
    if "unlearn" not in names:
        return None
    colours = {"train": COLOURS["original"], "retrain": COLOURS["retrained"], "unlearn": COLOURS["unlearned"]}
    labels = [fmt.seconds(timing[k]) for k in names]
    if "retrain" in names:
        ratio = timing["retrain"] / timing["unlearn"]
        labels[names.index("unlearn")] += (f": {fmt.sig(ratio, 2)}× faster" if ratio >= 1
                                           else f": {fmt.sig(1 / ratio, 2)}× slower")
    # The last label leans left so that it stays inside the chart; the dashed line is the retrain point's own level.
    positions = ["top center"] * (len(names) - 1) + ["top left"]
    fig = go.Figure(go.Scatter(x=names, y=[timing[k] for k in names], text=labels, mode="markers+text",
                               textposition=positions, marker=dict(size=14, color=[colours[k] for k in names]),
                               name="wall time", hovertemplate=_hover("wall time", "%{y:.3g} s")))
    if "retrain" in names:
        _reference_line(fig, float(timing["retrain"]), "retrain", log=True, side="right")
    fig.update_xaxes(title_text="stage")
    _log_axis(fig, "wall time (s, log scale)", values=[timing[k] for k in names])
    return _layout(fig, "Unlearning vs retraining time (dashed: retrain) — lower is better", height=340,
                   showlegend=False)


def gradient_norms(card: Mapping[str, Any]) -> go.Figure | None:
    """Retain-gradient norm before and after the step, beside the retrained model's (the stationarity floor), as
    points on a log axis with decade ticks."""
    diag = diagnostics_from_card(dict(card))
    bars = [(name, value, colour) for name, value, colour in (
        ("before (w*)", diag.grad_norm, COLOURS["original"]),
        ("after (w̃)", diag.grad_norm_after, COLOURS["unlearned"]),
        ("retrained (w̃*)", diag.retrained_grad_norm, COLOURS["retrained"]),
    ) if value is not None]
    if not any(name != "retrained (w̃*)" for name, _, _ in bars):
        return None
    names, values, colours = (list(t) for t in zip(*bars, strict=True))
    fig = go.Figure(go.Scatter(x=names, y=values, text=[fmt.sig(v) for v in values], mode="markers+text",
                               textposition="top center", marker=dict(size=14, color=colours), name="gradient norm",
                               hovertemplate=_hover("‖∇L(w, D_r)‖", "%{y:.3g}")))
    if diag.retrained_grad_norm is not None:
        _reference_line(fig, float(diag.retrained_grad_norm), "retrained", log=True)
    fig.update_xaxes(title_text="model")
    _log_axis(fig, "‖∇L(w, D_r)‖ (weight decay included, log)", values=values)
    return _layout(fig, f"Gradient norm on the retain set (dashed: retrained) — {CLOSER}", height=340,
                   showlegend=False)


def lissa_convergence(card: Mapping[str, Any]) -> go.Figure | None:
    """‖v_t‖ per LiSSA repetition against the step t (log y): flattening out = converged, growth = H too small."""
    lissa = diagnostics_from_card(dict(card)).lissa
    if lissa is None or not lissa.norms:
        return None
    fig = go.Figure()
    for r in range(len(lissa.norms[0])):
        fig.add_scatter(x=lissa.norm_steps, y=[row[r] for row in lissa.norms], mode="lines", name=f"rep {r + 1}",
                        line=dict(width=1), hovertemplate=f"repetition {r + 1}, step %{{x}}<br>‖v_t‖: %{{y:.3g}}"
                                                          "<extra></extra>")
    fig.update_xaxes(title_text="LiSSA step t")
    _log_axis(fig, "‖v_t‖ (log scale)", values=[v for row in lissa.norms for v in row])
    title = (f"LiSSA convergence — flat is converged, growth means H is too small (H = {lissa.scale:.4g}, "
             f"{lissa.num_hvps} HVPs)")
    return _layout(fig, title, height=340)


def bound_vs_actual(card: Mapping[str, Any]) -> go.Figure | None:
    """The certified bound Δ beside the actual error ‖w̃ − w̃*‖ before noise, as points on a log axis with decade
    ticks and their ratio written (the bound is worst case: how many times the real error it is).

    ``None`` when the run has no finite bound (an uncertified method, noisy fine-tuning, or an infinite Δ).
    """
    cert = certificate_from_card(dict(card))
    if cert is None or cert.sensitivity is None or not math.isfinite(cert.sensitivity):
        return None
    actual = diagnostics_from_card(dict(card)).approx_error
    if actual is None:
        actual = (card.get("distance") or {}).get("unlearned_to_retrained")
    if actual is None:
        return None
    names = ["bound Δ", "actual ‖w̃ − w̃*‖"]
    values = [float(cert.sensitivity), float(actual)]
    labels = [fmt.sig(values[0]) + (f" ({fmt.sig(values[0] / values[1], 2)}× the actual)" if values[1] > 0 else ""),
              fmt.sig(values[1])]
    fig = go.Figure(go.Scatter(x=names, y=values, text=labels, mode="markers+text", textposition="top center",
                               marker=dict(size=14, color=["#805ad5", COLOURS["unlearned"]]), name="ℓ2 distance",
                               hovertemplate=_hover("ℓ2 distance in parameter space", "%{y:.3g}")))
    _log_axis(fig, "ℓ2 distance in parameter space (log)", values=values)
    fig.update_xaxes(title_text="quantity (retrained model = distance 0)")
    return _layout(fig, "Approximation error: bound vs actual (before noise) — lower is better", height=340,
                   showlegend=False)


def step_curves(card: Mapping[str, Any]) -> go.Figure | None:
    """Every per-step curve the method recorded (loss, gradient and parameter norms, forget accuracy...).

    One panel per metric, one line per phase; a phase has the same colour in every panel, and the legend names each
    phase once. ``None`` when the method records no curve.
    """
    curve = diagnostics_from_card(dict(card)).curve
    if not curve:
        return None
    df = pd.DataFrame([{"phase": c.phase, "step": c.step, "metric": c.metric, "value": c.value} for c in curve])
    metrics = list(dict.fromkeys(df["metric"]))
    phases = list(dict.fromkeys(df["phase"]))
    colours = {phase: (PHASE_COLOURS[i % len(PHASE_COLOURS)]) for i, phase in enumerate(phases)}
    # Two panels a row: the figure takes half of a 1024-px page, and three titles a row ran into each other.
    cols = min(2, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    fig = make_subplots(rows=rows, cols=cols, horizontal_spacing=0.14, vertical_spacing=0.5 / rows if rows > 1 else 0.1,
                        subplot_titles=[_wrap(CURVE_LABELS.get(m, m.replace("_", " ")), 22) for m in metrics])
    shown: set[str] = set()
    for i, metric in enumerate(metrics):
        label = CURVE_LABELS.get(metric, metric.replace("_", " "))
        for phase, part in df[df["metric"] == metric].groupby("phase", sort=False):
            fig.add_scatter(x=part["step"], y=part["value"], mode="lines+markers", name=str(phase),
                            legendgroup=str(phase), showlegend=str(phase) not in shown, row=i // cols + 1,
                            col=i % cols + 1, marker=dict(size=4), line=dict(color=colours[phase]),
                            hovertemplate=f"{phase}, step %{{x}}<br>{label}: %{{y:.3g}}<extra></extra>")
            shown.add(str(phase))
        fig.update_xaxes(title_text="step", row=i // cols + 1, col=i % cols + 1)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.6 / rows, x=0))
    fig.update_annotations(font_size=12)
    return _layout(fig, "Per-step curves of the method (one colour per phase)", height=260 * rows + 60)


#: The colours of the phases of a method's per-step curves (the same phase, the same colour in every panel).
PHASE_COLOURS = ("#d9480f", "#1971c2", "#2f9e44", "#7048e8", "#e67700", "#0c8599")

#: Display names of the curve metrics unlearners record (``Diagnostics.curve``).
CURVE_LABELS = {
    "loss": "mini-batch loss", "grad_norm": "gradient norm", "param_norm": "‖w‖", "clipped": "gradient clipped (1/0)",
    "retain_subsample_loss": "retain loss (fixed subsample)", "retain_subsample_acc": "retain accuracy (subsample)",
    "forget_accuracy": "forget accuracy", "loss_retain": "retain loss", "loss_forget": "forget loss",
    "alpha": "cubic damping α", "step_norm": "step length ‖s‖",
}


def mia_bars(card: Mapping[str, Any]) -> go.Figure | None:
    """Held-out membership-inference scores of original / retrained / unlearned; the retrained bar is the target.

    Scores below the retrained model's are over-unlearning (the forget set stands out as too unfamiliar). The
    posterior-difference attack compares a model's outputs with the original's, so the original has no score there:
    the chart says so where its bar would be.
    """
    mia = card.get("mia")
    if not isinstance(mia, Mapping) or not isinstance(mia.get("unlearned"), Mapping):
        return None
    keys = [k for k in MIA_SCORES if isinstance(mia["unlearned"].get(k), (int, float))]
    if not keys:
        return None
    fig = go.Figure()
    for model in ("original", "retrained", "unlearned"):
        block = mia.get(model)
        if not isinstance(block, Mapping):
            continue
        shown = [k for k in keys if isinstance(block.get(k), (int, float))]
        fig.add_bar(name=model, x=[MIA_SCORES[k] for k in shown], y=[block[k] for k in shown],
                    marker_color=COLOURS[model], text=[fmt.sig(block[k], 2) for k in shown], textposition="inside",
                    insidetextanchor="end", textangle=0,
                    hovertemplate=f"{model}<br>%{{x}}: %{{y:.3f}} (0–1)<extra></extra>")
        if model == "original":
            for k in keys:
                if k not in shown:
                    fig.add_annotation(x=MIA_SCORES[k], y=0.02, text="original:<br>n/a", showarrow=False,
                                       xshift=-28, yanchor="bottom", font=dict(size=10, color=COLOURS["original"]),
                                       hovertext="this attack compares a model's outputs with the original's: it "
                                                 "has no score for the original itself")
    retrained = mia.get("retrained")
    if isinstance(retrained, Mapping):
        for i, k in enumerate(keys):
            if isinstance(retrained.get(k), (int, float)):
                fig.add_shape(type="line", x0=i - 0.45, x1=i + 0.45, y0=retrained[k], y1=retrained[k], line=REFERENCE)
    # The categories in ``keys`` order, so that line i sits on category i. Without it plotly orders categories as
    # the traces first meet them: a score missing from the first trace moved to the end, under another's line.
    fig.update_xaxes(title_text="attack (held-out folds)", categoryorder="array",
                     categoryarray=[MIA_SCORES[k] for k in keys], tickangle=0,
                     tickvals=[MIA_SCORES[k] for k in keys], ticktext=[_wrap(MIA_SCORES[k], 16) for k in keys])
    _bar_labels(fig)
    fig.update_yaxes(title_text="attack score (0–1)", range=[0, 1.1])
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.28, x=0))  # below: never over the subtitle
    return _layout(fig, f"Membership inference (dashed: retrained) — {CLOSER}", barmode="group", height=360)


#: The Explore page's figures, in display order: title → function of one run card.
CARD_FIGURES = {
    "Accuracy": accuracy_bars,
    "Time": time_bars,
    "Gradient norms": gradient_norms,
    "LiSSA convergence": lissa_convergence,
    "Bound vs actual error": bound_vs_actual,
    "Membership inference": mia_bars,
    "Per-step curves": step_curves,
}


def cards_tradeoff(cards: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> go.Figure | None:
    """Several stored runs: unlearning time against the test-accuracy gap to their retrained model (points), lower
    is better on both: lower-left is better. (Not the parameter distance: a noisy release's is the noise's.)"""
    points = []
    for c, label in zip(cards, labels, strict=True):
        models = c.get("models") or {}
        unlearned, retrained = models.get("unlearned") or {}, models.get("retrained") or {}
        t = (c.get("timing_s") or {}).get("unlearn")
        if not t or not isinstance(unlearned.get("acc_test"), (int, float)) or \
                not isinstance(retrained.get("acc_test"), (int, float)):
            continue
        points.append((label, float(t), 100 * abs(unlearned["acc_test"] - retrained["acc_test"]),
                       str((c.get("config") or {}).get("method", ""))))
    if not points:
        return None
    fig = go.Figure(go.Scatter(x=[p[1] for p in points], y=[p[2] for p in points], mode="markers+text",
                               text=[p[0] for p in points], textposition="top center", name="runs",
                               marker=dict(size=12, color=[method_colour(p[3]) for p in points]),
                               hovertemplate="<b>%{text}</b><br>time: %{x:.3g} s<br>test-accuracy gap: "
                                             "%{y:.1f} points<extra></extra>"))
    retrain = [c["timing_s"]["retrain"] for c in cards if (c.get("timing_s") or {}).get("retrain")]
    if retrain:
        _reference_line(fig, float(np.mean(retrain)), "retrain time", axis="x", log=True)
    _log_axis(fig, "unlearning wall time (s, log scale)", axis="x", values=[p[1] for p in points] + retrain)
    fig.update_yaxes(title_text="|test accuracy − retrained| (points)", rangemode="tozero")
    return _layout(fig, "Time vs gap to retraining — lower-left is better", showlegend=False, height=340)


def cards_accuracy(cards: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> go.Figure | None:
    """Several stored runs: forget / retain / test accuracy per run (each run its method's colour), each split's
    retrained value dashed."""
    pairs = [(c, label) for c, label in zip(cards, labels, strict=True) if (c.get("models") or {}).get("unlearned")]
    if not pairs:
        return None
    fig = make_subplots(rows=1, cols=3, subplot_titles=[f"{s} set" for s in SPLITS], shared_yaxes=True,
                        horizontal_spacing=0.04)
    for j, split in enumerate(SPLITS, start=1):
        fig.add_bar(x=[label for _, label in pairs], y=[c["models"]["unlearned"][f"acc_{split}"] for c, _ in pairs],
                    marker_color=[method_colour(str((c.get("config") or {}).get("method", ""))) for c, _ in pairs],
                    name=split, showlegend=False, hovertemplate=_hover(f"{split}-set accuracy", "%{y:.1%}"),
                    row=1, col=j)
        ref = [c["models"]["retrained"][f"acc_{split}"] for c, _ in pairs if c["models"].get("retrained")]
        if ref:
            fig.add_hline(y=float(np.mean(ref)), line=REFERENCE, row=1, col=j, annotation_text="retrained",
                          annotation_position="top left")
        fig.update_xaxes(tickangle=-35, automargin=True, row=1, col=j)
    fig.update_yaxes(title_text="accuracy", tickformat=".0%", range=[0, 1.05], row=1, col=1)
    return _layout(fig, f"Accuracy per run (dashed: retrained) — {CLOSER}", height=400)


