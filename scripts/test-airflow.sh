#!/usr/bin/env bash
# The Airflow part of the test suite: a real Airflow 3 in its own venv (.venv-airflow), the
# plugin loaded through its entry point, the example DAGs run with `airflow dags test`, a real
# api-server and Debian's chromium driven by Playwright. JUnit goes to test-artifacts/airflow.xml.
# The session fixtures run five DAGs and start an api-server, hence the longer per-test timeout.
# Extra arguments go to pytest (e.g. `bash scripts/test-airflow.sh -k trace`).
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p test-artifacts
bash scripts/bootstrap-airflow.sh || exit 1
# an editable install leaves src/rundossier.egg-info beside the code; Airflow would then see the
# package (and its plugin entry point) twice
rm -rf src/*.egg-info
exec .venv-airflow/bin/python -m pytest -p no:cacheprovider tests/integrations/airflow \
  --junitxml=test-artifacts/airflow.xml -o junit_suite_name=airflow --timeout=900 "$@"
