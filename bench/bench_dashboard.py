"""The dashboard's quick demo in a real browser, for several variants side by side (alternating rounds).

For each variant — a checkout of the repository, optionally with extra ``streamlit run`` flags — and each round: a
fresh ``streamlit run app.py`` on a free port with an empty model cache, Chromium (Playwright) opens the page and
the script records the seconds from the server's start to the Quick demo button, to the end of the engine's
warm-up ("Loading the engine…" gone), and from the click on Run to the results. The variants alternate, so each
round measures them under the same machine load; the medians and the ratios to the first variant are printed.

    python bench/bench_dashboard.py --variant new=. --variant "no-config=.|--server.fileWatcherType auto \\
        --runner.postScriptGC true" --rounds 3

Needs /usr/bin/chromium (Debian's package) and Playwright; the quick demo uses the embedded digits, no data directory.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_round(tree: Path, flags: list[str]) -> tuple[float, float, float]:
    """(server start → button, → warm-up done, Run → results) in seconds, for one fresh server."""
    from playwright.sync_api import sync_playwright

    port = _free_port()
    env = {**os.environ, "UNLEARN_CACHE_DIR": tempfile.mkdtemp(prefix="bench-dashboard-")}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address",
         "127.0.0.1", "--server.headless", "true", *flags],
        cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as resp:
                    if resp.read().decode().strip() == "ok":
                        break
            except OSError:
                time.sleep(0.2)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 4200})
            page.goto(url, wait_until="domcontentloaded")
            page.get_by_role("button", name="Quick demo").wait_for(timeout=300_000)
            button = time.perf_counter() - start
            page.get_by_text("Loading the engine").wait_for(state="detached", timeout=300_000)
            page.wait_for_timeout(300)
            ready = time.perf_counter() - start
            page.get_by_role("button", name="Quick demo").click()
            page.wait_for_timeout(1500)
            clicked = time.perf_counter()
            page.get_by_role("button", name="Run", exact=True).click()
            page.get_by_role("heading", name="Results: ").wait_for(timeout=300_000)
            results = time.perf_counter() - clicked
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return button, ready, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", action="append", required=True, metavar="LABEL=PATH[|FLAGS]",
                        help="a checkout (and optional streamlit flags after '|'); repeat for each variant")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    variants = []
    for item in args.variant:
        label, _, rest = item.partition("=")
        path, _, flags = rest.partition("|")
        variants.append((label, Path(path).resolve(), flags.split()))
    results: dict[str, list[tuple[float, float, float]]] = {label: [] for label, _, _ in variants}
    for r in range(args.rounds):
        for label, tree, flags in variants:
            load = os.getloadavg()[0]
            button, ready, run = one_round(tree, flags)
            results[label].append((button, ready, run))
            print(f"round {r + 1} {label:<12} button {button:5.1f} s  warm-up done {ready:5.1f} s  "
                  f"Run → results {run:5.1f} s  (load average {load:.1f})", flush=True)
    first = variants[0][0]
    base = statistics.median(x[2] for x in results[first])
    for label, rows in results.items():
        median = statistics.median(x[2] for x in rows)
        print(f"{label:<12} median Run → results {median:5.1f} s ({median / base:.2f}× {first}); "
              f"button {statistics.median(x[0] for x in rows):.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
