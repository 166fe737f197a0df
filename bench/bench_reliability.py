"""Reliability under load: shared jobs, kill -9, bad input by kinds, broken stores, lifecycle, start-up, the ETA,
and speed beside a busy neighbour.

Parts, each printing what it measured (counts and ratios, never a bare absolute as a verdict):

* ``sessions`` — N browser sessions (Playwright, Chromium) open the same deep link on one server and press Run
  together: one job must serve all of them (the run history holds one run) and every session must show the results.
* ``kill`` — ``python -m unlearn_core train`` killed with SIGKILL at random moments of training and of saving the
  model: every cache entry left must load whole, and after the stale-temp cleanup no ``.tmp`` file may remain.
* ``bad-input`` — the bad-input table of ``tests/test_bad_input.py`` as real processes: exit status 2, one line,
  nothing cached, and how long the refusal took.
* ``speed`` — ``run --method retrain`` on digits end to end (process start to exit) and its time to the first
  progress line, alone and beside a busy neighbour (a process spinning on one core), alternating; plus the ratio.
* ``hostile`` — every kind of bad output target (``--json`` for ``run`` and ``train``; ``--out`` and each output
  file of an experiment), unusable cache directory and broken data file of ``tests/test_bad_input.py``, as real
  processes: exit status 2, one line, nothing written or cached, the target exactly as it was.
* ``store`` — a truncated, garbage, locked run store and a row that is not a JSON object, through ``RunStore``:
  one line naming the file (or the row left out and counted); and a reader's time with a writer's transaction open
  against without (it waited up to 30 s before).
* ``lifecycle`` — SIGTERM to an experiment on worker processes (exit status, seconds to exit, processes left) and
  the time from a command's last line to its exit, ``python -m unlearn_core`` (``exit_now``) against the same
  ``main`` left to the interpreter's ordinary exit, alternating.
* ``startup`` — ``--help`` and the listing commands: seconds and whether torch was imported, against ``python -c
  "import torch"`` in the same window.
* ``restart`` — a real server, a long run started in Chromium, SIGTERM to the server mid-run, a new server on the
  same port: the server's exit status, and whether the reconnected tab says the run was interrupted.
* ``eta`` — a real run through the dashboard's job registry with the estimate made before Run: the ETA at 20 %,
  50 % and 80 % of the run against the true end, with and without the estimate.

    python bench/bench_reliability.py all            # or: sessions | kill | bad-input | speed | hostile | store |
                                                     #     lifecycle | startup | eta | restart
    python bench/bench_reliability.py sessions --sessions 8
    python bench/bench_reliability.py kill --kills 20
    python bench/bench_reliability.py speed --rounds 5
"""

from __future__ import annotations

import argparse
import dataclasses
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


# ----------------------------------------------------------------------------------------------------------------
# hostile input, by kinds (the tables of tests/test_bad_input.py, as real processes)
# ----------------------------------------------------------------------------------------------------------------


def _one_line(proc: subprocess.CompletedProcess, fragments: list[str]) -> bool:
    return (proc.returncode == 2 and proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
            and "Traceback" not in proc.stderr and all(f in proc.stderr for f in fragments))


def bench_hostile() -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    import test_bad_input as t  # the one table of kinds, shared with the tests

    rows, ok, intact, seconds, failures = 0, 0, 0, [], []

    def attempt(label: str, argv: list[str], fragments: list[str], work: Path, cache: Path) -> None:
        nonlocal rows, ok, intact
        before = {p: t._state(p) for p in work.iterdir()}
        start = time.perf_counter()
        proc = subprocess.run(_cli(*argv), env=_env(cache), capture_output=True, text=True)
        seconds.append(time.perf_counter() - start)
        rows += 1
        good = _one_line(proc, fragments)
        ok += good
        same = {p: t._state(p) for p in work.iterdir()} == before and not cache.exists()
        intact += same
        if not (good and same):
            failures.append((label, proc.returncode, proc.stderr[-160:]))

    for kind, make in t.TARGET_KINDS.items():
        for command in ("run", "train"):
            with tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp) / "work"
                work.mkdir()
                try:
                    target, fragments = make(work)
                except BaseException as exc:  # e.g. no right to create a device here
                    failures.append((f"{command} --json {kind}", "skipped", str(exc)[:80]))
                    continue
                attempt(f"{command} --json {kind}", [command, "--json", target, "--quiet", "--epochs", "1"],
                        ["--json", *fragments], work, Path(tmp) / "cache")
    for kind, make in t.OUT_DIR_KINDS.items():
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp) / "work"
            work.mkdir()
            target, fragments = make(work)
            attempt(f"experiment --out {kind}", ["experiment", "compare", "--methods", "retrain", "--out", target,
                                                 "--quiet"], ["--out", *fragments], work, Path(tmp) / "cache")
    for kind, (name, make, fragments) in t.OUT_FILE_KINDS.items():
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out"
            out.mkdir()
            make(out / name)
            attempt(f"experiment output {kind}", ["experiment", "compare", "--methods", "retrain", "--html", "--out",
                                                  str(out), "--quiet"], fragments, out, Path(tmp) / "cache")
    for kind, make in t.CACHE_KINDS.items():
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp) / "work"
            work.mkdir()
            try:
                target, fragments = make(work)
            except BaseException as exc:  # the read-only row is root's to skip
                failures.append((f"--cache-dir {kind}", "skipped", str(exc)[:80]))
                continue
            attempt(f"--cache-dir {kind}", ["run", "--method", "retrain", "--epochs", "1", "--quiet", "--cache-dir",
                                            target], fragments, work, Path(tmp) / "unused-cache")
    return {"rows": rows, "one_line_exit_2": ok, "nothing_written_target_intact": intact,
            "seconds_median": round(statistics.median(seconds), 2) if seconds else None,
            "seconds_max": round(max(seconds), 2) if seconds else None, "failures_or_skips": failures}


