"""Self-contained HTML reports: one file that opens offline, with every figure interactive.

The dashboard's "HTML report" download (a run or an experiment) and the CLI's ``experiment ... --html`` both write
their report through :func:`html_document`. Why one writer: the dashboard's report used to embed plotly.js in its
first figure and load it from a CDN in every later one, so a report opened without a network drew its second and
later figures only while the first one's copy happened to be there, and a report saved without its first figure drew
nothing. Here plotly.js is embedded exactly once, in the document's head, before any figure, and no figure asks the
network for anything (no ``<script src>``, no stylesheet, no MathJax: ``include_mathjax=False``).

Everything from a run card is data, never markup: headings and text are escaped by :func:`text`; tables are pandas'
``to_html`` (which escapes cells).
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

#: The minimal style of a report (no external stylesheet or font: it must open offline).
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px;
       padding: 0 1rem; color: #1f2328; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.5rem; text-align: right; }
th { background: #f6f8fa; }
pre { background: #f6f8fa; padding: 0.75rem; overflow-x: auto; font-size: 0.8rem; }
.figure { margin: 0 0 1.5rem; }
"""


def text(value: Any) -> str:
    """``value`` as escaped HTML text (a card's label or note is data, never markup)."""
    return html.escape(str(value))


def json_block(payload: Any) -> str:
    """A JSON payload as an escaped ``<pre>`` block."""
    return f"<pre>{html.escape(json.dumps(payload, indent=2, default=str))}</pre>"


def plotly_js() -> str:
    """plotly.js, minified, as bundled with the installed plotly (the same version the figures were made with)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def figure_html(fig: Any, *, div_id: str) -> str:
    """One figure as a ``<div>`` plus the script that draws it; it expects plotly.js to be loaded already."""
    return fig.to_html(full_html=False, include_plotlyjs=False, include_mathjax=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})


def html_document(title: str, sections: Sequence[tuple[str, str]], figures: Mapping[str, Any] | None = None,
                  *, tail: Sequence[tuple[str, str]] = ()) -> str:
    """A complete, self-contained HTML document.

    Args:
        title: the document's title and first heading (escaped here).
        sections: ``(heading, body)`` pairs in order; ``heading`` is escaped here, ``body`` is HTML the caller built
            from escaped text (:func:`text`, :func:`json_block`, ``DataFrame.to_html``).
        figures: plotly figures by title, drawn after the sections, each under its (escaped) title.
        tail: sections after the figures (e.g. the whole run card).
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{text(title)}</title><style>{STYLE}</style>",
    ]
    figures = dict(figures or {})
    if figures:
        parts.append(f'<script type="text/javascript">{plotly_js()}</script>')
    parts.append(f"</head><body><h1>{text(title)}</h1>")
    for heading, body in sections:
        parts.append(f"<h2>{text(heading)}</h2>{body}")
    for i, (name, fig) in enumerate(figures.items()):
        parts.append(f'<h2>{text(name)}</h2><div class="figure">{figure_html(fig, div_id=f"figure-{i}")}</div>')
    for heading, body in tail:
        parts.append(f"<h2>{text(heading)}</h2>{body}")
    parts.append("</body></html>")
    return "\n".join(parts)
