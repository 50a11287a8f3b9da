#!/usr/bin/env bash
# The main job: install, record failing example runs on the embedded defaults, show where to look.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh test,bench >&2
export RUNDOSSIER_HOME="${RUNDOSSIER_HOME:-$PWD/.rundossier}"
exec .venv/bin/rundossier demo "$@"
