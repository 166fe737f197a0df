"""The CLI's lifecycle (issue 24): SIGTERM stops an experiment and its worker processes like Ctrl-C does, and a
finished command leaves at once (its clean-up handlers run; the interpreter's slow teardown does not)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from timeouts import scaled

ROOT = Path(__file__).resolve().parents[1]


def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc), zombies excluded."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def test_sigterm_stops_an_experiment_and_every_worker_process(tmp_path) -> None:
    """``kill`` of an experiment on the processes executor used to leave its loky workers running for more than ten
    minutes (holding the caller's pipes). Now SIGTERM is handled like Ctrl-C: the cells stop, the workers go, the
    command exits with 143 and one line, and nothing is written. (Four seeds: the work left after the first
    training must exceed the workers' start-up, or the adaptive executor rightly runs it all in this process.)"""
    out = tmp_path / "out"
    env = {**os.environ, "UNLEARN_CACHE_DIR": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1",
           "UNLEARN_PRESTART": "1"}  # pre-started workers, whatever the machine's load
    proc = subprocess.Popen(
        [sys.executable, "-m", "unlearn_core", "experiment", "sensitivity", "--executor", "processes", "--workers",
         "2", "--values", "0.001,0.01,0.1,1", "--seeds", "0,1,2,3", "--epochs", "300", "--out", str(out)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The workers start with the command (pre-started); wait until cells are running in them: the progress
        # says a cell of the runs has finished.
        deadline = time.time() + scaled(120)
        seen: list[str] = []
        while time.time() < deadline and not any(re.search(r"runs: [1-9]\d*/", line) for line in seen):
            line = proc.stderr.readline()
            assert line, "".join(seen)  # the command ended before any cell ran
            seen.append(line)
        workers = {p for p in _children(proc.pid) if b"loky" in Path(f"/proc/{p}/cmdline").read_bytes()}
        assert len(workers) >= 2, "the workers never started"
        everything = _children(proc.pid)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=scaled(60))
        err = "".join(seen) + err
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1].startswith("error: terminated (SIGTERM)"), err
    assert "Traceback" not in err
    deadline = time.time() + scaled(15)
    while _alive(everything) and time.time() < deadline:
        time.sleep(0.2)
    assert not _alive(everything), f"left running: {_alive(everything)}"
    assert not out.exists() or not any(out.iterdir())


def test_sigterm_while_the_prestarted_workers_import_stops_them_too(tmp_path) -> None:
    """The workers of ``--executor processes`` start before the command has parsed its flags (they import beside
    it): a SIGTERM that arrives then — found with the signal handler installed after the pre-start, which left the
    command dead and its workers holding the caller's pipes — is handled like any other: 143, nothing left."""
    env = {**os.environ, "UNLEARN_CACHE_DIR": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1",
           "UNLEARN_PRESTART": "1"}  # pre-started workers, whatever the machine's load
    proc = subprocess.Popen(
        [sys.executable, "-m", "unlearn_core", "experiment", "sensitivity", "--executor", "processes", "--workers",
         "2", "--values", "0.001,0.01", "--out", str(tmp_path / "out")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + scaled(60)
        workers: set[int] = set()
        while time.time() < deadline and not workers:
            workers = {p for p in _children(proc.pid) if b"loky" in Path(f"/proc/{p}/cmdline").read_bytes()}
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)
        assert workers, "no worker was pre-started"
        everything = _children(proc.pid)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=scaled(60))
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143 and "Traceback" not in err, err
    deadline = time.time() + scaled(15)
    while _alive(everything) and time.time() < deadline:
        time.sleep(0.2)
    assert not _alive(everything), f"left running: {_alive(everything)}"


def test_exit_now_runs_the_clean_up_handlers_and_keeps_the_exit_status(tmp_path) -> None:
    """``python -m unlearn_core`` ends with :func:`unlearn_core.cli.exit_now`: ``atexit`` handlers (executors,
    temporary files) still run and everything printed arrives; only the interpreter's module teardown — 2–5 s
    on a loaded machine, measured by bench/bench_reliability.py ``exit`` — is skipped."""
    marker = tmp_path / "atexit-ran"
    code = (
        "import atexit, sys\n"
        "from unlearn_core.cli import exit_now\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'w').write('yes'))\n"
        "print('last line', flush=False)\n"
        "exit_now(7)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=scaled(60))
    assert proc.returncode == 7 and proc.stdout == "last line\n" and marker.read_text() == "yes"
    main = (ROOT / "unlearn_core" / "__main__.py").read_text()
    assert "exit_now(main())" in main
