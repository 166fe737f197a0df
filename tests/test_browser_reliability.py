"""Hostile input and offline use, in a real Chromium (issue 24).

* A shared deep link whose values are Markdown (a phishing link, a tracking image, bold text, autolinks,
  shortcodes) and 200 unknown ``p.*`` keys: the warnings show every character as plain text — no link, no image, no
  bold, no request to the link's host — and the unknown keys are one warning.
* The HTML report of a run opens offline: plotly.js is embedded once, every figure draws with the network blocked.

Skipped (with the reason) when ``/usr/bin/chromium`` is missing — except under ``CI=true``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_browser import CHROMIUM, CHROMIUM_ARGS, _serve, sync_api
from timeouts import scaled_ms

pytestmark = pytest.mark.browser

HOSTILE = {
    "lr": "[Your session expired - log in again](https://evil.example/login)",
    "forget": "![t](https://tracker.example/pixel.png)",
    "hidden": "**Certified: yes** www.evil.example admin@evil.example",
    "dataset": ":material/verified: :red[Works] https://evil.example/x",
}


def test_a_hostile_deep_link_shows_plain_text_and_one_warning_for_unknown_keys(tmp_path):
    query = "&".join(f"{k}={sync_api_quote(v)}" for k, v in HOSTILE.items())
    query += "&" + "&".join(f"p.x{i}={i}" for i in range(200))
    requests: list[str] = []
    with _serve(tmp_path) as (url, _), sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1024, "height": 768})
            page.on("request", lambda r: requests.append(r.url))
            page.goto(f"{url}/?method=retrain&{query}", wait_until="domcontentloaded")
            page.get_by_role("button", name="Run").first.wait_for(timeout=scaled_ms(120))
            page.wait_for_timeout(2000)
            alerts = page.locator('[data-testid="stAlertContentWarning"] [data-testid="stMarkdownContainer"]')
            texts = [alerts.nth(i).inner_text().replace("\u2060", "") for i in range(alerts.count())]
            markup = alerts.evaluate_all(
                "els => els.flatMap(e => [...e.querySelectorAll('a, img, strong, em, del, code, "
                "[data-testid=stIconMaterial], .stMarkdownColoredText')].map(x => x.outerHTML))")
            artifacts = Path(__file__).resolve().parents[1] / "test-artifacts"
            artifacts.mkdir(exist_ok=True)
            page.screenshot(path=str(artifacts / "hostile-deep-link.png"))
        finally:
            browser.close()
    assert markup == [], markup  # no link, image, bold, icon or colour came from the URL
    from urllib.parse import urlparse

    hosts = {urlparse(r).hostname for r in requests}
    assert not hosts & {"evil.example", "tracker.example"}, hosts  # no image or link was fetched
    for value in HOSTILE.values():  # each value's own warning holds its characters, as typed
        assert len([t for t in texts if value[:30] in t]) == 1, (value, texts)
    unknown = [t for t in texts if "are not hyperparameters of retrain" in t]
    assert len(unknown) == 1 and "and 197 more" in unknown[0], texts


def sync_api_quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def test_the_html_report_draws_every_figure_offline(tmp_path):
    """The dashboard's report (dashboard/downloads.html_report), opened from disk with every network request refused:
    plotly.js is in the file once, and each figure — the second and later ones too, which used to load plotly from
    a CDN — is drawn. (The figures' content is the plots tests' business; a real experiment's report is checked
    for the same bundle-once, no-CDN property in tests/test_bad_input.py.)"""
    import plotly.graph_objects as go

    from dashboard.downloads import html_report
    from unlearn_core.report import plotly_js

    card = {"config": {"dataset": "digits", "model": "mlp", "method": "retrain"}, "note": "<b>not markup</b>"}
    figures = {"Accuracy": go.Figure(go.Bar(x=["forget", "retain", "test"], y=[0.9, 0.95, 0.93])),
               "Time": go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2], mode="markers")),
               "Gradient norms": go.Figure(go.Scatter(x=[1, 2, 3], y=[1e-1, 1e-2, 1e-3]))}
    path = tmp_path / "report.html"
    text = html_report("offline report", card, figures)
    path.write_text(text)
    assert text.count(plotly_js()) == 1
    blocked: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1024, "height": 768})

            def refuse(route):
                if route.request.url.startswith("file:"):
                    return route.continue_()
                blocked.append(route.request.url)
                return route.abort()

            page.route("**/*", refuse)
            page.goto(path.as_uri(), wait_until="load")
            page.wait_for_function(f"document.querySelectorAll('.plotly-graph-div .main-svg').length >= "
                                   f"{len(figures)}", timeout=scaled_ms(60))
            drawn = page.evaluate("[...document.querySelectorAll('.plotly-graph-div')]"
                                  ".map(d => d.querySelectorAll('.main-svg').length > 0)")
        finally:
            browser.close()
    assert drawn == [True] * len(figures)
    assert blocked == [], blocked  # it asked the network for nothing
