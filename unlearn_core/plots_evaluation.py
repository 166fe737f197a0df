"""The certified ε against the attacked ε, on one axis: a figure from :func:`unlearn_core.field_evaluation.evaluate`.

One panel per method (and per control), all on the same ε axis: the per-example ε of the NeurIPS 2023 challenge and
of U-LiRA as histograms (bins of 0.5, the challenge's points buckets), the certificate's ε as a solid line (an
*upper* bound), the attacks' bounds on the certified pair as dashed lines (*lower* bounds: the audit's and U-LiRA's
against the noisy retrain). A lower bound right of the upper one is a refuted certificate, shaded red and said in the
panel's title. Estimates beyond the axis (the challenge's cap of 50, ∞) are counted in a last "≥" bin. No Streamlit:
the page passes the figure to ``st.plotly_chart``, the CLI writes it as HTML.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from unlearn_core.certificate import NOT_CERTIFIED
from unlearn_core.challenge_score import BUCKET_WIDTH, max_epsilon
from unlearn_core.plots import _layout
from unlearn_core.refutation import CLAIM_REFUTED, NEVER_CONFIRMS, REFUTED

HISTOGRAMS = {"challenge_eps": ("challenge ε (per example)", "#6b46c1"),
              "ulira_eps": ("U-LiRA ε (per example)", "#dd6b20")}
LOWER_BOUNDS = {"audit_epsilon_lower": ("audit", "dash"), "ulira_noisy_epsilon_lower": ("U-LiRA", "dot")}
BOUND_COLOUR = "#c53030"
CERTIFIED_LINE = dict(color="#1a202c", width=3)
REFUTED_FILL = "rgba(229, 62, 62, 0.18)"
#: The axis never extends past this ε (a certificate of ε = 1000 is drawn as an arrow at the edge).
AXIS_MAX = 12.0
CONTROL_LABELS = {"original": "original (doing nothing)", "retrained": "retrained (a perfect unlearner)"}


def _finite(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _values(row: pd.Series, column: str) -> np.ndarray | None:
    values = row.get(column)
    if isinstance(values, (list, tuple, np.ndarray)) and len(values):
        return np.asarray(values, dtype=np.float64)
    return None


def _axis_max(df: pd.DataFrame) -> float:
    """Past the last points bucket and every certified ε and bound up to :data:`AXIS_MAX` (a larger one — a
    certificate of ε = 10¹² at a tiny σ — is drawn at the edge with an arrow, not allowed to squash the bars)."""
    top = BUCKET_WIDTH * 4
    models = pd.to_numeric(df.get("models"), errors="coerce") if "models" in df else None
    if models is not None and models.notna().any():
        top = max(top, max_epsilon(int(models.max())) + BUCKET_WIDTH)
    for col in ("epsilon_certified", *LOWER_BOUNDS):
        if col in df:
            values = [v for v in (_finite(x) for x in df[col]) if v is not None and v <= AXIS_MAX]
            if values:
                top = max(top, max(values) * 1.15 + BUCKET_WIDTH)
    return float(min(AXIS_MAX, math.ceil(top / BUCKET_WIDTH) * BUCKET_WIDTH))


def _title(row: pd.Series) -> str:
    name = CONTROL_LABELS.get(str(row["method"]), str(row["method"]))
    status = row.get("status")
    reading = row.get("reading")
    parts = [f"<b>{name}</b>"]
    if isinstance(status, str):
        parts.append(status)
    bounds = [f"{label} ε ≥ {v:.2g}" for col, (label, _) in LOWER_BOUNDS.items()
              if (v := _finite(row.get(col))) is not None]
    if bounds:
        parts.append("lower bounds: " + ", ".join(bounds))
    if reading == REFUTED:
        parts.append("<span style='color:#c53030'><b>CERTIFICATE REFUTED</b></span>")
    elif reading == CLAIM_REFUTED:
        parts.append("<span style='color:#b7791f'>requested ε refuted (the label warned)</span>")
    return " · ".join(parts)


def certified_vs_attacked_figure(df: pd.DataFrame) -> go.Figure | None:
    """Certified ε (upper bound) against attacked ε (lower bounds and per-example estimates), one panel per row of
    ``df`` (methods first, then the controls), on one shared ε axis. ``None`` when no row has anything to draw."""
    if df is None or not len(df):
        return None
    methods = df[df["family"] != "reference"] if "family" in df else df
    controls = df[df["family"] == "reference"] if "family" in df else df.iloc[0:0]
    rows = [r for _, r in pd.concat([methods, controls]).iterrows()
            if any(_values(r, c) is not None for c in HISTOGRAMS) or _finite(r.get("epsilon_certified")) is not None]
    if not rows:
        return None
    top = _axis_max(df)
    edges = np.arange(0.0, top + 1e-9, BUCKET_WIDTH)
    centres = edges[:-1] + BUCKET_WIDTH / 2
    overflow = top + BUCKET_WIDTH / 2
    fig = make_subplots(rows=len(rows), cols=1, shared_xaxes=True, vertical_spacing=min(0.12, 0.35 / len(rows)),
                        subplot_titles=[_title(r) for r in rows])
    shown: set[str] = set()
    for i, row in enumerate(rows, start=1):
        for col, (label, colour) in HISTOGRAMS.items():
            values = _values(row, col)
            if values is None:
                continue
            counts = np.histogram(np.clip(values, 0, top - 1e-9), bins=edges)[0].astype(float)
            beyond = float(np.sum(values >= top))
            counts[-1] -= beyond  # values clipped into the last bin belong to the overflow bar
            y = np.append(counts, beyond) / len(values)
            fig.add_trace(go.Bar(x=np.append(centres, overflow), y=y, name=label, marker_color=colour, opacity=0.75,
                                 width=BUCKET_WIDTH * 0.45,
                                 offset=-BUCKET_WIDTH * 0.45 if col == "challenge_eps" else 0,
                                 legendgroup=col, showlegend=col not in shown,
                                 hovertemplate="ε in [%{x:.2f} ± 0.25): %{y:.0%} of the forget set<extra>" + label
                                 + "</extra>"), row=i, col=1)
            shown.add(col)
        certified = _finite(row.get("epsilon_certified"))
        bounds = {name: (_finite(row.get(col)), dash) for col, (name, dash) in LOWER_BOUNDS.items()}
        best = max((v for v, _ in bounds.values() if v is not None), default=None)
        if certified is not None:
            x = min(certified, top)
            if best is not None and best > certified:
                fig.add_vrect(x0=x, x1=min(best, top), fillcolor=REFUTED_FILL, line_width=0, row=i, col=1)
            word = "certified ε" if row.get("status") != NOT_CERTIFIED else "the bound's ε"
            beyond = certified > top
            fig.add_vline(x=x, line=CERTIFIED_LINE, row=i, col=1,
                          annotation_text=f"{word} = {certified:.3g}" + (" →" if beyond else ""),
                          annotation_position="top left" if beyond else "top right", annotation_font_size=11)
        for value, dash in bounds.values():
            if value is not None:
                fig.add_vline(x=min(value, top), line=dict(color=BOUND_COLOUR, dash=dash, width=2), row=i, col=1)
        fig.update_yaxes(title_text="share", tickformat=".0%", rangemode="tozero", row=i, col=1)
    # Legend entries for the lines (a vline has none).
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line=CERTIFIED_LINE,
                             name="certificate's ε (upper bound)"), row=1, col=1)
    for name, dash in LOWER_BOUNDS.values():
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line=dict(color=BOUND_COLOUR, dash=dash, width=2),
                                 name=f"{name} (lower bound)"), row=1, col=1)
    ticks = [*edges[::2].tolist(), overflow]
    labels = [f"{t:g}" for t in edges[::2]] + [f"≥ {top:g}"]
    fig.update_xaxes(range=[0, top + BUCKET_WIDTH], tickvals=ticks, ticktext=labels)
    fig.update_xaxes(title_text="ε (nats)", row=len(rows), col=1)
    for ann in fig.layout.annotations:  # the panel titles: left-aligned, smaller
        if ann.text and ann.text.startswith("<b>"):
            ann.update(x=0, xanchor="left", font=dict(size=12))
    title = f"Certified ε against attacked ε — {NEVER_CONFIRMS}"
    fig = _layout(fig, title, height=150 + 170 * len(rows), barmode="overlay",
                  legend=dict(orientation="h", yanchor="top", y=-60 / (150 + 170 * len(rows)), x=0, xanchor="left"))
    fig.update_layout(margin=dict(b=110))
    fig.update_traces(marker_line_width=0, selector=dict(type="bar"))
    return fig

