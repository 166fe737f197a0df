# Sourced by scripts/test.sh and scripts/run.sh: create (once) and activate the project's virtual environment.
# VENV defaults to a directory under the user cache keyed by the hash of requirements*.txt, so a fresh clone
# reuses an environment built for the same pins and a change of pins builds a new one.
#
# Two first runs started together (two terminals, CI jobs sharing a cache) must not delete each other's
# half-built environment. So nothing is ever built at $VENV itself: each run builds in its own directory beside
# it ($VENV.build.XXXXXX), then publishes it as a symlink $VENV -> that directory, created atomically and only if
# $VENV is absent. The first finished build wins; the others use it and remove their own.
py="${PYTHON:-python3.11}"
command -v "$py" >/dev/null 2>&1 || py=python3
hash=$(cat requirements.txt requirements-dev.txt requirements-cluster.txt | sha256sum | cut -c1-16)
VENV="${UNLEARN_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/unlearn-explorer/venv-$hash}"
if [ ! -x "$VENV/bin/python" ] || [ ! -f "$VENV/.complete" ]; then
  echo "== creating $VENV (first run: installs torch and friends, a few minutes)" >&2
  mkdir -p "$(dirname "$VENV")"
  build=$(mktemp -d "$VENV.build.XXXXXX")
  "$py" -m venv "$build"
  "$build/bin/python" -m pip install -q --upgrade pip >&2
  "$build/bin/python" -m pip install -q -r requirements-dev.txt >&2
  touch "$build/.complete"
  # Publish: symlink(2) creates $VENV only if nothing is there (atomic), so the first finished build wins; a
  # later one finds a complete $VENV and removes its own build, which nothing has used. An incomplete leftover
  # (an older env.sh's interrupted build, a dangling link) is renamed aside first. Python, for portability.
  "$py" -c '
import os, shutil, sys, time
build, venv = sys.argv[1], sys.argv[2]
def complete(path):
    return os.path.isfile(os.path.join(path, ".complete")) and os.access(os.path.join(path, "bin", "python"), os.X_OK)
for _ in range(5):
    try:
        os.symlink(os.path.basename(build), venv)
        sys.exit(0)
    except FileExistsError:
        if complete(venv):
            shutil.rmtree(build)
            sys.exit(0)
        try:
            os.rename(venv, f"{venv}.stale.{os.getpid()}.{time.time_ns()}")
        except FileNotFoundError:
            pass
sys.exit(f"error: could not publish {build} as {venv}")
' "$build" "$VENV"
fi
export VENV
