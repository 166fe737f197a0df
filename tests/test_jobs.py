"""The background job registry: dedup, FIFO device queue, progress, cancellation, error capture."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from timeouts import scaled

from unlearn_core.errors import ConfigError
from unlearn_core.progress import Cancelled
from unlearn_core.service.jobs import (
    CANCELLED,
    DONE,
    FAILED,
    LAZY_IMPORTS,
    RUNNING,
    JobRegistry,
    WarmUp,
    job_key,
    warm_imports,
)


@pytest.fixture
def registry():
    reg = JobRegistry()
    yield reg
    reg.shutdown(timeout=scaled(10))


def _wait_until(pred, timeout=10.0):
    deadline = time.time() + scaled(timeout)
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return False


def test_job_key_is_stable_and_order_independent():
    assert job_key({"a": 1, "b": [1, 2]}) == job_key({"b": [1, 2], "a": 1})
    assert job_key({"a": 1}) != job_key({"a": 2})


def test_result_progress_and_fraction(registry):
    def work(progress, cancel):
        for step in range(1, 5):
            progress({"stage": "train", "epoch": step, "epochs": 4, "loss": 1.0 / step, "eta_s": 4 - step})
        return 42

    job = registry.submit("k", work, label="demo")
    registry.wait("k", timeout=scaled(10))
    assert job.state == DONE and job.result == 42
    assert [r["epoch"] for r in job.history] == [1, 2, 3, 4]
    assert job.fraction() == 1.0
    assert job.progress["loss"] == pytest.approx(0.25)


def test_identical_keys_share_one_job(registry):
    calls = []
    gate = threading.Event()

    def work(progress, cancel):
        calls.append(1)
        gate.wait(5)
        return "shared"

    a = registry.submit("same", work)
    b = registry.submit("same", work)
    assert a is b
    gate.set()
    registry.wait("same", timeout=scaled(10))
    c = registry.submit("same", work)  # a finished job is reused, not rerun
    assert c is a and len(calls) == 1 and c.result == "shared"


def test_device_lock_serialises_and_reports_queue_position(registry):
    gate = threading.Event()
    running = []
    overlap = []

    def blocking(progress, cancel):
        running.append("first")
        gate.wait(10)
        running.remove("first")
        return 1

    def second(progress, cancel):
        overlap.append(list(running))
        return 2

    first = registry.submit("first", blocking)
    assert _wait_until(lambda: first.state == RUNNING)
    j2 = registry.submit("second", second)
    j3 = registry.submit("third", second)
    time.sleep(0.1)
    assert registry.queue_position(first) is None
    assert registry.queue_position(j2) == 1 and registry.queue_position(j3) == 2
    assert j2.describe() == "queued"
    gate.set()
    registry.wait("third", timeout=scaled(10))
    registry.wait("second", timeout=scaled(10))
    assert j2.state == DONE and j3.state == DONE
    assert overlap == [[], []]  # neither ran while the first held the device
    assert j2.started_at <= j3.started_at  # FIFO


def test_cancel_running_job(registry):
    def loop(progress, cancel):
        for i in range(10_000):
            if cancel.is_set():
                raise Cancelled("stop")
            progress({"stage": "train", "step": i, "steps": 10_000})
            time.sleep(0.001)
        return "finished"

    job = registry.submit("loop", loop)
    assert _wait_until(lambda: job.progress.get("step", 0) > 3)
    assert registry.cancel("loop")
    registry.wait("loop", timeout=scaled(10))
    assert job.state == CANCELLED and job.result is None
    # resubmitting a cancelled key starts a fresh job
    again = registry.submit("loop", lambda p, c: "second try")
    assert again is not job
    registry.wait("loop", timeout=scaled(10))
    assert again.result == "second try"


def test_cancel_of_a_shared_job_only_detaches_while_another_session_waits(registry):
    gate = threading.Event()

    def work(progress, cancel):
        while not gate.wait(0.01):
            if cancel.is_set():
                raise Cancelled("stop")
        return "done for both"

    job = registry.submit("shared", work, watcher="session-a")
    assert registry.submit("shared", work, watcher="session-b") is job
    assert set(job.watchers) == {"session-a", "session-b"}
    assert not registry.cancel("shared", watcher="session-a")  # b still waits: a only stops watching
    assert not job.cancel_event.is_set() and set(job.watchers) == {"session-b"}
    assert registry.cancel("shared", watcher="session-b")  # the last watcher cancels for real
    registry.wait("shared", timeout=scaled(10))
    assert job.state == CANCELLED
    gate.set()


def test_cancel_queued_job_never_starts(registry):
    gate = threading.Event()
    started = []
    registry.submit("blocker", lambda p, c: gate.wait(10))
    queued = registry.submit("queued", lambda p, c: started.append(1))
    time.sleep(0.1)
    registry.cancel("queued")
    registry.wait("queued", timeout=scaled(10))
    gate.set()
    registry.wait("blocker", timeout=scaled(10))
    assert queued.state == CANCELLED and started == []


def test_user_error_is_one_line_and_bug_keeps_traceback(registry):
    def bad_input(progress, cancel):
        raise ConfigError("dataset 'nope' is not valid: choose one of digits, mnist")

    def bug(progress, cancel):
        raise ZeroDivisionError("division by zero")

    a = registry.submit("a", bad_input)
    b = registry.submit("b", bug)
    registry.wait("a", timeout=scaled(10))
    registry.wait("b", timeout=scaled(10))
    assert a.state == FAILED and a.error == "dataset 'nope' is not valid: choose one of digits, mnist"
    assert a.traceback is None
    assert b.state == FAILED and b.error == "ZeroDivisionError: division by zero"
    assert "Traceback" in b.traceback
    assert a.describe().startswith("failed: dataset 'nope'")


def test_describe_running_label():
    from unlearn_core.service.jobs import Job

    job = Job(key="k", label="x", fn=lambda p, c: None, state=RUNNING)
    job.report({"stage": "retrain", "epoch": 3, "epochs": 20, "loss": 0.5, "eta_s": 7.2})
    # 7.2 s of retraining left, then unlearning, estimated as long as retraining: ≈ 14 s for the whole job
    assert job.describe() == "retraining the oracle on the retain set · epoch 3/20 · loss 0.5000 · about 14 s left"
    assert job.fraction() == pytest.approx(0.15)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_progress_names_the_data_stage_the_request_and_the_method(monkeypatch):
    """Issue 12: "starting 0 %" while MNIST loaded, "unlearning" without the request, "step 0/4" without the method."""
    from unlearn_core.service.jobs import Job

    job = Job(key="k", label="x", fn=lambda p, c: None, state=RUNNING)
    job.report({"stage": "data", "dataset": "mnist"})
    assert job.describe() == "loading the data (mnist)"
    job.report({"stage": "unlearn", "request": 2, "requests": 5, "step": 100, "steps": 500})
    assert job.describe().startswith("unlearning · request 2 of 5 · step 100/500")
    job.report({"stage": "unlearn", "method": "certified_newton", "run": 2, "runs": 4, "step": 1, "steps": 4})
    assert job.describe().startswith("unlearning · certified_newton · run 2 of 4")
    job.report({"stage": "unlearn", "method": "noisy_finetune", "epsilon": 0.3, "run": 1, "runs": 6})
    assert job.describe().startswith("unlearning · noisy_finetune, ε = 0.3 · run 1 of 6")


def _cell(x: int, cancel=None) -> int:
    return x * 2


def test_experiment_cells_say_which_method_runs():
    """Experiments run as cells (unlearn_core.executors): the serial executor reports the label of the cell that
    runs now, and the dashboard's line names it with the cells done and the time left."""
    from unlearn_core.executors import Cell, SerialExecutor
    from unlearn_core.service.jobs import Job

    records: list[dict] = []
    cells = [Cell(_cell, {"x": i}, label=f"seed 0: method {i}") for i in range(3)]
    assert SerialExecutor().map(cells, progress=records.append, phase="runs") == [0, 2, 4]
    assert [r.get("cell") for r in records if r.get("cell")] == [f"seed 0: method {i}" for i in range(3)]
    job = Job(key="k", label="x", fn=lambda p, c: None, state=RUNNING)
    job.report({"stage": "cells", "phase": "runs", "step": 1, "steps": 4, "cell": "seed 0: certified_newton",
                "eta_s": 9.0})
    assert job.describe() == "runs: 1 of 4 done · seed 0: certified_newton · about 9 s left"


