#!/usr/bin/env bash
# Create .venv and install rundossier with what the demo and the tests need.
# Idempotent: re-installs only when pyproject.toml changed. Needs only python3 (3.11+) and the package registry.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
VENV="${RUNDOSSIER_VENV:-.venv}"
EXTRAS="${1:-test,bench}"

"$PY" - <<'PYCHECK'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"rundossier needs Python 3.11 or newer; {sys.executable} is {sys.version.split()[0]}")
PYCHECK

if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi

stamp="$VENV/.rundossier-installed"
want="$(cat pyproject.toml | sha256sum | cut -c1-16) $EXTRAS"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "installing rundossier[$EXTRAS] into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[$EXTRAS]"
  echo "$want" > "$stamp"
fi
