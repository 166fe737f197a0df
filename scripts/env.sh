# Sourced by scripts/test.sh and scripts/run.sh: create (once) and activate the project's virtual environment.
# VENV defaults to a directory under the user cache keyed by the hash of requirements*.txt, so a fresh clone
# reuses an environment built for the same pins and a change of pins builds a new one.
py="${PYTHON:-python3.11}"
command -v "$py" >/dev/null 2>&1 || py=python3
hash=$(cat requirements.txt requirements-dev.txt requirements-cluster.txt | sha256sum | cut -c1-16)
VENV="${UNLEARN_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/unlearn-explorer/venv-$hash}"
if [ ! -x "$VENV/bin/python" ] || [ ! -f "$VENV/.complete" ]; then
  echo "== creating $VENV (first run: installs torch and friends, a few minutes)" >&2
  rm -rf "$VENV"
  "$py" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  "$VENV/bin/python" -m pip install -q -r requirements-dev.txt >&2
  touch "$VENV/.complete"
fi
export VENV
