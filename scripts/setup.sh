#!/usr/bin/env bash
# Create .venv and install specdm: torch first, then everything else constrained to that torch.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  "${PYTHON:-python3}" -m venv .venv
fi
pip_install() {  # quiet on success, the full log on failure
  local log
  log=$(mktemp)
  if ! .venv/bin/python -m pip install -q "$@" >"$log" 2>&1; then
    grep -v "^WARNING: Location" "$log" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
}
pip_install "torch==2.13.0"
pip_install -c constraints.txt -e ".[test,segformer]"
.venv/bin/python -c "import specdm, torch, diffusers; print(f'specdm {specdm.__version__}, torch {torch.__version__}, diffusers {diffusers.__version__}')"
