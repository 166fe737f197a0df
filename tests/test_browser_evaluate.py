"""A real-browser test of the Evaluate page's certified-vs-attacked view, at 1024 × 768 (Playwright, Chromium).

A deep link sets output perturbation with σ a hundred-millionth of what ε = 0.1 requires (honestly labelled 'not
certified'), N = 16 models and 4 shadows on a small digits MLP. Run from the browser, the page must show — without a
traceback — the statement that an attack can refute a certificate but never confirm it, the reading that U-LiRA
refutes the *requested* ε as the label warned (not a certificate), the table and the certified-vs-attacked figure.
Screenshots go to ``test-artifacts/``. Skipped when ``/usr/bin/chromium`` is missing, except under ``CI=true``.
"""

from __future__ import annotations

import pytest
from test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, _serve
from timeouts import scaled_ms

sync_api = pytest.importorskip("playwright.sync_api")

LINK = ("/evaluate?dataset=digits&model=mlp&hidden=16&epochs=5&forget=random:0.1&methods=output_perturbation"
        "&models=16&shadows=4&audit=0&scores=challenge,ulira&p.output_perturbation.epsilon=0.1"
        "&p.output_perturbation.C0=100&p.output_perturbation.finetune_epochs=0&p.output_perturbation.sigma=0.0001")


def test_certified_vs_attacked_view(tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    with _serve(tmp_path) as (url, _), sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1024, "height": 768})
            page.goto(url + LINK, wait_until="domcontentloaded")
            run = page.get_by_role("button", name="Run evaluation")
            run.wait_for(timeout=scaled_ms(120))
            page.wait_for_timeout(1500)
            assert run.is_visible() and run.bounding_box()["y"] < 768, "Run is below the fold at 1024 × 768"
            assert page.get_by_text("An attack can refute a certificate, never confirm it.").first.is_visible()
            page.screenshot(path=str(ARTIFACTS / "evaluate-setup.png"))
            run.click()
            warning = page.get_by_text("as the label 'not certified' warned").first
            warning.wait_for(timeout=scaled_ms(300))
            assert page.get_by_text("Traceback").count() == 0
            assert page.get_by_text("output_perturbation — The requested ε = 0.1 is refuted").count() == 1
            warning.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "evaluate-reading.png"))
            chart = page.locator('[data-testid="stPlotlyChart"]').first
            chart.scroll_into_view_if_needed()
            chart.wait_for(timeout=scaled_ms(30))
            assert chart.bounding_box()["width"] <= 1024
            assert page.locator("text=requested ε refuted (the label warned)").count() >= 1  # the panel's title
            page.screenshot(path=str(ARTIFACTS / "evaluate-figure.png"))
        finally:
            browser.close()
