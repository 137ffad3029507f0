#!/usr/bin/env bash
# The main job on a fresh machine: set up .venv, list every network, summarise one, then train
# googlenet_cifar (width 0.25) on the embedded digits (about 4 minutes on 2 CPU cores).
set -euo pipefail
cd "$(dirname "$0")"
source scripts/env.sh
inceptionkit list
inceptionkit summary "${1:-googlenet}"
inceptionkit train googlenet_cifar --width 0.25 --epochs 12 # writes runs/googlenet_cifar-digits[-N]/
