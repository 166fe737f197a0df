"""A real-browser test: ``streamlit run app.py`` driven by Playwright on Debian's Chromium.

Runs the quick demo, waits for the results, checks that the accuracy table and a chart are visible, and saves a
screenshot to ``test-artifacts/``. Skipped (with the reason) when ``/usr/bin/chromium`` is missing — except under
``CI=true``, where CI installs Chromium and a missing browser is a failure.
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

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if not CHROMIUM.exists():
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{CHROMIUM} is missing on CI: install it with 'apt-get install -y chromium'", pytrace=False)
    pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium to run the browser test", allow_module_level=True)

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
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.read().decode().strip() == "ok":
                    break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("streamlit did not become healthy within 60 s")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_quick_demo_in_a_real_browser(server):
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 4200})
            page.goto(server, wait_until="domcontentloaded")
            page.wait_for_selector('[data-testid="stAppViewContainer"]', timeout=60_000)
            page.get_by_role("button", name="Quick demo").click()
            page.wait_for_timeout(1500)
            page.get_by_role("button", name="Run").click()
            results = page.get_by_role("heading", name="Results: ")
            results.wait_for(timeout=180_000)
            page.wait_for_selector('[data-testid="stPlotlyChart"]', timeout=60_000)
            page.wait_for_timeout(1500)  # let the charts draw
            assert page.locator('[data-testid="stDataFrame"]').first.is_visible()
            assert page.locator('[data-testid="stPlotlyChart"]').first.is_visible()
            assert page.locator('[data-testid="stException"]').count() == 0
            page.screenshot(path=str(ARTIFACTS / "explore-quick-demo.png"), full_page=True)
            # the deep link is in the URL
            assert "dataset=digits" in page.url and "method=" in page.url
            page.goto(server + "/learn", wait_until="domcontentloaded")
            page.get_by_text("Calculator: σ from").wait_for(timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "learn.png"), full_page=False)
        finally:
            browser.close()
