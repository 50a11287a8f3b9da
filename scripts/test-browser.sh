#!/usr/bin/env bash
# Browser tests of the web UI: Debian's chromium (/usr/bin/chromium) driven by Playwright's Python
# package against the real app on loopback. Run by scripts/test.sh after the core suite.
#   - installs chromium with apt-get when it is missing and we are root (CI); otherwise says how
#   - installs the `browser` dependency group (Playwright; its wheel bundles the driver, no browser download)
# JUnit goes to test-artifacts/browser.xml (and browser-prefect.xml), screenshots to test-artifacts/screenshots/.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p test-artifacts/screenshots

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium (apt-get install chromium)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
      || echo "test-browser: apt-get could not install chromium" >&2
  else
    echo "test-browser: /usr/bin/chromium is missing; install it with 'sudo apt-get install chromium'" \
         "(Debian/Ubuntu) to run the browser tests" >&2
  fi
fi

bash scripts/bootstrap.sh >/dev/null || exit 1
if ! .venv/bin/python -c "import playwright.sync_api" >/dev/null 2>&1; then
  echo "installing the browser dependency group (Playwright) into .venv"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --group browser || exit 1
fi

RUNDOSSIER_BROWSER_TESTS=1 .venv/bin/python -m pytest -p no:cacheprovider -q \
  --junitxml=test-artifacts/browser.xml tests/browser "$@"
core=$?

# Prefect's own UI (a real `prefect server start`) showing rundossier's artifacts and Block: in
# .venv-prefect, whose bootstrap installs the browser group too
bash scripts/bootstrap-prefect.sh >/dev/null || exit 1
RUNDOSSIER_BROWSER_TESTS=1 .venv-prefect/bin/python -m pytest -p no:cacheprovider -q \
  --junitxml=test-artifacts/browser-prefect.xml tests/integrations/prefect/browser "$@"
prefect=$?
exit $(( core != 0 ? core : prefect ))
