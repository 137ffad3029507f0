#!/usr/bin/env bash
# The test suite on a fresh machine: set up .venv, then run pytest (arguments pass through).
set -euo pipefail
cd "$(dirname "$0")"
source scripts/env.sh
python -m pytest -q "$@"