def test_the_eta_covers_every_stage_of_a_run(monkeypatch):
    """The time left adds the current stage's remainder and the later stages: retraining ≈ training, unlearning ≈
    retraining; a stage loaded from the cache predicts nothing (then the ETA is a lower bound)."""
    from unlearn_core.service import jobs

    clock = _Clock()
    monkeypatch.setattr(jobs.time, "time", clock)
    job = jobs.Job(key="k", label="x", fn=lambda p, c: None, state=RUNNING)
    job.report({"stage": "data"})  # the training's work starts when the data are in (its first record is later)
    for epoch in range(1, 6):  # 5 of 10 epochs, one second each
        clock.now += 1.0
        job.report({"stage": "train", "epoch": epoch, "epochs": 10})
    eta, complete = job.eta_s()
    assert complete and eta == pytest.approx(5.0 + 10.0 + 10.0)  # train left, retrain ≈ train, unlearn ≈ retrain
    assert job.describe().endswith("about 25 s left")

    cached = jobs.Job(key="c", label="x", fn=lambda p, c: None, state=RUNNING)
    cached.report({"stage": "train", "epoch": 20, "epochs": 20})  # loaded from the cache: no time at all
    clock.now += 0.01
    cached.report({"stage": "retrain", "epoch": 2, "epochs": 20})
    for epoch in range(3, 5):
        clock.now += 0.5
        cached.report({"stage": "retrain", "epoch": epoch, "epochs": 20})
    eta, complete = cached.eta_s()
    left = 1.0 / 0.2 * 0.8  # one second for 20 % of the epochs
    assert complete and eta == pytest.approx(left + (1.0 + left), rel=0.02)  # unlearning ≈ the retraining, whole

    unknown = jobs.Job(key="u", label="x", fn=lambda p, c: None, state=RUNNING)
    unknown.report({"stage": "train", "epoch": 20, "epochs": 20})
    clock.now += 0.01
    unknown.report({"stage": "retrain", "epoch": 20, "epochs": 20})  # both cached
    clock.now += 0.01
    unknown.report({"stage": "noisy", "step": 1, "steps": 10})
    clock.now += 1.0
    unknown.report({"stage": "noisy", "step": 5, "steps": 10})
    eta, complete = unknown.eta_s()
    assert eta == pytest.approx(1.01) and complete  # the method's own stage, by its rate (it began at 0.01 s)

    runs = jobs.Job(key="r", label="x", fn=lambda p, c: None, state=RUNNING)
    runs.report({"stage": "unlearn", "method": "a", "run": 1, "runs": 5})
    clock.now += 20.0
    runs.report({"stage": "unlearn", "method": "b", "run": 3, "runs": 5})
    assert runs.eta_s() == (pytest.approx(30.0), True)  # 10 s per run, 3 runs to go


