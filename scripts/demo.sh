#!/usr/bin/env bash
# The main job: install what a user needs (the package and its web server, no test tools), record
# failing example runs into the home every rundossier command reads (RUNDOSSIER_HOME, by default
# ~/.rundossier), show where to look.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh server "" >&2
exec .venv/bin/rundossier demo "$@"
