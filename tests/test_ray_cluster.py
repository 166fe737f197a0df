"""A real Ray cluster, started as its users start one (``ray start --head``), driven through the CLI.

One head node for the module, on free ports, with token authentication on (what the pinned Ray 2.60 turns on for
``ray start --head`` whenever the head has a token): the CLI must say in one line what to set when it has no token,
join by the GCS address and by ``ray://`` when it has, finish the full table after one of the workers running a
cell is killed with ``kill -9`` (that cell is run again, the finished ones are kept), and refuse a wrong port, a
wrong kind of port and a server that never answers within the deadline, in one line, exit 2.

Teardown stops exactly the processes this module started: the ``ray start --block`` process is sent SIGTERM (it
stops its raylet, GCS and workers), then anything left in its session is killed by process id. Not ``ray stop``: it
stops every Ray process on the machine, other users' and other test sessions' included.

Without the optional cluster extra the module is skipped, except under ``CI=true`` (CI installs it).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from skips import skip_or_fail
from timeouts import scaled

from unlearn_core.errors import ConfigError

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[1]
#: Ports a head node needs (GCS, client server, node manager, object manager, agents, metrics) + a worker range.
PORTS = 10
WORKER_PORTS = 24
#: The experiment the cluster runs: four retraining cells of a few seconds each on the synthetic blobs.
EXPERIMENT = ["experiment", "budget", "--dataset", "synthetic", "--hidden", "16", "--epochs", "2", "--forget",
              "random:40", "--device", "cpu", "--methods", "retrain", "--budgets", "150,151,152,153",
              "--threads-per-cell", "1"]


def _free_block(size: int) -> int:
    """A base port with ``size`` consecutive free ports (bind-tested), away from the well-known ones."""
    rng = secrets.SystemRandom()
    for _ in range(200):
        base = rng.randrange(20_000, 60_000 - size)
        sockets = []
        try:
            for port in range(base, base + size):
                s = socket.socket()
                s.bind(("127.0.0.1", port))
                sockets.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no block of free ports")


def _session_pids(sid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == sid:
                    out.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                continue
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    try:
        import ray  # noqa: F401
    except ImportError:
        skip_or_fail("ray is not installed (pip install -r requirements-cluster.txt)", module_level=False)
    base = _free_block(PORTS + WORKER_PORTS)
    gcs, client = base, base + 1
    token = secrets.token_hex(32)
    temp = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))  # short: Ray's socket paths are length-limited
    cache = tmp_path_factory.mktemp("cluster-cache")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "UNLEARN_RAY"))}
    env.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "UNLEARN_CACHE_DIR": str(cache),
                "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", "--disable-usage-stats",
               "--num-cpus", "2", "--include-dashboard", "false", "--temp-dir", str(temp),
               "--port", str(gcs), "--ray-client-server-port", str(client),
               "--node-manager-port", str(base + 2), "--object-manager-port", str(base + 3),
               "--dashboard-agent-listen-port", str(base + 4), "--dashboard-agent-grpc-port", str(base + 5),
               "--runtime-env-agent-port", str(base + 6), "--metrics-export-port", str(base + 7),
               "--min-worker-port", str(base + PORTS), "--max-worker-port", str(base + PORTS + WORKER_PORTS - 1)]
    log = open(temp / "head.log", "w")  # closed in teardown
    head = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        from unlearn_core import ray_cluster

        deadline = time.monotonic() + scaled(90)
        address = ray_cluster.parse_address(f"127.0.0.1:{gcs}")
        with_token = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
        while True:
            try:
                ray_cluster.probe(address, timeout_s=2, environ=with_token)
                break
            except ConfigError:
                if head.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the head did not start: " + (temp / "head.log").read_text()[-2000:]) from None
                time.sleep(0.5)
        yield {"gcs": gcs, "client": client, "token": token, "env": env, "head": head}
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops its own processes on SIGTERM
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            head.kill()
        for _ in range(20):  # anything it left in its session: by process id, never by name
            left = [p for p in _session_pids(head.pid) if p != os.getpid()]
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.5)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def _cli(args: list[str], env: dict[str, str], out: Path, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "unlearn_core", *args, "--out", str(out)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _client_env(cluster, *, token: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "UNLEARN_RAY"))}
    env.update({"PYTHONPATH": str(ROOT), "UNLEARN_CACHE_DIR": cluster["env"]["UNLEARN_CACHE_DIR"]})
    if token:
        env.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": cluster["token"]})
    return env


def test_a_cluster_that_wants_a_token_says_what_to_set(cluster, tmp_path) -> None:
    proc = _cli([*EXPERIMENT, "--executor", "ray", "--address", f"127.0.0.1:{cluster['gcs']}"],
                _client_env(cluster, token=False), tmp_path)
    _, err = proc.communicate(timeout=scaled(120))
    assert proc.returncode == 2, err
    line = err.strip().splitlines()[-1]
    assert "asks for a token" in line and "RAY_AUTH_MODE=token" in line and "RAY_AUTH_TOKEN" in line
    assert "Traceback" not in err and not list(tmp_path.iterdir())


def test_gcs_and_client_addresses_give_the_full_table_after_a_killed_worker(cluster, tmp_path) -> None:
    env = _client_env(cluster, token=True)
    # By the GCS address that `ray start --head` prints.
    gcs = _cli([*EXPERIMENT, "--executor", "ray", "--address", f"127.0.0.1:{cluster['gcs']}"], env, tmp_path / "g")
    _, err = gcs.communicate(timeout=scaled(240))
    assert gcs.returncode == 0, err
    reference = pd.read_csv(tmp_path / "g" / "budget.csv")
    assert list(reference["budget_epochs"]) == [150, 151, 152, 153]
    # By ray://, killing (kill -9) a worker that runs a cell once another cell has finished.
    proc = _cli([*EXPERIMENT, "--executor", "ray", "--address", f"ray://127.0.0.1:{cluster['client']}"], env,
                tmp_path / "c")
    lines: list[str] = []
    killed: list[int] = []
    progressed = threading.Event()

    def read() -> None:
        for line in proc.stderr:  # type: ignore[union-attr]
            lines.append(line)
            if re.search(r"runs: [1-3]/4 cells", line):
                progressed.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert progressed.wait(scaled(240)), "".join(lines)
    deadline = time.monotonic() + scaled(30)
    while not killed and time.monotonic() < deadline:
        running = [p for p in _session_pids(cluster["head"].pid) if _cmdline(p).startswith("ray::unlearn_cell")]
        if running:
            os.kill(running[0], signal.SIGKILL)
            killed.append(running[0])
        else:
            time.sleep(0.05)
    assert killed, "no worker was running a cell: " + "".join(lines)
    proc.wait(timeout=scaled(240))
    reader.join(5)
    err = "".join(lines)
    assert proc.returncode == 0, err
    assert "a worker was lost" in err and "finished kept" in err and "Traceback" not in err
    table = pd.read_csv(tmp_path / "c" / "budget.csv")
    cols = [c for c in table.columns if c not in ("time_s",)]
    pd.testing.assert_frame_equal(table[cols], reference[cols])  # the full table, the same values


def test_wrong_addresses_fail_fast_in_one_line(cluster, tmp_path) -> None:
    from unlearn_core import ray_cluster

    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": cluster["token"]}
    nobody = _free_block(1)
    cases = [
        (f"127.0.0.1:{nobody}", "no Ray cluster at", 30.0),  # nothing listens: refused at once
        (f"ray://127.0.0.1:{cluster['gcs']}", f"use --address 127.0.0.1:{cluster['gcs']}", 30.0),  # a GCS as ray://
        (f"127.0.0.1:{cluster['client']}", f"use --address ray://127.0.0.1:{cluster['client']}", 30.0),
    ]
    for text, message, limit in cases:
        tic = time.monotonic()
        with pytest.raises(ConfigError, match=re.escape(message)) as info:
            ray_cluster.probe(ray_cluster.parse_address(text), timeout_s=ray_cluster.CONNECT_TIMEOUT_S, environ=env)
        assert time.monotonic() - tic < limit and "\n" not in str(info.value)
    # A server that accepts the connection and never answers: the deadline, in one line.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        tic = time.monotonic()
        with pytest.raises(ConfigError, match=r"no answer from a Ray cluster at .* within 2 s"):
            ray_cluster.probe(ray_cluster.parse_address(f"127.0.0.1:{silent.getsockname()[1]}"), timeout_s=2,
                              environ=env)
        assert time.monotonic() - tic < 10
    finally:
        silent.close()
    # Through the CLI: exit 2, one line, nothing written.
    proc = _cli([*EXPERIMENT, "--executor", "ray", "--address", f"127.0.0.1:{nobody}", "--quiet"],
                _client_env(cluster, token=True), tmp_path)
    _, err = proc.communicate(timeout=scaled(120))
    assert proc.returncode == 2 and err.strip().startswith("error: no Ray cluster at 127.0.0.1:") and \
        len(err.strip().splitlines()) == 1, err
    assert not list(tmp_path.iterdir())
