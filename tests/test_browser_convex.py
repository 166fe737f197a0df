"""The convex preset in a real browser (issue 19): certified Newton with ``bound=strong_convexity`` is certified at
ε = 1 — every constant a bound — and as accurate as retraining, on Explore at 1024 × 768 in Debian's Chromium.

Skipped (with the reason) where ``/usr/bin/chromium`` is missing, except under ``CI=true`` (see test_browser.py).
"""

from __future__ import annotations

import pytest
from test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, _serve, sync_api
from timeouts import scaled_ms


def test_convex_preset_is_certified_and_useful_in_a_real_browser(tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    with _serve(tmp_path) as (url, _), sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1024, "height": 768})
            page.goto(f"{url}/?preset=newton-approx-retrain-convex", wait_until="domcontentloaded")
            run = page.get_by_role("button", name="Run", exact=True)
            run.wait_for(timeout=scaled_ms(120))
            page.wait_for_timeout(1500)
            run.click()
            try:
                page.get_by_role("heading", name="Results: certified_newton").wait_for(timeout=scaled_ms(300))
            except sync_api.TimeoutError:
                shown = page.locator('[data-testid="stMain"]').inner_text(timeout=scaled_ms(10))
                pytest.fail("no results 300 s after Run; the page showed:\n" + shown[-3000:])
            page.wait_for_timeout(2000)
            card = page.locator('[data-testid^="stAlertContent"]').filter(has_text="every constant a proven bound")
            card.first.wait_for(timeout=scaled_ms(30))
            assert "certified at (ε, δ) = (1, 1e-05)" in card.first.inner_text()
            assert page.locator('[data-testid="stException"]').count() == 0
            text = page.locator('[data-testid="stMain"]').inner_text()
            assert "fits the Δ budget fixed before the request" in text and "Newton step(s)" in text
            page.screenshot(path=str(ARTIFACTS / "explore-convex-preset-1024x768.png"))
        finally:
            browser.close()
