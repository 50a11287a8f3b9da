#!/usr/bin/env bash
# The main job: install what a user needs (the package and its web server, no test tools), record
# failing example runs on the embedded defaults, show where to look.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh server "" >&2
export RUNDOSSIER_HOME="${RUNDOSSIER_HOME:-$PWD/.rundossier}"
exec .venv/bin/rundossier demo "$@"
