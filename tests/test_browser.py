"""A real-browser test: ``streamlit run app.py`` driven by Playwright on Debian's Chromium.

Runs the quick demo (and writes its click-to-results seconds to ``test-artifacts/quick-demo-seconds.txt``),
checks that the accuracy table and a chart are visible, then runs the quick demo on Compare, Sequential and
Sensitivity, and saves a screenshot of every page to ``test-artifacts/``. Skipped (with the reason) when
``/usr/bin/chromium`` is missing — except under ``CI=true``, where CI installs Chromium and a missing browser is a
failure.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from skips import skip_or_fail
from timeouts import scaled, scaled_ms

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if not CHROMIUM.exists():
    skip_or_fail(f"{CHROMIUM} is missing: install Debian's chromium ('apt-get install -y chromium') to run the "
                 "browser test", module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = _free_port()
    env = {**os.environ, "UNLEARN_CACHE_DIR": str(tmp_path_factory.mktemp("browser-cache"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + scaled(60)
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.read().decode().strip() == "ok":
                    break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail(f"streamlit did not become healthy within {scaled(60):.0f} s")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=scaled(15))
    except subprocess.TimeoutExpired:
        proc.kill()


def test_quick_demo_in_a_real_browser(server):
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 4200})
            page.goto(server, wait_until="domcontentloaded")
            page.wait_for_selector('[data-testid="stAppViewContainer"]', timeout=scaled_ms(60))
            page.get_by_role("button", name="Quick demo").click()
            page.wait_for_timeout(1500)
            start = time.perf_counter()  # click → results, on an empty model cache (issue 6: ≤ 15 s on 2 cores)
            page.get_by_role("button", name="Run").click()
            results = page.get_by_role("heading", name="Results: ")
            try:
                results.wait_for(timeout=scaled_ms(180))
            except sync_api.TimeoutError:
                # Say what the page showed instead (a stuck job, an error, a frontend failure), not only "timeout".
                shown = page.locator('[data-testid="stMain"]').inner_text(timeout=10_000)
                pytest.fail(f"no results {scaled(180):.0f} s after Run; the page showed:\n" + shown[-3000:])
            seconds = time.perf_counter() - start
            (ARTIFACTS / "quick-demo-seconds.txt").write_text(f"{seconds:.1f}\n")
            print(f"quick demo: {seconds:.1f} s from Run to results")
            page.wait_for_selector('[data-testid="stPlotlyChart"]', timeout=scaled_ms(60))
            page.wait_for_timeout(1500)  # let the charts draw
            assert page.locator('[data-testid="stDataFrame"]').first.is_visible()
            assert page.locator('[data-testid="stPlotlyChart"]').first.is_visible()
            assert page.locator('[data-testid="stException"]').count() == 0
            page.screenshot(path=str(ARTIFACTS / "explore-quick-demo.png"), full_page=True)
            # the deep link is in the URL
            assert "dataset=digits" in page.url and "method=" in page.url
            page.goto(server + "/learn", wait_until="domcontentloaded")
            page.get_by_text("Calculator: σ from").wait_for(timeout=scaled_ms(60))
            page.screenshot(path=str(ARTIFACTS / "learn.png"), full_page=True)
            _experiment_page(page, server + "/compare?methods=certified_newton,noisy_finetune,finetune,neggrad_plus",
                             "Run comparison", "Results", "compare.png")
            _experiment_page(page, server + "/sequential", "Run requests", "Per request", "sequential.png")
            _experiment_page(page, server + "/sensitivity", "Run sweep", "Results", "sensitivity.png")
            page.goto(server + "/runs", wait_until="domcontentloaded")
            page.get_by_role("heading", name="Reopen a run").wait_for(timeout=scaled_ms(60))
            page.wait_for_timeout(1500)
            assert page.locator('[data-testid="stException"]').count() == 0
            page.screenshot(path=str(ARTIFACTS / "runs.png"), full_page=True)
        finally:
            browser.close()


def _experiment_page(page, url: str, button: str, heading: str, shot: str) -> None:
    """Open an experiment page, load the quick demo, run it and screenshot the results."""
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_role("button", name=button).wait_for(timeout=scaled_ms(60))  # the first run has finished
    page.wait_for_timeout(1000)
    page.get_by_role("button", name="Quick demo").click()
    page.wait_for_timeout(1500)
    page.get_by_role("button", name=button).click()
    try:
        page.get_by_role("heading", name=heading).first.wait_for(timeout=scaled_ms(180))
    except Exception:
        page.screenshot(path=str(ARTIFACTS / shot.replace(".png", "-failed.png")), full_page=True)
        raise
    page.wait_for_selector('[data-testid="stPlotlyChart"]', timeout=scaled_ms(60))
    page.wait_for_timeout(2000)  # let the charts draw
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
