#!/usr/bin/env bash
# Install everything into a virtual environment and run the test suite (the README's test command).
# The environment lives outside the checkout, keyed by the requirements' hash, so a second run reuses it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
export UNLEARN_DATA_DIR="${UNLEARN_DATA_DIR:-$(cd .. && pwd)/shared/data}"
"$VENV/bin/python" -m ruff check .
# The 20 slowest tests, every run: a test creeping towards the 60-s budget shows up in the CI log first.
"$VENV/bin/python" -m pytest -q --durations=20 "$@"