# ----------------------------------------------------------------------------------------------------------------
# the run store
# ----------------------------------------------------------------------------------------------------------------


def bench_store() -> dict:
    import sqlite3
    import threading

    from unlearn_core.service.runstore import RunStore, RunStoreError

    card = {"config": {"dataset": "digits", "method": "retrain"}, "models": {}}
    results: dict = {}
    for kind in ("truncated", "garbage", "locked", "bad row"):
        with tempfile.TemporaryDirectory() as tmp:
            store = RunStore(tmp)
            for i in range(40):
                store.save(card, config_hash=f"h{i}")
            holder = None
            if kind == "truncated":
                data = store.path.read_bytes()
                store.path.write_bytes(data[: len(data) // 2])
            elif kind == "garbage":
                store.path.write_bytes(b"garbage" * 1000)
            elif kind == "locked":
                holder = sqlite3.connect(store.path)
                holder.execute("PRAGMA locking_mode=EXCLUSIVE")
                holder.execute("BEGIN EXCLUSIVE")
            else:
                con = sqlite3.connect(store.path)
                con.execute("INSERT INTO runs (id, created, kind, config_hash, card) VALUES ('x', 9e9, 'e', 'h', '3')")
                con.commit()
                con.close()
            start = time.perf_counter()
            try:
                listed = store.list()
                outcome = f"listed {len(listed)}, {len(listed.unreadable)} row(s) left out and counted"
            except RunStoreError as exc:
                text = str(exc)
                outcome = ("one line with the path and what to do" if "\n" not in text and str(store.path) in text
                           and "—" in text else f"UNCLEAR: {text[:100]}")
            except Exception as exc:  # what must not happen
                outcome = f"CRASH: {type(exc).__name__}: {exc}"
            results[kind] = f"{outcome} ({time.perf_counter() - start:.2f} s)"
            if holder is not None:
                holder.rollback()
                holder.close()
    with tempfile.TemporaryDirectory() as tmp:  # a reader beside a writer's open transaction
        store = RunStore(tmp)
        for i in range(200):
            store.save(card, config_hash=f"h{i}")
        alone = []
        for _ in range(5):
            tic = time.perf_counter()
            RunStore(tmp).list()
            alone.append(time.perf_counter() - tic)
        writer = sqlite3.connect(store.path, timeout=30)
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO runs (id, created, kind, config_hash, card) VALUES ('w', 1, 'x', 'h', '{}')")
        beside = []
        for _ in range(5):
            tic = time.perf_counter()
            threading.Thread(target=lambda: RunStore(tmp).list()).start()
            RunStore(tmp).list()
            beside.append(time.perf_counter() - tic)
        writer.rollback()
        writer.close()
    results["reader_alone_s"] = round(statistics.median(alone), 4)
    results["reader_beside_a_writer_s"] = round(statistics.median(beside), 4)
    results["beside_over_alone"] = round(statistics.median(beside) / statistics.median(alone), 2)
    return results


# ----------------------------------------------------------------------------------------------------------------
# lifecycle: SIGTERM, and the exit after the last line
# ----------------------------------------------------------------------------------------------------------------


def _descendants(pid: int) -> set[int]:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_lifecycle import _children

    return _children(pid)


def _lag(argv: list[str], env: dict) -> tuple[float, float]:
    """(seconds to exit after the last output line, total seconds) of a process."""
    import threading

    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    last = [start]

    def pump(stream) -> None:
        for _ in stream:
            last[0] = time.perf_counter()

    threads = [threading.Thread(target=pump, args=(s,)) for s in (proc.stdout, proc.stderr)]
    for thread in threads:
        thread.start()
    proc.wait()
    end = time.perf_counter()
    for thread in threads:
        thread.join()
    return end - last[0], end - start


def bench_lifecycle(rounds: int) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_lifecycle import _alive

    cache = Path(tempfile.mkdtemp(prefix="bench-life-"))
    proc = subprocess.Popen(_cli("experiment", "sensitivity", "--executor", "processes", "--workers", "2", "--values",
                                 "0.001,0.01,0.1,1", "--seeds", "0,1", "--epochs", "300", "--out",
                                 str(cache / "out"), "--quiet"),
                            env=_env(cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    workers: set[int] = set()
    while time.time() < deadline and len(workers) < 2:
        workers = {p for p in _descendants(proc.pid) if b"loky" in Path(f"/proc/{p}/cmdline").read_bytes()}
        time.sleep(0.2)
    everything = _descendants(proc.pid)
    tic = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    to_exit = time.perf_counter() - tic
    time.sleep(5)
    left = _alive(everything)
    fast, slow = [], []
    plain = [sys.executable, "-c", "import sys; from unlearn_core.cli import main; sys.exit(main())"]
    args = ["run", "--method", "retrain", "--epochs", "2"]
    for _ in range(rounds):  # alternate: the machine's load hits both sides
        fast.append(_lag(_cli(*args), _env(cache)))
        slow.append(_lag([*plain, *args], _env(cache)))
    return {"sigterm_exit_status": proc.returncode, "sigterm_last_line": err.strip().splitlines()[-1][:80],
            "sigterm_seconds_to_exit": round(to_exit, 2), "worker_processes_before": len(workers),
            "processes_left_after_5_s": len(left),
            "exit_after_last_line_s (exit_now)": round(statistics.median(t[0] for t in fast), 2),
            "exit_after_last_line_s (ordinary exit)": round(statistics.median(t[0] for t in slow), 2),
            "all_exit_now_lags": [round(t[0], 2) for t in fast], "all_ordinary_lags": [round(t[0], 2) for t in slow]}


def bench_startup(rounds: int) -> dict:
    out: dict = {}
    env = _env(Path(tempfile.mkdtemp(prefix="bench-start-")))
    subprocess.run(_cli("train", "--epochs", "1", "--quiet"), env=env, check=True, capture_output=True)  # listings
    commands = {"import torch": [sys.executable, "-c", "import torch"], "--help": _cli("--help"),
                "datasets": _cli("datasets"), "models": _cli("models"), "methods": _cli("methods"),
                "methods --json": _cli("methods", "--json"), "config --json": _cli("config", "--json"),
                "run --help": _cli("run", "--help")}
    times: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(rounds):
        for name, argv in commands.items():
            tic = time.perf_counter()
            subprocess.run(argv, env=env, check=True, capture_output=True)
            times[name].append(time.perf_counter() - tic)
    for name, argv in commands.items():
        probe = subprocess.run([sys.executable, "-X", "importtime", *argv[1:]], env=env, capture_output=True,
                               text=True)
        torch_in = any(line.rsplit("|", 1)[-1].strip() == "torch" for line in probe.stderr.splitlines())
        out[name] = f"{statistics.median(times[name]):.2f} s, torch {'imported' if torch_in else 'not imported'}"
    return out


def bench_eta(epochs: int) -> dict:
    """One run through the dashboard's job registry (digits MLP, ``epochs`` epochs, certified_newton), twice on an
    empty cache: with the estimate made before Run, and without (the old rule)."""
    import torch

    torch.set_num_threads(1)
    from unlearn_core.device import resolve_device
    from unlearn_core.device_time import calibrate, stage_seconds
    from unlearn_core.pipeline import RunConfig, validate_config
    from unlearn_core.preflight import estimate_run
    from unlearn_core.service.jobs import JobRegistry, warm_imports
    from unlearn_core.service.tasks import run_task
    from unlearn_core.unlearners import get_unlearner

    warm_imports()  # as the dashboard's warm-up does: the first optimizer's lazy imports must not count as training
    out: dict = {}
    for mode in ("with the estimate", "without"):
        cache = tempfile.mkdtemp(prefix="bench-eta-")
        config = RunConfig(dataset="digits", model="mlp", hidden=(256, 256), method="certified_newton",
                           forget="random:0.1", cache_dir=cache,
                           train=dataclasses.replace(RunConfig().train, epochs=epochs))
        params = validate_config(config)
        seconds = stage_seconds(estimate_run(config, get_unlearner(config.method), params),
                                calibrate(resolve_device(config.device)))
        registry = JobRegistry(reap_every_s=None)
        meta = {"prediction": seconds} if mode == "with the estimate" else {}
        start = time.time()
        job = registry.submit("k", run_task(config, key="k", validated=True), label="eta", meta=meta)
        samples = []
        while not job.done:
            eta, _ = job.eta_s()
            samples.append((time.time() - start, eta))
            time.sleep(0.25)
        end = job.finished_at - start
        errors = {}
        for share in (0.2, 0.5, 0.8):
            t, eta = min(samples, key=lambda row: abs(row[0] - share * end))
            errors[f"{share:.0%}"] = None if eta is None else f"{(t + eta - end) / end:+.0%}"
        actual = {stage: round(last - first, 1) for stage, (first, last, _) in job.stage_marks.items()}
        out[mode] = {"true_s": round(end, 1), "predicted_before_run_s": round(sum(seconds.values()), 1),
                     "predicted_by_stage": {k: round(v, 1) for k, v in seconds.items()}, "actual_by_stage": actual,
                     "error_of_the_predicted_end_at": errors}
        registry.shutdown()
    return out


def bench_restart(timeout_s: float) -> dict:
    from playwright.sync_api import sync_playwright

    cache = Path(tempfile.mkdtemp(prefix="bench-restart-"))
    port = _free_port()

    def serve() -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                                 "--server.headless", "true"], cwd=ROOT, env=_env(cache),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(int(timeout_s * 5)):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                    return proc
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the server did not start")

    link = f"http://127.0.0.1:{port}/?dataset=digits&model=mlp&method=retrain&epochs=1000&forget=random:0.1"
    server = serve()
    notice = None
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                         args=["--headless", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1024, "height": 768})
            page.goto(link, wait_until="domcontentloaded")
            run = page.get_by_role("button", name="Run").first
            run.wait_for(timeout=timeout_s * 1000)
            page.wait_for_timeout(3000)
            run.click()
            page.get_by_text("training the original model").first.wait_for(timeout=timeout_s * 1000)
            page.wait_for_timeout(8000)  # a progress record reaches the journal
            tic = time.perf_counter()
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=120)
            stopped = {"server_exit_status": server.returncode, "seconds_to_stop": round(time.perf_counter() - tic, 1)}
            server = serve()
            page.reload(wait_until="domcontentloaded")
            try:
                found = page.get_by_text("was interrupted").first
                found.wait_for(timeout=timeout_s * 1000)
                notice = found.inner_text().replace("\u2060", "")[:200]
            except Exception as exc:
                notice = f"NONE ({type(exc).__name__})"
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=60)
    return {**stopped, "notice_after_restart": notice}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=["all", "sessions", "kill", "bad-input", "speed", "hostile", "store",
                                         "lifecycle", "startup", "eta", "restart"])
    parser.add_argument("--epochs", type=int, default=60, help="eta: epochs of the run (default 60)")
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds a session may wait for its results")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}; 1-min load average at start: {os.getloadavg()[0]:.2f} "
          "(other processes on this machine count: the figures are ratios and counts for that reason)")
    parts = (["sessions", "kill", "bad-input", "speed", "hostile", "store", "lifecycle", "startup", "eta", "restart"]
             if args.part == "all" else [args.part])
    for part in parts:
        start = time.perf_counter()
        if part == "sessions":
            result = bench_sessions(args.sessions, args.timeout)
        elif part == "kill":
            result = bench_kill(args.kills, args.seed)
        elif part == "bad-input":
            result = bench_bad_input()
        elif part == "hostile":
            result = bench_hostile()
        elif part == "store":
            result = bench_store()
        elif part == "lifecycle":
            result = bench_lifecycle(args.rounds)
        elif part == "startup":
            result = bench_startup(args.rounds)
        elif part == "eta":
            result = bench_eta(args.epochs)
        elif part == "restart":
            result = bench_restart(args.timeout)
        else:
            result = bench_speed(args.rounds)
        print(f"\n[{part}] ({time.perf_counter() - start:.0f} s)")
        for key, value in result.items():
            print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
