#!/usr/bin/env bash
# The main job: install, record failing example runs into the home every rundossier command reads
# (RUNDOSSIER_HOME, by default ~/.rundossier), show where to look.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh test,bench >&2
exec .venv/bin/rundossier demo "$@"
