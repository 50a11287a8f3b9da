#!/usr/bin/env bash
# Create .venv-prefect: rundossier with its Prefect extra, the way a Prefect user installs it
# (`pip install rundossier[prefect]`), apart from the core .venv (and from Airflow, whose fastapi pin
# Prefect 3.8 cannot share); the test tools, Playwright for the tests of Prefect's own UI in chromium
# (tests/integrations/prefect/browser), and the `prefect-harness` group: the fastapi cap the Prefect
# server the tests start needs (see pyproject.toml). Idempotent: reinstalls only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNDOSSIER_VENV=.venv-prefect exec bash scripts/bootstrap.sh "prefect,server,s3,postgres" "test,browser,prefect-harness"