def test_finished_jobs_are_bounded():
    reg = JobRegistry(max_finished=3)
    for i in range(6):
        reg.submit(f"k{i}", lambda p, c, i=i: i)
        reg.wait(f"k{i}", timeout=scaled(10))
    assert len(reg.jobs()) <= 4
    assert reg.get("k5") is not None and reg.get("k0") is None
    reg.shutdown()


# -- the dashboard's experiment worker (real, tiny: digits, 2 epochs) -------------------------------------------


def _tiny_base():
    from unlearn_core.pipeline import RunConfig
    from unlearn_core.training import TrainConfig

    return RunConfig(dataset="digits", model="mlp", hidden=(16,), forget="random:0.1", method="finetune",
                     train=TrainConfig(epochs=2, batch_size=128, norm_bound=None), device="cpu")


def test_experiment_task_runs_compare_and_stores_it(registry, tmp_path):
    from unlearn_core.service.runstore import RunStore
    from unlearn_core.service.tasks import experiment_task

    store = RunStore(tmp_path)
    base = _tiny_base()
    work = experiment_task("compare", base, seeds=[0, 1], key="exp", store=store, label="finetune",
                           methods=["finetune"], mia=False, relearn=False)
    job = registry.submit("exp", work)
    registry.wait("exp", timeout=scaled(120))
    assert job.state == DONE, job.error
    df = job.result["table"]
    assert sorted(df["seed"].unique()) == [0, 1]
    assert list(df[df["seed"] == 0]["method"]) == ["original", "retrained", "finetune"]
    assert (df[df["method"] == "retrained"]["dist_to_retrained"] == 0).all()  # the reference is itself
    assert {"train", "retrain"} <= {r.get("stage") for r in job.history}  # training went through the progress hook
    stored = store.find("exp")
    assert stored is not None and stored.id == job.result["run_id"] and stored.kind == "compare"
    exp = stored.card["experiment"]
    assert exp["seeds"] == [0, 1] and len(exp["rows"]) == len(df) and exp["columns"] == list(df.columns)


