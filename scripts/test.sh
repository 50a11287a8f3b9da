#!/usr/bin/env bash
# The whole test suite: installs what it needs, then runs every part and prints one summary line.
#   lint      scripts/lint.sh: ruff check, ruff format --check, mypy, import contracts (any finding fails the run)
#   core      .venv          rundossier itself (SQLite, PostgreSQL, S3 on loopback, the API)
#   more      scripts/test-*.sh, each with its own environment (Airflow, Prefect, the browser)
# PostgreSQL tests skip with a reason when no server answers on 127.0.0.1:5432, unless
# RUNDOSSIER_REQUIRE_PG=1 (CI sets it), which makes them required.
# Extra arguments go to the core pytest run (e.g. `bash scripts/test.sh -k trace`).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${CI:-}" = "true" ]; then export RUNDOSSIER_REQUIRE_PG="${RUNDOSSIER_REQUIRE_PG:-1}"; fi
mkdir -p test-artifacts
rm -f test-artifacts/*.xml

status=0
bash scripts/bootstrap.sh || exit 1
lint=0
bash scripts/lint.sh || { lint=1; status=1; }
# two workers (pytest-xdist): the core tests are independent (each has its own home, database, ports)
.venv/bin/python -m pytest -p no:cacheprovider -n "${RUNDOSSIER_TEST_WORKERS:-2}" --junitxml=test-artifacts/core.xml "$@" || status=1

for part in scripts/test-*.sh; do
  [ -e "$part" ] || continue
  echo "== $part"
  bash "$part" || status=1
done

.venv/bin/python scripts/summary.py test-artifacts/*.xml || status=1
if [ "$lint" != 0 ]; then echo "lint: FAILED (see the findings above)"; fi
exit $status
