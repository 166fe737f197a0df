"""Safe by default: the dashboard listens on localhost only, deleting runs asks first, the HTML report escapes.

The listening test starts the real server (``streamlit run app.py`` from the repository root, and
``bash scripts/run.sh``) and reads the kernel's table of listening sockets, so it checks what is actually bound,
not what a config file says.
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
import streamlit as st
from streamlit.testing.v1 import AppTest
from timeouts import scaled

from unlearn_core.service.jobs import shutdown_all

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK4, ANY4, ANY6, LOOPBACK6 = "127.0.0.1", "0.0.0.0", "::", "::1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> set[str]:
    """Addresses with a socket in LISTEN state on ``port``, from /proc/net/tcp and tcp6 (Linux)."""
    found = set()
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if int(hex_port, 16) != port or fields[3] != "0A":  # 0A = LISTEN
                continue
            raw = bytes.fromhex(address)
            if v6:  # four little-endian 32-bit words
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                found.add(socket.inet_ntop(socket.AF_INET6, raw))
            else:
                found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
    return found


def _serve(argv: list[str], port: int, env: dict[str, str]) -> set[str]:
    """Start a server, wait until it is healthy, return where it listens, stop it."""
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + scaled(60)
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as resp:
                    if resp.read().decode().strip() == "ok":
                        return _listening(port)
            except OSError:
                time.sleep(0.3)
            if proc.poll() is not None:
                pytest.fail(f"the server exited with status {proc.returncode}")
        pytest.fail(f"the server was not healthy within {scaled(60):.0f} s")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=scaled(15))
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc/net/tcp")
@pytest.mark.slow
def test_streamlit_run_listens_on_localhost_only(tmp_path) -> None:
    """``streamlit run app.py`` from the checkout, no address flag: .streamlit/config.toml binds 127.0.0.1."""
    port = _free_port()
    env = {**os.environ, "UNLEARN_CACHE_DIR": str(tmp_path)}
    bound = _serve([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)], port, env)
    assert bound == {LOOPBACK4}, bound


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc/net/tcp")
@pytest.mark.slow
def test_run_sh_listens_on_localhost_and_exposes_only_when_asked(tmp_path) -> None:
    """The README's run command binds 127.0.0.1; ``--server.address 0.0.0.0`` (the documented way) overrides it."""
    venv = Path(sys.prefix)
    if not (venv / ".complete").exists():
        pytest.skip(f"{venv} was not built by scripts/env.sh (no .complete): run.sh would build a new environment")
    env = {**os.environ, "UNLEARN_CACHE_DIR": str(tmp_path), "UNLEARN_VENV": str(venv)}
    port = _free_port()
    assert _serve(["bash", "scripts/run.sh", "--server.port", str(port)], port, env) == {LOOPBACK4}
    port = _free_port()
    exposed = _serve(["bash", "scripts/run.sh", "--server.port", str(port), "--server.address", "0.0.0.0"], port, env)
    assert exposed == {ANY4}, exposed


# -- the Runs page asks before deleting ---------------------------------------------------------------------------


@pytest.fixture
def fresh_app(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARN_CACHE_DIR", str(tmp_path / "cache"))
    st.cache_resource.clear()
    yield
    shutdown_all(timeout=scaled(60))
    st.cache_resource.clear()


@pytest.mark.usefixtures("fresh_app")
def test_runs_page_deletes_only_after_confirming() -> None:
    from dashboard import common

    store = common.get_store()
    card = {"config": {"dataset": "digits", "model": "mlp", "method": "retrain", "forget": "random:0.1"},
            "models": {}}
    ids = [store.save(card, config_hash=f"hash-{i}") for i in range(2)]
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=scaled(60))
    at.run()
    at.switch_page("pages/runs.py").run()
    assert not at.exception and not [b for b in at.button if b.key == "runs.delete.confirm"]
    # What the "Delete 1 selected" button records (the table's checkboxes cannot be ticked from AppTest).
    at.session_state["runs.to_delete"] = [ids[0]]
    at.run()
    assert {b.key for b in at.button} >= {"runs.delete.confirm", "runs.delete.cancel"}  # the dialog asks
    assert len(store.list()) == 2  # nothing deleted by opening it
    at.button(key="runs.delete.cancel").click().run()
    assert len(store.list()) == 2 and not [b for b in at.button if b.key == "runs.delete.confirm"]
    at.session_state["runs.to_delete"] = [ids[0]]
    at.run()
    at.button(key="runs.delete.confirm").click().run()
    assert not at.exception
    assert [r.id for r in store.list()] == [ids[1]]


def test_html_report_escapes_the_run_card() -> None:
    """A card is data: a hostile label or forget spec must come out as text, never as markup."""
    from dashboard.downloads import html_report

    evil = "<script>alert('x')</script>"
    card = {"config": {"dataset": "digits", "forget": evil, "method": evil}, "notes": [f"</pre>{evil}"]}
    report = html_report(f"report {evil}", card, {})
    assert "<script>" not in report and "</pre><script>" not in report
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in report
    assert report.count("<pre>") == 1 and report.count("</pre>") == 1
