#!/usr/bin/env bash
# The Airflow scale test on the CeleryExecutor: the same deployment and assertions as
# scripts/test-scale-airflow.sh, with two `airflow celery worker`s (concurrency 4 each) instead of
# the LocalExecutor, Redis as the broker (RUNDOSSIER_TEST_REDIS_URL, default
# redis://127.0.0.1:6379/13; only that database is flushed) and the Celery result backend in a
# throwaway PostgreSQL database. 10 DAG runs by default (CI's budget); RD_SCALE_DAG_RUNS=30
# (or `--runs 30`) for the issue's full case. Skips when Redis does not answer.
# JUnit goes to test-artifacts/scale-airflow-celery.xml, the figures to
# test-artifacts/scale-airflow-celery-figures.json.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p test-artifacts
bash scripts/bootstrap-airflow.sh || exit 1
# an editable install leaves src/rundossier.egg-info beside the code; Airflow would then see the
# package (and its plugin entry point) twice
rm -rf src/*.egg-info
exec .venv-airflow/bin/python -m pytest -p no:cacheprovider tests/scale/airflow --executor celery \
  --junitxml=test-artifacts/scale-airflow-celery.xml -o junit_suite_name=scale-airflow-celery --timeout=900 -s \
  --basetemp="${TMPDIR:-/tmp}/rundossier-scale-airflow-celery" "$@"
