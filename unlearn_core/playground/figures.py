"""The playground's Plotly figures (no streamlit): the data with the three boundaries and the two clouds, and the
guessing game's two clouds.

Trace order and ``customdata`` are part of the contract with the page: every point trace carries
``customdata = [[point number, deleted (0/1)], ...]`` so that a click or a lasso selection names the data set's
points directly (plain lists, like the coordinates: a NumPy array is sent as a typed array and comes back from the
browser as ``{"0": …, "1": …}``); boundary traces skip hover, so a click never selects a line. The layout leaves
``dragmode`` and ``clickmode`` to Streamlit: a click selects a point only while the drag mode is not lasso
(Streamlit then sets ``clickmode="event+select"``), so the lasso is the toolbar's tool, not the default.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from unlearn_core.playground.boundary import Boundary
from unlearn_core.playground.data2d import CLASS_NAMES, WINDOW

#: Colours: the two classes (blue, orange), the three boundaries and the two clouds.
CLASS_COLOURS = ("#1f77b4", "#ff7f0e")
ORIGINAL_COLOUR = "#7f7f7f"
RETRAINED_COLOUR = "#2ca02c"
UNLEARNED_COLOUR = "#9467bd"
CLOUD_OPACITY = 0.35
#: The legend names of the lines (the tests and the browser check read them).
ORIGINAL, RETRAINED, UNLEARNED = "original", "retrained (never saw them)", "unlearned, noise-free"
CLOUD_RETRAINED, CLOUD_UNLEARNED = "cloud: retrained + noise", "cloud: unlearned + noise"


def _cloud_trace(boundaries: Sequence[Boundary], *, name: str, colour: str) -> go.Scatter:
    xs: list[float | None] = []
    ys: list[float | None] = []
    for boundary in boundaries:
        bx, by = boundary.polyline()
        xs += bx
        ys += by
    return go.Scatter(x=xs, y=ys, mode="lines", name=name, line={"color": colour, "width": 1.2},
                      opacity=CLOUD_OPACITY, hoverinfo="skip", legendgroup=name)


def _line_trace(boundary: Boundary, *, name: str, colour: str, dash: str, width: float) -> go.Scatter:
    xs, ys = boundary.polyline()
    return go.Scatter(x=xs, y=ys, mode="lines", name=name, line={"color": colour, "width": width, "dash": dash},
                      hoverinfo="skip")


def _point_traces(points: np.ndarray, labels: np.ndarray, deleted: Sequence[int], *,
                  selectable: bool = True) -> list[go.Scatter]:
    """One trace per class for the kept points, one for the deleted points (✕ in the class colour)."""
    gone = np.zeros(len(points), dtype=bool)
    gone[list(deleted)] = True
    traces = []
    for label in (0, 1):
        idx = np.nonzero((labels == label) & ~gone)[0]
        traces.append(go.Scatter(
            x=points[idx, 0].tolist(), y=points[idx, 1].tolist(), mode="markers", name=f"{CLASS_NAMES[label]} points",
            marker={"color": CLASS_COLOURS[label], "size": 7, "line": {"color": "white", "width": 0.5}},
            customdata=[[int(i), 0] for i in idx], hovertemplate="point %{customdata[0]}<extra>"
            + ("click to delete" if selectable else "") + "</extra>",
            selected={"marker": {"opacity": 1.0}}, unselected={"marker": {"opacity": 1.0}}, showlegend=False,
        ))
    idx = np.nonzero(gone)[0]
    traces.append(go.Scatter(
        x=points[idx, 0].tolist(), y=points[idx, 1].tolist(), mode="markers", name="deleted points",
        marker={"color": [CLASS_COLOURS[int(v)] for v in labels[idx]], "size": 11, "symbol": "x-thin",
                "line": {"width": 2.5, "color": [CLASS_COLOURS[int(v)] for v in labels[idx]]}},
        customdata=[[int(i), 1] for i in idx], hovertemplate="deleted point %{customdata[0]}<extra>"
        + ("click to restore" if selectable else "") + "</extra>",
        selected={"marker": {"opacity": 1.0}}, unselected={"marker": {"opacity": 1.0}},
    ))
    return traces


def _layout(fig: go.Figure, *, height: int, legend: bool, title: str | None = None) -> go.Figure:
    lo, hi = WINDOW
    fig.update_layout(
        height=height, margin={"l": 10, "r": 10, "t": 30 if title else 10, "b": 10}, title=title,
        xaxis={"range": [lo, hi], "showgrid": False, "zeroline": False, "showticklabels": False, "fixedrange": True},
        yaxis={"range": [lo, hi], "showgrid": False, "zeroline": False, "showticklabels": False, "fixedrange": True,
               "scaleanchor": "x", "scaleratio": 1},
        showlegend=legend, legend={"orientation": "h", "yanchor": "top", "y": -0.01, "x": 0, "font": {"size": 11},
                                   "itemwidth": 30, "tracegroupgap": 0},
        plot_bgcolor="#fbfbfb", uirevision="playground",
    )
    return fig


def playground_figure(
    points: np.ndarray,
    labels: np.ndarray,
    deleted: Sequence[int],
    *,
    original: Boundary,
    retrained: Boundary | None,
    unlearned: Boundary | None,
    cloud_unlearned: Sequence[Boundary] = (),
    cloud_retrained: Sequence[Boundary] = (),
    height: int = 470,
) -> go.Figure:
    """The data (kept points by class, deleted ones as ✕), the clouds underneath, the three boundaries on top.

    ``retrained``/``unlearned`` are ``None`` when there is nothing to draw (no point deleted yet, or no noise-free
    model); clouds are drawn only when given.
    """
    fig = go.Figure()
    if cloud_retrained:
        fig.add_trace(_cloud_trace(cloud_retrained, name=CLOUD_RETRAINED, colour=RETRAINED_COLOUR))
    if cloud_unlearned:
        fig.add_trace(_cloud_trace(cloud_unlearned, name=CLOUD_UNLEARNED, colour=UNLEARNED_COLOUR))
    fig.add_trace(_line_trace(original, name=ORIGINAL, colour=ORIGINAL_COLOUR, dash="dash", width=2))
    if retrained is not None:
        fig.add_trace(_line_trace(retrained, name=RETRAINED, colour=RETRAINED_COLOUR, dash="solid", width=3))
    if unlearned is not None:
        fig.add_trace(_line_trace(unlearned, name=UNLEARNED, colour=UNLEARNED_COLOUR, dash="dot", width=3))
    for trace in _point_traces(points, labels, deleted):
        fig.add_trace(trace)
    return _layout(fig, height=height, legend=True)


def game_figure(points: np.ndarray, labels: np.ndarray, deleted: Sequence[int], cloud: Sequence[Boundary], *,
                title: str, height: int = 300) -> go.Figure:
    """One of the game's two clouds over the data (faint), in one neutral colour: nothing says which it is."""
    fig = go.Figure()
    fig.add_trace(_cloud_trace(cloud, name="cloud", colour="#333333"))
    for trace in _point_traces(points, labels, deleted, selectable=False):
        trace.marker.opacity = 0.45 if trace.name != "deleted points" else 1.0
        trace.hoverinfo = "skip"
        trace.hovertemplate = None
        fig.add_trace(trace)
    fig = _layout(fig, height=height, legend=False, title=title)
    fig.update_layout(dragmode=False)
    return fig
