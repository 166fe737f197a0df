"""Reliability under load: shared jobs, kill -9, bad input, and speed beside a busy neighbour.

Four parts, each printing what it measured (counts and ratios, never a bare absolute as a verdict):

* ``sessions`` — N browser sessions (Playwright, Chromium) open the same deep link on one server and press Run
  together: one job must serve all of them (the run history holds one run) and every session must show the results.
* ``kill`` — ``python -m unlearn_core train`` killed with SIGKILL at random moments of training and of saving the
  model: every cache entry left must load whole, and after the stale-temp cleanup no ``.tmp`` file may remain.
* ``bad-input`` — the bad-input table of ``tests/test_bad_input.py`` as real processes: exit status 2, one line,
  nothing cached, and how long the refusal took.
* ``speed`` — ``run --method retrain`` on digits end to end (process start to exit) and its time to the first
  progress line, alone and beside a busy neighbour (a process spinning on one core), alternating; plus the ratio.

    python bench/bench_reliability.py all            # or: sessions | kill | bad-input | speed
    python bench/bench_reliability.py sessions --sessions 8
    python bench/bench_reliability.py kill --kills 20
    python bench/bench_reliability.py speed --rounds 5
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _env(cache: Path | str, **extra: str) -> dict[str, str]:
    return {**os.environ, "UNLEARN_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT), **extra}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "unlearn_core", *args]


# ----------------------------------------------------------------------------------------------------------------
# sessions
# ----------------------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_sessions(n: int, timeout_s: float) -> dict:
    """N sessions on one deep link, Run pressed in all: one job, all served."""
    from playwright.sync_api import sync_playwright

    from unlearn_core.service.runstore import RunStore

    cache = Path(tempfile.mkdtemp(prefix="bench-sessions-"))
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true"],
        cwd=ROOT, env=_env(cache), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.2)
        link = (f"{url}/?dataset=digits&model=mlp&hidden=32-32&forget=random:0.1&method=retrain&epochs=40"
                f"&seed={random.randrange(10**6)}")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                         args=["--headless", "--no-sandbox", "--disable-gpu"])
            # One browser context per session, as N people would have (one context's 6-connections-per-host limit
            # would otherwise queue the fifth tab's requests behind four websockets).
            pages = [browser.new_context().new_page() for _ in range(n)]
            for page in pages:
                page.goto(link, wait_until="domcontentloaded")
            for i, page in enumerate(pages):
                try:
                    page.get_by_role("button", name="Run").wait_for(timeout=timeout_s * 1000)
                except Exception:
                    shown = page.locator("body").inner_text(timeout=10_000)
                    raise RuntimeError(f"session {i}: no Run button after {timeout_s:.0f} s; it showed: "
                                       f"{shown[-500:]!r}") from None
            start = time.perf_counter()
            for page in pages:
                page.get_by_role("button", name="Run").click()
            served, seconds = 0, []
            for page in pages:
                try:
                    page.get_by_role("heading", name="Results: retrain").wait_for(timeout=timeout_s * 1000)
                    served += 1
                    seconds.append(time.perf_counter() - start)
                except Exception:
                    pass
            browser.close()
        runs = RunStore(cache).list()
        return {"sessions": n, "served": served, "stored_runs": len(runs),
                "seconds_to_results": (min(seconds), max(seconds)) if seconds else None}
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


# ----------------------------------------------------------------------------------------------------------------
# kill -9
# ----------------------------------------------------------------------------------------------------------------


def _check_cache(cache: Path) -> tuple[int, int, int]:
    """(entries that load whole, corrupt entries, .tmp files)."""
    import torch

    ok = corrupt = 0
    for entry in (cache / "models").glob("*/*.pt"):
        try:
            torch.load(entry, map_location="cpu", weights_only=True)["state_dict"]
            ok += 1
        except Exception:
            corrupt += 1
    return ok, corrupt, len(list((cache / "models").glob("*/*.tmp")))


def bench_kill(kills: int, seed: int) -> dict:
    """SIGKILL ``train`` at random moments; a 4096-4096 MLP so that saving (≈ 70 MB) takes a measurable while."""
    from unlearn_core.cache import ModelCache

    rng = random.Random(seed)
    cache = Path(tempfile.mkdtemp(prefix="bench-kill-"))
    argv = _cli("train", "--dataset", "digits", "--model", "mlp", "--hidden", "4096-4096", "--epochs", "2", "--quiet")
    start = time.perf_counter()  # one uninterrupted run: how long a whole one takes here
    subprocess.run([*argv, "--seed", "999"], env=_env(cache), check=True, capture_output=True)
    whole = time.perf_counter() - start
    during_save = during_training = corrupt_total = 0
    for i in range(kills):
        litter = set((cache / "models").glob("*/*.tmp"))  # earlier kills' (younger than a minute: kept)
        proc = subprocess.Popen([*argv, "--seed", str(i)], env=_env(cache), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        if i % 2 == 0:  # a random moment of the whole run (mostly training)
            time.sleep(rng.uniform(0.3 * whole, 0.95 * whole))
        else:  # inside a save: as soon as its temporary file appears, plus 0–30 ms
            deadline = time.time() + 3 * whole
            while proc.poll() is None and time.time() < deadline:
                if set((cache / "models").glob("*/*.tmp")) - litter:
                    time.sleep(rng.uniform(0.0, 0.03))
                    break
                time.sleep(0.002)
        saving = bool(set((cache / "models").glob("*/*.tmp")) - litter)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        during_save += saving
        during_training += not saving and proc.returncode == -signal.SIGKILL
        _, corrupt, _ = _check_cache(cache)
        corrupt_total += corrupt
    ok, corrupt, tmp_left = _check_cache(cache)
    for tmp in (cache / "models").glob("*/*.tmp"):  # as if a minute had passed
        os.utime(tmp, (time.time() - 61,) * 2)
    ModelCache(cache)
    _, _, tmp_after_open = _check_cache(cache)
    return {"kills": kills, "whole_run_s": round(whole, 2), "killed_while_saving": during_save,
            "killed_otherwise": during_training,
            "entries_loading_whole": ok, "corrupt_entries": corrupt_total + corrupt, "tmp_before_reopen": tmp_left,
            "tmp_after_reopen": tmp_after_open}


# ----------------------------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------------------------


def bench_bad_input() -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_bad_input import ISSUE_ROWS, MORE_ROWS  # the one table, shared with the test

    exit2 = one_line = clean = 0
    seconds = []
    failures = []
    for argv, fragments in ISSUE_ROWS + MORE_ROWS:
        with tempfile.TemporaryDirectory() as tmp:
            cache, out = Path(tmp) / "cache", Path(tmp) / "out"
            extra = ["--quiet"]
            if argv[0] in ("run", "train") and "--json" not in argv:
                extra += ["--json", str(out / "card.json")]
            if argv[0] == "experiment" and "--out" not in argv:
                extra += ["--out", str(out)]
            start = time.perf_counter()
            proc = subprocess.run(_cli(*argv, *extra), env=_env(cache), capture_output=True, text=True)
            seconds.append(time.perf_counter() - start)
            ok_line = proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1 and all(
                f in proc.stderr for f in fragments)
            exit2 += proc.returncode == 2
            one_line += ok_line
            clean += not cache.exists() and not out.exists()
            if proc.returncode != 2 or not ok_line:
                failures.append((" ".join(argv)[:60], proc.returncode, proc.stderr[-200:]))
    return {"rows": len(seconds), "exit_2": exit2, "one_line_with_value": one_line, "nothing_written": clean,
            "seconds_median": round(statistics.median(seconds), 2), "seconds_max": round(max(seconds), 2),
            "failures": failures}


# ----------------------------------------------------------------------------------------------------------------
# speed beside a busy neighbour
# ----------------------------------------------------------------------------------------------------------------


def _timed_retrain(cache: Path) -> tuple[float, float]:
    """(seconds to the first progress line on stderr, seconds to exit) of a digits retrain run, empty cache."""
    shutil_cache = Path(tempfile.mkdtemp(dir=cache))
    start = time.perf_counter()
    proc = subprocess.Popen(_cli("run", "--dataset", "digits", "--model", "mlp", "--method", "retrain"),
                            env=_env(shutil_cache), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = None
    for _line in proc.stderr:
        if first is None:
            first = time.perf_counter() - start
    proc.wait()
    total = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"the run failed with status {proc.returncode}")
    return first if first is not None else total, total


def bench_speed(rounds: int) -> dict:
    cache = Path(tempfile.mkdtemp(prefix="bench-speed-"))
    alone, busy = [], []
    for _ in range(rounds):  # alternate, so that a change of the machine's own load hits both sides
        alone.append(_timed_retrain(cache))
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.5)
            busy.append(_timed_retrain(cache))
        finally:
            hog.kill()
            hog.wait()
    med = {name: (statistics.median(t[0] for t in xs), statistics.median(t[1] for t in xs))
           for name, xs in (("alone", alone), ("busy", busy))}
    return {"rounds": rounds, "load_average_1min": round(os.getloadavg()[0], 2),
            "alone_first_line_s": round(med["alone"][0], 2), "alone_total_s": round(med["alone"][1], 2),
            "busy_first_line_s": round(med["busy"][0], 2), "busy_total_s": round(med["busy"][1], 2),
            "busy_over_alone": round(med["busy"][1] / med["alone"][1], 2),
            "all_alone_total_s": [round(t[1], 2) for t in alone], "all_busy_total_s": [round(t[1], 2) for t in busy]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=["all", "sessions", "kill", "bad-input", "speed"])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds a session may wait for its results")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}; 1-min load average at start: {os.getloadavg()[0]:.2f} "
          "(other processes on this machine count: the figures are ratios and counts for that reason)")
    parts = ["sessions", "kill", "bad-input", "speed"] if args.part == "all" else [args.part]
    for part in parts:
        start = time.perf_counter()
        if part == "sessions":
            result = bench_sessions(args.sessions, args.timeout)
        elif part == "kill":
            result = bench_kill(args.kills, args.seed)
        elif part == "bad-input":
            result = bench_bad_input()
        else:
            result = bench_speed(args.rounds)
        print(f"\n[{part}] ({time.perf_counter() - start:.0f} s)")
        for key, value in result.items():
            print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
