"""Executors: the same cells give the same DataFrame on every executor, cancellation reaches running cells, and
the CLI / dashboard settings are validated before any work.

Identity is exact (``assert_frame_equal``) on every column but wall time: the cells are the same functions of the
same seeds, torch runs one thread in every cell (``threads_per_cell=1``), and all executors share one model cache.
Ray tests start one local Ray (2 CPUs) for the module and shut it down afterwards; without the optional extra they
are skipped — except under ``CI=true``, where CI installs it (``requirements-cluster.txt``) and they must run.
"""

from __future__ import annotations

import json
import pickle
import re
import threading
import time

import pandas as pd
import pytest
from skips import skip_or_fail

from unlearn_core import experiments as ex
from unlearn_core.errors import ConfigError
from unlearn_core.executors import (
    Cell,
    FileFlag,
    ProcessExecutor,
    SerialExecutor,
    executor_from_env,
    get_executor,
)
from unlearn_core.pipeline import RunConfig
from unlearn_core.progress import Cancelled
from unlearn_core.training import TrainConfig

BASE = RunConfig(dataset="synthetic", model="mlp", hidden=(8,), forget="random:40", train=TrainConfig(epochs=3),
                 device="cpu")
#: Retraining this for 10,000 epochs (≈ 120,000 steps, minutes): the running cell cancellation must interrupt.
SLOW = RunConfig(dataset="digits", model="mlp", hidden=(128, 128), forget="random:40", train=TrainConfig(epochs=1),
                 device="cpu")
SLOW_EPOCHS = 10_000


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    cols = [c for c in a.columns if c not in ex.TIMING_COLUMNS]
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a[cols], b[cols], check_exact=True)


def _compare(executor) -> pd.DataFrame:
    return ex.compare(BASE, ["retrain", "finetune"], params={"finetune": {"epochs": 1}}, seeds=[0, 1, 2],
                      relearn_max_steps=20, executor=executor)


def _audit(executor) -> pd.DataFrame:
    return ex.audit(BASE, methods=["output_perturbation"], params={"output_perturbation": {"finetune_epochs": 1}},
                    sigma_factors=[1.0, 1e-6], runs=12, runs_per_cell=4, executor=executor)


@pytest.fixture(scope="module")
def processes():
    """Every cell in worker processes (``adaptive=False``): what the identity tests compare with serial."""
    return ProcessExecutor(workers=2, threads_per_cell=1, adaptive=False)


def test_serial_and_processes_give_identical_dataframes(processes) -> None:
    serial = SerialExecutor(threads_per_cell=1)
    records = []
    a = _compare(serial)
    b = ex.compare(BASE, ["retrain", "finetune"], params={"finetune": {"epochs": 1}}, seeds=[0, 1, 2],
                   relearn_max_steps=20, executor=processes, progress=records.append)
    _same(a, b)
    assert list(a["method"]) == ["original", "retrained", "retrain", "finetune"] * 3  # the serial loop's order
    assert {"mia_lira_auc", "pe_epsilon_median", "forgetting_quality"} <= set(a.columns)  # cross-seed metrics
    # progress: cells done / total with an ETA, for the prepare phase (3 seeds) and the runs (3 × 3 cells)
    cells = [r for r in records if r["stage"] == "cells"]
    runs = [r for r in cells if r["phase"] == "runs"]
    assert [r["step"] for r in runs] == list(range(10)) and {r["steps"] for r in runs} == {9}
    assert runs[-1]["eta_s"] == 0 and runs[-1]["cells_per_s"] > 0
    assert [r["step"] for r in cells if r["phase"] == "prepare"] == [0, 1, 2, 3]
    # and where the cells ran: every one in a worker process (adaptive=False), said once per map
    plans = [r for r in records if r["stage"] == "plan"]
    assert [p["plan"]["in_workers"] for p in plans] == [3, 9] and all(p["plan"]["in_driver"] == 0 for p in plans)
    _same(_audit(serial), _audit(processes))


