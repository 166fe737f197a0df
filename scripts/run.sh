#!/usr/bin/env bash
# Install everything into a virtual environment and launch the dashboard (the README's run command).
# It listens on 127.0.0.1 only. Anyone who reaches the port can run jobs and delete stored runs, so exposing it is
# a deliberate act: pass an address, e.g. `bash scripts/run.sh --server.address 0.0.0.0` (the last flag wins),
# and put it behind a reverse proxy with authentication (README, "Exposing the dashboard").
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
exec "$VENV/bin/python" -m streamlit run app.py --server.address 127.0.0.1 "$@"