def test_experiment_task_cancels_and_rejects_unknown_kinds(registry):
    from unlearn_core.service.tasks import experiment_task

    with pytest.raises(ConfigError, match="experiment 'budget' is not valid"):
        experiment_task("budget", _tiny_base(), seeds=[0], key="x")
    gate = threading.Event()
    registry.submit("blocker", lambda p, c: gate.wait(10))
    work = experiment_task("sequential", _tiny_base(), seeds=[0], key="seq", method="certified_newton", requests=2)
    job = registry.submit("seq", work)
    job.cancel()  # cancelled while queued: never starts
    gate.set()
    registry.wait("seq", timeout=scaled(30))
    assert job.state == CANCELLED and job.result is None


def test_jobs_run_with_the_registry_torch_threads(monkeypatch):
    import torch

    from unlearn_core.service.jobs import default_torch_threads

    before = torch.get_num_threads()
    reg = JobRegistry(torch_threads=1)
    try:
        job = reg.submit("threads", lambda p, c: torch.get_num_threads())
        reg.wait("threads", timeout=scaled(10))
        assert job.result == 1
    finally:
        reg.shutdown()
        torch.set_num_threads(before)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert default_torch_threads() is None  # the user's setting wins
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert default_torch_threads() == 1  # one core left to the server and the browser


def test_warm_imports_imports_and_never_raises() -> None:
    assert warm_imports(("colorsys", "no_such_module_for_the_warm_up")) == ["no_such_module_for_the_warm_up"]
    assert "colorsys" in sys.modules