def test_the_frontier_is_the_same_on_every_executor(processes) -> None:
    """The privacy–utility frontier is cells too (a reference cell per seed, one per method, ε and grid setting): the
    same rows on the serial and the process executor — the references, the frontier's points, the candidates."""

    def frontier(executor) -> pd.DataFrame:
        return ex.frontier(BASE, methods=["output_perturbation"], epsilons=[1.0, 10.0], seeds=[0, 1],
                           params={"output_perturbation": {"finetune_epochs": 1}}, executor=executor)

    a = frontier(SerialExecutor(threads_per_cell=1))
    _same(a, frontier(processes))
    assert list(a["role"]) == ["reference"] * 4 + ["frontier"] * 4 + ["candidate"] * 12  # 2 seeds, 2 ε, 3 C₀
    assert list(a["method"].iloc[:4]) == ["original", "retrained"] * 2
    assert sorted(a[a["role"] == "frontier"]["epsilon"]) == [1.0, 1.0, 10.0, 10.0]


def test_cancellation_reaches_a_running_cell(processes) -> None:
    """A cell training a large model for minutes stops within seconds of the cancel, on both local executors."""
    for executor in (SerialExecutor(threads_per_cell=1), processes):
        cancel = threading.Event()
        started = threading.Event()

        def progress(info, _started=started):
            if info["phase"] == "runs":
                _started.set()

        box: dict = {}

        def work(_executor=executor, _cancel=cancel, _progress=progress, _box=box):
            try:
                ex.budget(SLOW, methods=["retrain"], budgets=[SLOW_EPOCHS], executor=_executor, cancel=_cancel,
                          progress=_progress)
            except BaseException as exc:
                _box["error"] = exc
            _box["end"] = time.perf_counter()

        thread = threading.Thread(target=work)
        thread.start()
        assert started.wait(120), "the run phase did not start"
        time.sleep(1.0)  # the cell is now inside its training loop
        tic = time.perf_counter()
        cancel.set()
        thread.join(60)
        assert not thread.is_alive()
        assert isinstance(box.get("error"), Cancelled), box
        assert box["end"] - tic < 20.0
    # the workers are free again: a small map runs at once
    tic = time.perf_counter()
    assert ex.budget(BASE, methods=["finetune"], budgets=[0], executor=processes)["budget_epochs"].tolist() == [0, 0]
    assert time.perf_counter() - tic < 60.0


def test_a_failing_cell_raises_its_own_error_in_the_driver(processes) -> None:
    with pytest.raises(ConfigError, match="lr·lam"):
        ex.budget(BASE, methods=["noisy_finetune"], budgets=[0], params={"noisy_finetune": {"lam": 200.0}},
                  executor=processes)


def test_executor_settings_are_validated() -> None:
    assert isinstance(get_executor("serial"), SerialExecutor)
    assert get_executor("processes", workers=2).describe().startswith("processes (2 workers")
    for kwargs, match in (({"name": "dask"}, "executor 'dask' is not valid"),
                          ({"name": "processes", "workers": 0}, "workers=0"),
                          ({"name": "processes", "gpus_per_cell": 0.5}, "needs executor 'ray'"),
                          ({"name": "serial", "address": "ray://h:10001"}, "needs executor 'ray'"),
                          ({"name": "ray", "gpus_per_cell": -1.0}, "gpus_per_cell")):
        with pytest.raises(ConfigError, match=match):
            get_executor(**kwargs)
    assert executor_from_env({}) is None
    env = executor_from_env({"UNLEARN_EXECUTOR": "processes", "UNLEARN_WORKERS": "2"})
    assert isinstance(env, ProcessExecutor) and env.workers == 2 and env.adaptive
    ray = executor_from_env({"UNLEARN_EXECUTOR": "ray", "UNLEARN_RAY_ADDRESS": "ray://head:10001",
                             "UNLEARN_GPUS_PER_CELL": "0.25"})
    assert ray.describe() == "ray (cluster ray://head:10001, 1 CPU per cell, 0.25 GPU per cell)"
    with pytest.raises(ConfigError, match="UNLEARN_WORKERS"):
        executor_from_env({"UNLEARN_EXECUTOR": "processes", "UNLEARN_WORKERS": "two"})


