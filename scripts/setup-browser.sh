#!/usr/bin/env bash
# The browser for the UI tests (marker `ui`): Debian's chromium (and chromium-driver) through apt,
# and Playwright's Python package in .venv, which drives that chromium by its executable path
# (Playwright's own browser download does not reach its CDN here, and is not needed).
# Idempotent: with /usr/bin/chromium present and playwright importable it installs nothing.
# Needs root (or passwordless sudo) for apt-get the first time. Run by run-tests.sh in the background.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/venv-lib.sh"
started=$SECONDS
PLAYWRIGHT="$(grep -i -m1 '^playwright==' "$ROOT/constraints.txt")"
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  echo ">> Installing Debian's chromium and chromium-driver"
  SUDO=""
  [ "$(id -u)" = "0" ] || SUDO="sudo -n"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi
if ! "$ROOT/.venv/bin/python" -c 'import playwright' 2>/dev/null; then
  echo ">> Installing $PLAYWRIGHT into .venv"
  agc_install "$ROOT/.venv" -c "$ROOT/constraints.txt" "$PLAYWRIGHT"
fi
echo ">> browser ready in $((SECONDS - started)) s: $(/usr/bin/chromium --version 2>/dev/null), playwright $("$ROOT/.venv/bin/python" -c 'import importlib.metadata as m; print(m.version("playwright"))')"