def test_a_job_submitted_during_the_warm_up_waits_for_it(tmp_path, monkeypatch) -> None:
    """The warm-up runs in a thread (the first page's script run must end at once: an early click on Run that
    interrupted it left the browser showing widget defaults), and a job submitted meanwhile starts only after the
    imports are done — never importing alongside them."""
    (tmp_path / "slow_warm_module_for_test.py").write_text("import time\ntime.sleep(0.8)\nFINISHED = time.time()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    warm = WarmUp(("slow_warm_module_for_test", "no_such_module_for_the_warm_up"))
    assert warm.wait() is True  # nothing started: nothing to wait for
    registry = JobRegistry(warm_up=warm)
    try:
        started = []
        assert warm.start() is True and warm.start() is False  # once per process
        job = registry.submit("k", lambda progress, cancel: started.append(time.time()) or {"ok": True})
        assert _wait_until(lambda: job.state == DONE, timeout=30)
        assert warm.done.is_set() and warm.failed == ["no_such_module_for_the_warm_up"]
        assert started[0] >= sys.modules["slow_warm_module_for_test"].FINISHED
    finally:
        registry.shutdown(timeout=scaled(10))


def test_after_the_warm_up_a_quick_demo_job_imports_none_of_the_slow_packages(tmp_path) -> None:
    """The warm-up list is complete: in a fresh interpreter, a quick-demo job run after :func:`warm_imports`
    imports nothing more from torch._dynamo, torchvision, scikit-learn, scipy, dp_accounting or opacus (the imports
    that cost the first click ≈ 3 s before the dashboard warmed them up)."""
    code = """
import sys, threading
from unlearn_core.service import ui_state
from unlearn_core.service.jobs import LAZY_IMPORTS, warm_imports
from unlearn_core.service.tasks import run_task
assert warm_imports() == [], "every warm-up module imports"
before = set(sys.modules)
run_task(ui_state.preset("Quick demo").to_run_config(), key="k")(lambda info: None, threading.Event())
slow = ("torch._dynamo", "torchvision", "sklearn", "scipy", "dp_accounting", "opacus")
print(sorted(m for m in set(sys.modules) - before if m.split(".")[0] in slow or m.startswith(slow)))
"""
    env = {"UNLEARN_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], env=env,
                         capture_output=True, text=True, timeout=scaled(300))
    assert out.returncode == 0, out.stderr[-2000:]
    late = out.stdout.strip().splitlines()[-1]
    assert "torch._dynamo" in LAZY_IMPORTS
    assert len(set(LAZY_IMPORTS)) == len(LAZY_IMPORTS), "a module listed twice"
    assert late == "[]", f"imported after the warm-up: {late}"


# -- watchers belong to live sessions; orphans are cancelled ---------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _blocking_work(gate: threading.Event):
    def work(progress, cancel):
        while not gate.wait(0.01):
            if cancel.is_set():
                raise Cancelled("stop")
        return "done"

    return work


@pytest.fixture
def clocked():
    clock, live = FakeClock(), {}
    reg = JobRegistry(is_live=lambda w: live.get(w), watcher_timeout_s=90, orphan_grace_s=120, reap_every_s=None,
                      clock=clock)
    gate = threading.Event()
    yield reg, clock, live, gate
    gate.set()
    reg.shutdown(timeout=scaled(10))


def test_a_closed_tabs_watcher_does_not_block_cancel(clocked):
    """Issue 15: a job whose tab was closed could not be cancelled from a new tab (the dead session still counted)."""
    reg, _clock, live, gate = clocked
    job = reg.submit("mnist", _blocking_work(gate), watcher="old-tab")
    reg.submit("mnist", _blocking_work(gate), watcher="new-tab")
    live.update({"old-tab": True, "new-tab": True})
    assert not reg.cancel("mnist", watcher="new-tab")  # the old tab is open: it keeps running for it
    reg.submit("mnist", _blocking_work(gate), watcher="new-tab")  # Run again: rejoin
    live["old-tab"] = False  # the old tab is closed (Streamlit dropped its session)
    assert reg.cancel("mnist", watcher="new-tab")
    reg.wait("mnist", timeout=scaled(10))
    assert job.state == CANCELLED


def test_a_silent_watcher_stops_counting_after_the_timeout(clocked):
    """Without Streamlit's answer (None), a session that stopped beating for 90 s no longer blocks a Cancel."""
    reg, clock, _live, gate = clocked
    reg.submit("k", _blocking_work(gate), watcher="silent")
    job = reg.submit("k", _blocking_work(gate), watcher="active")
    clock.now += 60
    reg.heartbeat("active")
    assert reg.live_watchers(job) == ["silent", "active"]
    clock.now += 31  # silent last beat 91 s ago, active 31 s ago
    assert reg.live_watchers(job) == ["active"]
    assert reg.cancel("k", watcher="active")


def test_heartbeat_with_the_key_rejoins_a_timed_out_watcher(clocked):
    """A hidden tab whose timers were throttled past the timeout is back as soon as its poller runs."""
    reg, clock, _live, gate = clocked
    job = reg.submit("k", _blocking_work(gate), watcher="tab")
    clock.now += 100
    assert reg.live_watchers(job) == []
    reg.heartbeat("tab")  # the app-wide heartbeat renews only what it still watches
    assert reg.live_watchers(job) == []
    reg.heartbeat("tab", keys=["k"])  # the page's poller shows this job: rejoin
    assert reg.live_watchers(job) == ["tab"]


def test_orphaned_job_is_cancelled_after_the_grace_period_and_frees_the_queue(clocked):
    reg, clock, live, gate = clocked
    orphan = reg.submit("orphan", _blocking_work(gate), watcher="closed-tab")
    queued = reg.submit("next", lambda p, c: "ran", watcher="waiting-tab")
    live.update({"closed-tab": True, "waiting-tab": True})
    assert reg.reap() == [] and orphan.orphaned_since is None
    live["closed-tab"] = False
    assert reg.reap() == [] and orphan.orphaned_since == clock.now  # the grace period starts
    clock.now += 119
    reg.heartbeat("waiting-tab")
    assert reg.reap() == []
    clock.now += 1
    reg.heartbeat("waiting-tab")
    assert reg.reap() == [orphan]
    reg.wait("orphan", timeout=scaled(10))
    reg.wait("next", timeout=scaled(10))
    assert orphan.state == CANCELLED and "no open page waited for it for 120 s" in orphan.describe()
    assert queued.state == DONE and queued.result == "ran"  # the queue moved on


def test_a_rejoined_orphan_is_not_reaped(clocked):
    reg, clock, live, gate = clocked
    job = reg.submit("k", _blocking_work(gate), watcher="tab")
    live["tab"] = False
    reg.reap()
    clock.now += 100
    live["tab2"] = True
    reg.submit("k", _blocking_work(gate), watcher="tab2")  # someone opens the same configuration
    clock.now += 50
    assert reg.reap() == [] and not job.cancel_event.is_set()


def test_unwatched_jobs_are_never_reaped(clocked):
    """Jobs submitted by code (no watcher: tests, scripts) are not the reaper's business."""
    reg, clock, _live, gate = clocked
    job = reg.submit("code", _blocking_work(gate))
    clock.now += 10_000
    assert reg.reap() == [] and not job.cancel_event.is_set()


def test_reaper_thread_runs_by_itself():
    live = {"tab": False}
    reg = JobRegistry(is_live=live.get, orphan_grace_s=0.2, reap_every_s=0.05)
    gate = threading.Event()
    try:
        job = reg.submit("k", _blocking_work(gate), watcher="tab")
        assert _wait_until(lambda: job.done, timeout=10) and job.state == CANCELLED
    finally:
        gate.set()
        reg.shutdown(timeout=scaled(10))
