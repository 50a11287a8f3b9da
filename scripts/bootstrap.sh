#!/usr/bin/env bash
# Create .venv and install rundossier (editable) with the given extras and dependency groups:
#   bash scripts/bootstrap.sh [EXTRAS [GROUPS]]
#   EXTRAS  what a user installs, comma-separated (default: server,s3,postgres)
#   GROUPS  PEP 735 dependency groups of pyproject.toml, comma-separated (default: test,lint,bench,docs;
#           "" for none: the demo installs only the package and its server)
# Idempotent: re-installs only when pyproject.toml changed (one stamp per EXTRAS/GROUPS pair).
# Needs only python3 (3.11+) and the package registry; pip 25.1+ (for --group) is installed here.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
VENV="${RUNDOSSIER_VENV:-.venv}"
EXTRAS="${1-server,s3,postgres}"
DEP_GROUPS="${2-test,lint,bench,docs}"

"$PY" - <<'PYCHECK'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"rundossier needs Python 3.11 or newer; {sys.executable} is {sys.version.split()[0]}")
PYCHECK

if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV"
  "$PY" -m venv "$VENV"
fi

stamp="$VENV/.rundossier-installed-$(echo "$EXTRAS/$DEP_GROUPS" | sha256sum | cut -c1-8)"
want="$(sha256sum < pyproject.toml | cut -c1-16) [$EXTRAS] groups=$DEP_GROUPS"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "installing rundossier[$EXTRAS]${DEP_GROUPS:+ with the groups $DEP_GROUPS} into $VENV"
  # --group needs pip 25.1 or newer
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip>=25.1"
  args=(-e ".[$EXTRAS]")
  IFS=, read -ra groups <<< "$DEP_GROUPS"
  for g in "${groups[@]}"; do [ -n "$g" ] && args+=(--group "$g"); done
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${args[@]}"
  echo "$want" > "$stamp"
fi
