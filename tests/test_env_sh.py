"""scripts/env.sh: two first runs started together both end with a complete environment.

The old script deleted ``$VENV`` whenever ``.complete`` was missing, so the second of two concurrent first runs
deleted the first one's half-built environment. Here ``PYTHON`` is a stand-in interpreter whose ``venv`` and
``pip install`` take a second each (a real one downloads PyTorch), so the two runs overlap for certain.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from timeouts import scaled

ROOT = Path(__file__).resolve().parents[1]

FAKE_PYTHON = r"""#!/usr/bin/env bash
# Stand-in for python3.11: env.sh uses "-m venv DIR" and "-c CODE ARGS".
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  sleep 0.5
  mkdir -p "$3/bin"
  cat > "$3/bin/python" <<'EOS'
#!/usr/bin/env bash
# Stand-in for the environment's python: "pip install" takes a while and records itself; "-c" is real Python.
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then
  sleep 1
  echo "$*" >> "$(dirname "$(dirname "$0")")/installed"
  exit 0
fi
if [ "$1" = "-c" ]; then shift; exec python3 -c "$@"; fi
exit 0
EOS
  chmod +x "$3/bin/python"
  exit 0
fi
if [ "$1" = "-c" ]; then shift; exec python3 -c "$@"; fi
exit 1
"""


@pytest.mark.skipif(os.name != "posix", reason="env.sh is a bash script")
def test_two_concurrent_first_runs_both_get_a_complete_environment(tmp_path) -> None:
    fake = tmp_path / "python3.11"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    venv = tmp_path / "cache" / "venv"
    env = {**os.environ, "PYTHON": str(fake), "UNLEARN_VENV": str(venv)}
    script = ('set -euo pipefail; source scripts/env.sh; test -f "$VENV/.complete"; '
              '"$VENV/bin/python" -c "print(1)"; wc -l < "$VENV/installed"')
    runs = [subprocess.Popen(["bash", "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [(p.wait(timeout=scaled(60)), *p.communicate()) for p in runs]
    for code, out, err in results:
        assert code == 0, err
        assert out.split() == ["1", "2"]  # python works; both pip installs of one build are there
    assert (venv / ".complete").exists() and venv.is_symlink()
    # The losers removed their builds; only the published one is left beside the link.
    assert [p.name for p in venv.parent.iterdir() if p.name.startswith("venv.build.")] == [os.readlink(venv)]
    # A later run reuses it without building.
    again = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=scaled(60))
    assert again.returncode == 0 and "creating" not in again.stderr


@pytest.mark.skipif(os.name != "posix", reason="env.sh is a bash script")
def test_an_incomplete_directory_from_an_older_script_is_set_aside_not_used(tmp_path) -> None:
    fake = tmp_path / "python3.11"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)  # no .complete: an interrupted build
    env = {**os.environ, "PYTHON": str(fake), "UNLEARN_VENV": str(venv)}
    done = subprocess.run(["bash", "-c", 'set -euo pipefail; source scripts/env.sh; test -f "$VENV/.complete"'],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=scaled(60))
    assert done.returncode == 0, done.stderr
    assert venv.is_symlink() and (venv / ".complete").exists()
    assert any(p.name.startswith("venv.stale.") for p in tmp_path.iterdir())  # set aside, not deleted
