#!/usr/bin/env bash
# Create .venv-airflow: Apache Airflow 3 with rundossier[airflow,s3,postgres], the test and browser
# dependency groups (Playwright), and Airflow's Celery provider (the CeleryExecutor scale test, with
# Redis as its broker), in its own venv
# (Airflow pins its own FastAPI range; Prefect wants other versions). Debian's chromium for the browser test.
# Idempotent: reinstalls only when pyproject.toml or this script changes. Never downloads a browser.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
VENV="${RUNDOSSIER_AIRFLOW_VENV:-.venv-airflow}"
AIRFLOW_VERSION="${AIRFLOW_VERSION:-3.3.2}"
# the Celery provider released for Airflow 3.3 (it brings celery, kombu and the redis client)
CELERY_PROVIDER_VERSION="${CELERY_PROVIDER_VERSION:-3.26.0}"
# celery 5.7 dropped `celery.backends.database.retry`, which that provider imports: keep 5.6
CELERY_VERSION="${CELERY_VERSION:-5.6.3}"

if [ ! -x /usr/bin/chromium ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "installing Debian's chromium (for the browser test)"
    { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
      || echo "note: could not install chromium; the browser test will skip" >&2
  else
    echo "note: /usr/bin/chromium is missing and cannot be installed here; the browser test will skip" >&2
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV"
  "$PY" -m venv "$VENV"
fi

stamp="$VENV/.rundossier-installed"
want="$(cat pyproject.toml scripts/bootstrap-airflow.sh | sha256sum | cut -c1-16) airflow=$AIRFLOW_VERSION celery=$CELERY_PROVIDER_VERSION/$CELERY_VERSION"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "installing apache-airflow==$AIRFLOW_VERSION (with its Celery provider) and rundossier[airflow,s3,postgres] into $VENV"
  # --group needs pip 25.1 or newer
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip>=25.1"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "apache-airflow==$AIRFLOW_VERSION" "apache-airflow-providers-celery==$CELERY_PROVIDER_VERSION" "celery==$CELERY_VERSION" \
    -e ".[airflow,s3,postgres]" --group test --group browser
  echo "$want" > "$stamp"
fi
