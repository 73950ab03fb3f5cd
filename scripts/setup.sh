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
# Headless Chromium for the viewer's browser test (tests/test_viewer.py skips without it): Debian's
# chromium and chromium-driver, only where they are missing and apt-get exists; a failure leaves setup going.
if ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  if ! { $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
         --no-install-recommends chromium chromium-driver fonts-dejavu-core; } >/dev/null 2>&1; then
    echo "note: could not install chromium and chromium-driver; the viewer's browser test will skip" >&2
  fi
fi
.venv/bin/python -c "import specdm, torch, diffusers; print(f'specdm {specdm.__version__}, torch {torch.__version__}, diffusers {diffusers.__version__}')"
