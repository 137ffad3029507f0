#!/usr/bin/env bash
# The main job on a fresh machine: set up .venv, list every network, and summarise one.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/env.sh
inceptionkit list
inceptionkit summary "${1:-googlenet}"
