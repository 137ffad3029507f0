#!/usr/bin/env bash
# The test suite on a fresh machine: set up .venv, then run pytest (arguments pass through) in two
# worker processes, one computing thread each: much of the suite is single-threaded tracing and
# compiling, so two workers nearly halve its time on 2 cores (`bash test.sh -n 0` runs it in one).
set -euo pipefail
cd "$(dirname "$0")"
INCEPTIONKIT_EXTRAS=test,deploy source scripts/env.sh
python -m pytest -q -n 2 --dist worksteal "$@"
