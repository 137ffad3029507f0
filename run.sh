#!/usr/bin/env bash
# The main job on a fresh machine: set up .venv, then the tour: build GoogLeNet for 32x32 images, print
# its summary, train it on the embedded digits, look inside it and write runs/tour/index.html
# (about 5 minutes on 2 AVX2 CPU cores after the set-up; the README gives the figures).
set -euo pipefail
cd "$(dirname "$0")"
INCEPTIONKIT_EXTRAS=deploy source scripts/env.sh
inceptionkit tour "$@"
