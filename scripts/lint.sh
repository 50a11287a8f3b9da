#!/usr/bin/env bash
# Static checks, run by scripts/test.sh before the tests (any finding fails the run):
#   ruff check, ruff format --check, mypy (strict on rundossier.core; see pyproject), import contracts (.importlinter)
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh >/dev/null || exit 1
status=0
step() { echo "== $*"; "$@" || status=1; }
step .venv/bin/ruff check src tests benchmarks scripts
step .venv/bin/ruff format --check src tests benchmarks scripts
step .venv/bin/mypy
step .venv/bin/lint-imports
exit $status
