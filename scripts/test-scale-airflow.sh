#!/usr/bin/env bash
# The Airflow scale test: scheduler + LocalExecutor (parallelism 8), dag-processor and api-server,
# Airflow's metadata and rundossier's run history in two throwaway PostgreSQL databases, blobs in
# S3 (moto's server on loopback), N DAG runs of a 10-task DAG with seeded failures, retries, one
# task killed with SIGKILL and a retention sweep during the load (tests/scale/airflow/).
# JUnit goes to test-artifacts/scale-airflow.xml, the figures to test-artifacts/scale-airflow-figures.json.
# Extra arguments go to pytest (e.g. `bash scripts/test-scale-airflow.sh --runs 30` for the full case).
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p test-artifacts
bash scripts/bootstrap-airflow.sh || exit 1
# an editable install leaves src/rundossier.egg-info beside the code; Airflow would then see the
# package (and its plugin entry point) twice
rm -rf src/*.egg-info
# a base temp of its own: pytest keeps only the last 3 of /tmp/pytest-of-$USER, which other runs rotate
exec .venv-airflow/bin/python -m pytest -p no:cacheprovider tests/scale/airflow \
  --junitxml=test-artifacts/scale-airflow.xml -o junit_suite_name=scale-airflow --timeout=900 -s \
  --basetemp="${TMPDIR:-/tmp}/rundossier-scale-airflow" "$@"