def test_ray_without_the_extra_is_a_one_line_error(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if the cluster extra were not installed
    with pytest.raises(ConfigError, match=r"needs the optional cluster extra: pip install -r requirements-cluster"):
        ex.budget(BASE, methods=["finetune"], budgets=[0], executor=get_executor("ray"))


def test_file_flag_crosses_processes_as_a_path(tmp_path) -> None:
    flag = FileFlag(tmp_path / "cancel")
    copy = pickle.loads(pickle.dumps(flag))
    assert not copy.is_set()
    flag.set()
    assert copy.is_set() and (tmp_path / "cancel").exists()


def test_cli_executor_flags(tmp_path, capsys) -> None:
    from unlearn_core.cli import main

    common = ["--dataset", "synthetic", "--hidden", "8", "--epochs", "3", "--forget", "random:40", "--device", "cpu",
              "--methods", "finetune", "--budgets", "0,1", "--seeds", "0,1", "--quiet"]
    assert main(["experiment", "budget", *common, "--out", str(tmp_path / "s"), "--threads-per-cell", "1"]) == 0
    assert main(["experiment", "budget", *common, "--out", str(tmp_path / "p"), "--executor", "processes",
                 "--workers", "2"]) == 0
    serial, parallel = (pd.read_csv(tmp_path / d / "budget.csv") for d in ("s", "p"))
    _same(serial, parallel)
    capsys.readouterr()
    for flags, message in ((["--executor", "nope"], "error: executor 'nope' is not valid"),
                           (["--executor", "processes", "--gpus-per-cell", "0.5"], "needs executor 'ray'"),
                           (["--address", "ray://head:10001"], "needs executor 'ray'")):
        assert main(["experiment", "budget", *common, "--out", str(tmp_path / "x"), *flags]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err
    assert not (tmp_path / "x").exists()  # nothing written


def test_cli_audit_and_forget_size(tmp_path, capsys) -> None:
    from unlearn_core.cli import main

    common = ["--dataset", "synthetic", "--hidden", "8", "--epochs", "3", "--forget", "random:40", "--device", "cpu",
              "--out", str(tmp_path)]
    assert main(["experiment", "audit", *common, "--methods", "output_perturbation", "--runs", "24",
                 "--sigma-factors", "1,1e-10", "--set", "output_perturbation.finetune_epochs=0",
                 "--executor", "processes", "--workers", "2"]) == 0
    err = capsys.readouterr().err
    assert "executor: processes (2 workers" in err and "runs: 12/12 cells" in err  # 2 σ × 2 arms × 3 cells of ≤ 10 runs
    rows = pd.read_csv(tmp_path / "audit.csv")
    assert list(rows["sigma_factor"]) == [1.0, 1e-10] and list(rows["refutes_claim"]) == [False, True]
    payload = json.loads((tmp_path / "audit.json").read_text())
    assert payload["methods"] == ["output_perturbation"] and payload["runs"] == 24
    assert main(["experiment", "forget-size", *common, "--methods", "finetune", "--sizes", "10,20",
                 "--set", "finetune.epochs=1", "--quiet"]) == 0
    sweep = pd.read_csv(tmp_path / "forget_size.csv")
    assert list(sweep["n_forget"]) == [10, 10, 20, 20] and list(sweep["method"]) == ["retrained", "finetune"] * 2
    assert main(["experiment", "audit", *common, "--methods", "finetune", "--quiet"]) == 2
    assert "cannot be audited" in capsys.readouterr().err


# -- Ray (the optional cluster extra): one local Ray for the module -------------------------------------------


@pytest.fixture(scope="module")
def local_ray():
    try:
        import ray
    except ImportError:
        skip_or_fail("ray is not installed (pip install -r requirements-cluster.txt)")
    executor = get_executor("ray", workers=2, adaptive=False)
    yield executor
    executor.close()
    assert not ray.is_initialized()


def test_ray_local_gives_the_serial_dataframe_and_cancels(local_ray) -> None:
    serial = SerialExecutor(threads_per_cell=1)
    _same(_compare(serial), _compare(local_ray))
    assert local_ray.start_s is not None and local_ray.describe() == "ray (local Ray, 1 CPU per cell)"
    cancel = threading.Event()
    started = threading.Event()
    box: dict = {}

    def work():
        try:
            ex.budget(SLOW, methods=["retrain"], budgets=[SLOW_EPOCHS], executor=local_ray, cancel=cancel,
                      progress=lambda info: info["phase"] == "runs" and started.set())
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=work)
    thread.start()
    assert started.wait(120)
    time.sleep(1.0)
    tic = time.perf_counter()
    cancel.set()
    thread.join(60)
    assert isinstance(box.get("error"), Cancelled) and time.perf_counter() - tic < 30.0


# -- parallel only when it pays; lost workers; the model cache's lock; cluster addresses ------------------------


def _kill_own_worker_once(*, marker: str, value: int, cancel=None) -> int:
    """A cell that kills its worker process the first time it runs anywhere (a marker file remembers)."""
    import os
    import signal
    from pathlib import Path

    if not Path(marker).exists():
        Path(marker).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return value * value


def _sleep_cell(*, seconds: float, value: int, cancel=None) -> tuple[int, int]:
    import os

    time.sleep(seconds)
    return value, os.getpid()


def test_adaptive_processes_run_small_work_here_and_say_so(monkeypatch) -> None:
    """Below the workers' start-up cost (measured, or assumed) nothing is started: every cell runs in this process,
    the rows are the serial rows, and the plan says so. (From a cold pool: a pool an earlier test left warm costs
    nothing to use, and the scheduler rightly starts on it at once.)"""
    import os

    from unlearn_core import executors

    monkeypatch.setattr(executors._LokyBackend, "_warm_pool", None)
    monkeypatch.setattr(executors._LokyBackend, "_prestarted_pool", None)  # a CLI test may have pre-started one

    records: list[dict] = []
    executor = ProcessExecutor(workers=2, start_cost_s=60.0)
    serial = ex.budget(BASE, methods=["finetune"], budgets=[0, 1], executor=SerialExecutor(threads_per_cell=1))
    adaptive = ex.budget(BASE, methods=["finetune"], budgets=[0, 1], executor=executor, progress=records.append)
    _same(serial, adaptive)
    plans = [r for r in records if r["stage"] == "plan"]
    assert [p["phase"] for p in plans] == ["prepare", "runs"]
    assert all(p["plan"]["in_workers"] == 0 and "ran serially in this process" in p["message"]
               and "60.0 s" in p["message"] for p in plans), [p["message"] for p in plans]
    assert executor.report()[-1]["in_driver"] == 4  # finetune and retrain at budgets 0 and 1
    # with a start-up cost this small, long enough cells bring the worker in; results stay in cell order
    fast = ProcessExecutor(workers=2, start_cost_s=0.05)
    cells = [Cell(_sleep_cell, {"seconds": 0.4, "value": i}) for i in range(10)]
    out = fast.map(cells, progress=records.append)
    assert [v for v, _ in out] == list(range(10))
    pids = {pid for _, pid in out}
    assert os.getpid() in pids and len(pids) == 2, pids  # this process and one worker process
    plan = fast.plans[-1]
    assert plan.in_driver + plan.in_workers == 10 and plan.in_workers >= 1 and plan.started_at_s is not None


def test_prestarted_workers_take_cells_from_the_first_map_and_say_why(monkeypatch) -> None:
    """``prestart`` (what the CLI does with ``--executor processes``) starts the workers before any map, so a map's
    start-up cost is only loading its configurations: the first map sends cells to them at once, and its plan says
    they were pre-started. Without a spare core, or without adaptive scheduling, nothing is pre-started."""
    import os

    from timeouts import scaled

    from unlearn_core import executors
    from unlearn_core.cli import stop_local_workers

    stop_local_workers()  # a cold pool: what a fresh command has
    monkeypatch.setenv("UNLEARN_PRESTART", "sometimes")
    with pytest.raises(ConfigError, match="UNLEARN_PRESTART='sometimes' is not valid: choose 1"):
        get_executor("processes", workers=2)
    monkeypatch.delenv("UNLEARN_PRESTART")
    monkeypatch.setattr(executors._LokyBackend, "_warm_pool", None)
    monkeypatch.setattr(executors._LokyBackend, "_prestarted_pool", None)
    monkeypatch.setattr(executors, "idle_core", lambda: False)
    assert not ProcessExecutor(workers=2).prestart()  # every core busy: the workers would only take time
    assert executors._LokyBackend._prestarted_pool is None
    monkeypatch.setattr(executors, "idle_core", lambda: True)
    assert not ProcessExecutor(workers=2, adaptive=False).prestart() and not ProcessExecutor(workers=1).prestart()
    executor = ProcessExecutor(workers=2, start_cost_s=None)
    assert executor.prestart() and not executor.prestart()  # once per pool
    deadline = time.monotonic() + scaled(120)
    while executors._LokyBackend._warm_pool != executors._LokyBackend._prestarted_pool:  # its imports done
        assert time.monotonic() < deadline, "the pre-started worker never finished importing"
        time.sleep(0.1)
    cells = [Cell(_sleep_cell, {"seconds": 0.3, "value": i}) for i in range(12)]
    out = executor.map(cells)
    assert [v for v, _ in out] == list(range(12))  # cell order, whichever process ran them
    plan = executor.plans[-1]
    assert plan.prestarted and plan.start_cost_s == executors.WARM_START_S and plan.in_workers >= 1, plan
    assert {pid for _, pid in out} - {os.getpid()}, "no cell ran in a worker process"
    assert "pre-started with the command" in plan.message()


def test_the_cli_prestarts_workers_before_its_parser_imports_torch(monkeypatch, tmp_path, capsys) -> None:
    """``experiment ... --executor processes`` pre-starts before the full parser (whose schema imports torch) is
    built; with a bad or absent flag it does nothing and says nothing (the full parse reports bad flags, and a bad
    ``UNLEARN_PRESTART`` is one line from the experiment's executor, before any work)."""
    from unlearn_core.cli import main, prestart_workers_early

    calls: list[tuple[int, int | None]] = []
    monkeypatch.setattr(ProcessExecutor, "prestart", lambda self: calls.append((self.workers, self.threads)) or True)
    prestart_workers_early(["experiment", "audit", "--dataset", "digits", "--runs", "64", "--executor", "processes",
                            "--workers", "2", "--threads-per-cell", "1"])
    assert calls == [(2, 1)]
    for argv in (["experiment", "audit", "--executor", "serial"], ["experiment", "audit"],
                 ["run", "--method", "finetune"], ["experiment", "audit", "--executor", "processes", "--workers", "0"],
                 ["experiment", "audit", "--executor", "processes", "--workers", "1000000"],
                 ["experiment", "audit", "--executor", "processes", "--workers", "two"]):
        prestart_workers_early(argv)
    assert calls == [(2, 1)]
    monkeypatch.setenv("UNLEARN_PRESTART", "sometimes")
    argv = ["experiment", "budget", "--dataset", "synthetic", "--hidden", "8", "--epochs", "3", "--forget",
            "random:40", "--device", "cpu", "--methods", "finetune", "--budgets", "0,1", "--quiet",
            "--executor", "processes", "--workers", "2", "--out", str(tmp_path / "x")]
    prestart_workers_early(argv)
    assert calls == [(2, 1)]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "UNLEARN_PRESTART='sometimes' is not valid" in err and "\n" not in err, err
    assert not (tmp_path / "x").exists()  # nothing written


def test_a_lost_worker_process_is_replaced_and_its_cell_run_again(tmp_path) -> None:
    """kill -9 of a loky worker running a cell: that cell runs again (max_retries), the finished ones are kept."""
    executor = ProcessExecutor(workers=2, adaptive=False)
    records: list[dict] = []
    cells = [Cell(_kill_own_worker_once, {"marker": str(tmp_path / "killed"), "value": i}) for i in range(6)]
    assert executor.map(cells, progress=records.append) == [i * i for i in range(6)]
    assert executor.plans[-1].retries >= 1
    assert any(r["stage"] == "plan" and "a worker was lost" in r["message"] for r in records)
    # max_retries=0: the loss is an error naming the cell, in one line
    (tmp_path / "killed").unlink()
    with pytest.raises(RuntimeError, match=r"lost its worker 1 times \(max_retries=0\)"):
        ProcessExecutor(workers=2, adaptive=False, max_retries=0).map(cells)


def test_a_cell_waiting_for_the_model_cache_lock_sees_cancel(tmp_path) -> None:
    """Another process trains the same model (holds its lock): a cancelled cell stops waiting within a second."""
    import subprocess
    import sys

    import torch

    from unlearn_core.cache import ModelCache

    cache = ModelCache(tmp_path)
    key = {"model": "x"}
    lock = str(cache.path(key)) + ".lock"
    cache.path(key).parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from filelock import FileLock; "
                               f"lock = FileLock({lock!r}); lock.acquire(); print('held', flush=True); "
                               "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        cancel = threading.Event()
        threading.Timer(0.5, cancel.set).start()
        tic = time.perf_counter()
        with pytest.raises(Cancelled, match="waiting for another process"):
            cache.get_or_train(key, torch.nn.Linear(2, 2), lambda m: {}, cancel=cancel)
        assert time.perf_counter() - tic < 3.0
    finally:
        holder.kill()
        holder.wait()


def test_cluster_addresses_and_deadlines_are_checked_before_anything() -> None:
    from unlearn_core import ray_cluster

    good = {"10.0.0.5:6379": ("gcs", "10.0.0.5", 6379), "ray://head:10001": ("client", "head", 10001),
            "[::1]:6379": ("gcs", "::1", 6379), "auto": ("auto", "", 0)}
    for text, (kind, host, port) in good.items():
        parsed = ray_cluster.parse_address(text)
        assert (parsed.kind, parsed.host, parsed.port) == (kind, host, port)
    assert ray_cluster.parse_address("[::1]:6379").target == "[::1]:6379"
    for text, message in (("foo", "expected HOST:PORT"), ("host:", "expected HOST:PORT"),
                          ("host:99999", "the port must be an integer in [1, 65535]"), ("ray://", "expected"),
                          ("http://head:8265", "the Ray dashboard's"), (":6379", "expected HOST:PORT"),
                          ("a b:1", "expected")):
        with pytest.raises(ConfigError, match=re.escape(message)) as info:
            ray_cluster.parse_address(text)
        assert "\n" not in str(info.value)
    assert ray_cluster.timeout_from_env({}) == ray_cluster.CONNECT_TIMEOUT_S <= 30
    assert ray_cluster.timeout_from_env({"UNLEARN_RAY_TIMEOUT": "5"}) == 5.0
    for bad in ("0", "-1", "abc", "1e9"):
        with pytest.raises(ConfigError, match="UNLEARN_RAY_TIMEOUT"):
            ray_cluster.timeout_from_env({"UNLEARN_RAY_TIMEOUT": bad})
    # a token is sent only on opt-in, from Ray's own sources in Ray's order
    assert ray_cluster.token_opt_in({"RAY_AUTH_TOKEN": "t"})[0] is None
    assert ray_cluster.token_opt_in({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "t"}) == ("t", "RAY_AUTH_TOKEN")
    # the executor and the CLI refuse a malformed address in one line, exit 2, before any work
    with pytest.raises(ConfigError, match="address='foo' is not valid"):
        get_executor("ray", address="foo")
    with pytest.raises(ConfigError, match="connect_timeout_s"):
        get_executor("processes", connect_timeout_s=5)


def test_cli_refuses_a_malformed_address_in_one_line(tmp_path, capsys) -> None:
    from unlearn_core.cli import main

    common = ["--dataset", "synthetic", "--hidden", "8", "--epochs", "3", "--forget", "random:40", "--device", "cpu",
              "--methods", "finetune", "--budgets", "0", "--quiet", "--out", str(tmp_path / "x")]
    for flags, message in ((["--executor", "ray", "--address", "foo"], "error: address='foo' is not valid"),
                           (["--executor", "ray", "--address", "h:1", "--connect-timeout", "0"],
                            "connect_timeout_s=0.0 is not valid"),
                           (["--executor", "processes", "--workers", "1000000"], "workers=1000000 is not valid"),
                           (["--executor", "processes", "--max-retries", "-1"], "max_retries=-1")):
        assert main(["experiment", "budget", *common, *flags]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(message) if message.startswith("error") else message in err, err
        assert "\n" not in err
    assert not (tmp_path / "x").exists()
