"""Prefect's own UI in Debian's chromium: a real `prefect server start` (its UI), a real rundossier
server for the links, a flow run in its own process. Run by scripts/test-browser.sh, in .venv-prefect
(`RUNDOSSIER_BROWSER_TESTS=1`; it installs the `browser` extra there)."""

from __future__ import annotations

import importlib.util
import os

if os.environ.get("RUNDOSSIER_BROWSER_TESTS") != "1" or importlib.util.find_spec("prefect") is None:
    collect_ignore_glob = ["test_*.py"]
