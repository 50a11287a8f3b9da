#!/usr/bin/env bash
# The Prefect part of the tests (run by scripts/test.sh): tests/integrations/prefect in .venv-prefect,
# against one temporary Prefect server on loopback (prefect_test_harness). The tests' conftest gives
# Prefect a temporary home, so nothing reads or writes ~/.prefect. JUnit: test-artifacts/prefect.xml.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap-prefect.sh
mkdir -p test-artifacts
exec .venv-prefect/bin/python -m pytest -p no:cacheprovider tests/integrations/prefect \
  --junitxml=test-artifacts/prefect.xml "$@"
