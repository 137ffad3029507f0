#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv and install inceptionkit into it.
# Sourced by run.sh and test.sh; safe to run again: it only installs what is missing or changed.
# INCEPTIONKIT_EXTRAS names the extras: run.sh asks for deploy (onnx, onnxruntime, torchao), test.sh for
# test,deploy (timm, selenium, ... besides).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
pip_install() {  # quiet pip; drop this machine's notes about local package mirrors it skips
    "$venv/bin/python" -m pip install -q "$@" 2> >(grep -v "^WARNING: Location 'file:" >&2)
}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    pip_install --upgrade pip
fi
# torch and torchvision first, at the versions this machine carries on disk (a CPU-only machine
# would otherwise fetch gigabytes); pyproject.toml asks for torch 2.14.x, the release deploy is tested with.
if ! "$venv/bin/python" -c "import torch, torchvision" 2>/dev/null; then
    pip_install "torch==2.14.1" "torchvision==0.29.1"
fi
extras="${INCEPTIONKIT_EXTRAS:-}"
stamp="$venv/.inceptionkit-installed${extras:+-$extras}"
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
    pip_install -e "$root${extras:+[$extras]}"
    touch "$stamp"
fi
export PATH="$venv/bin:$PATH"
