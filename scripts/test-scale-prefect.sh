#!/usr/bin/env bash
# Prefect with many workers (run by scripts/test.sh): tests/scale/prefect in .venv-prefect. A Prefect
# server on loopback, a process work pool with 4 workers, flow runs with mapped tasks, failures,
# retries and one SIGKILL, the RunDossier Block on PostgreSQL (127.0.0.1:5432) + S3 (moto server),
# a retention sweep running during the load. JUnit: test-artifacts/scale-prefect.xml.
#   bash scripts/test-scale-prefect.sh            the CI size: 12 flow runs (RD_SCALE_FLOW_RUNS), under
#                                                 5 minutes on an idle 2-core machine (~13 s a flow run)
#   RD_SCALE_FLOW_RUNS=100 bash scripts/test-scale-prefect.sh    the full case (~20 minutes there)
# The figures (flow runs, tries, wall time, connections per process) are printed at the end (-s).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap-prefect.sh
mkdir -p test-artifacts
exec nice .venv-prefect/bin/python -m pytest -p no:cacheprovider tests/scale/prefect -s \
  --junitxml=test-artifacts/scale-prefect.xml -o junit_suite_name=scale-prefect --timeout=900 "$@"
