"""The Playground in a real browser: ``streamlit run app.py`` driven by Playwright on Debian's Chromium at 1024 × 768.

A click on a point deletes it: the URL, the deletion count, and the chart — the original boundary is joined by the
retrained and the noise-free unlearned boundaries and by the two clouds — all redraw. Screenshots before and after
the click go to ``test-artifacts/playground/``. Skipped (with the reason) when ``/usr/bin/chromium`` is missing,
except under ``CI=true``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playground_helpers import near_boundary
from skips import skip_or_fail
from timeouts import scaled, scaled_ms

from unlearn_core.playground import engine, figures

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "playground"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if not CHROMIUM.exists():
    skip_or_fail(f"{CHROMIUM} is missing: install Debian's chromium ('apt-get install -y chromium') to run the "
                 "browser test", module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")

#: The chart's trace names, and data coordinates → page pixels, from Plotly's own state.
TRACE_NAMES = "() => document.querySelector('.js-plotly-plot').data.map(t => t.name)"
TRACE_POINTS = """(name) => { const t = document.querySelector('.js-plotly-plot').data.find(t => t.name === name);
  return t ? Array.from(t.x).map((x, i) => [x, t.y[i]]).filter(p => p[0] !== null) : null; }"""
TO_PIXELS = """(pt) => { const gd = document.querySelector('.js-plotly-plot');
  const fl = gd._fullLayout, r = gd.getBoundingClientRect();
  return [r.left + fl._size.l + fl.xaxis.l2p(pt[0]), r.top + fl._size.t + fl.yaxis.l2p(pt[1])]; }"""


@contextlib.contextmanager
def _serve(cache_dir: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env={**os.environ, "UNLEARN_CACHE_DIR": str(cache_dir)}, stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT)
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
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=scaled(15))
        except subprocess.TimeoutExpired:
            proc.kill()


def _idle(page) -> None:
    """Until Streamlit's running indicator is gone, twice (a rerun can follow a run), then let Plotly draw."""
    for _ in range(2):
        page.wait_for_timeout(300)
        page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')",
                               timeout=scaled_ms(180))
    page.wait_for_timeout(700)


def test_a_click_in_chromium_deletes_the_point_and_redraws_the_boundaries_and_the_clouds(tmp_path):
    pg = engine.build_playground("blobs", seed=0, model="logreg")
    target = int(near_boundary(pg, 1)[0])
    x, y = (float(v) for v in pg.data.x_train[target].reshape(2))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with _serve(tmp_path) as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1024, "height": 768})
            page.goto(f"{url}/playground?dataset=blobs&seed=0&model=logreg&deleted=&method=certified_newton"
                      "&p.lam=0.0001", wait_until="domcontentloaded")
            page.wait_for_selector(".js-plotly-plot", timeout=scaled_ms(180))
            _idle(page)
            page.screenshot(path=str(ARTIFACTS / "playground-before-click-1024x768.png"))
            names = page.evaluate(TRACE_NAMES)
            assert figures.ORIGINAL in names and figures.RETRAINED not in names, names
            original = page.evaluate(TRACE_POINTS, figures.ORIGINAL)
            px, py = page.evaluate(TO_PIXELS, [x, y])
            page.mouse.move(px, py)
            page.wait_for_timeout(300)
            start = time.perf_counter()
            page.mouse.click(px, py)
            page.get_by_text("1 point deleted").first.wait_for(timeout=scaled_ms(180))
            _idle(page)
            seconds = time.perf_counter() - start
            page.screenshot(path=str(ARTIFACTS / "playground-after-click-1024x768.png"))
            assert f"deleted={target}&" in page.url or page.url.endswith(f"deleted={target}"), page.url
            names = page.evaluate(TRACE_NAMES)
            for name in (figures.RETRAINED, figures.UNLEARNED, figures.CLOUD_RETRAINED, figures.CLOUD_UNLEARNED,
                         "deleted points"):
                assert name in names, (name, names)
            assert page.evaluate(TRACE_POINTS, figures.ORIGINAL) == original
            assert page.evaluate(TRACE_POINTS, figures.RETRAINED) != original, "the retrained boundary moved"
            assert len(page.evaluate(TRACE_POINTS, "deleted points")) == 1
            assert page.get_by_text("Certificate:").first.is_visible()
            assert page.locator('[data-testid="stException"]').count() == 0
            print(f"playground click → redrawn page: {seconds:.1f} s (load average {os.getloadavg()[0]:.1f})")
        finally:
            browser.close()
