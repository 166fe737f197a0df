#!/usr/bin/env bash
# Install everything into a virtual environment and launch the dashboard (the README's run command).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
exec "$VENV/bin/python" -m streamlit run app.py "$@"
