"""Shared fixtures: an isolated RUNDOSSIER_HOME, the PostgreSQL test database, the S3 server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pgdb import REQUIRED, pg_unavailable_reason, temporary_database

# The browser tests drive Debian's chromium: scripts/test-browser.sh runs them (it sets this).
collect_ignore = [] if os.environ.get("RUNDOSSIER_BROWSER_TESTS") == "1" else ["browser"]


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads or writes the developer's ~/.rundossier or RUNDOSSIER_* settings."""
    for var in list(os.environ):
        if var.startswith("RUNDOSSIER_") and not var.startswith("RUNDOSSIER_TEST") and var != "RUNDOSSIER_REQUIRE_PG":
            monkeypatch.delenv(var)
    home = tmp_path / "rdhome"
    monkeypatch.setenv("RUNDOSSIER_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (required when RUNDOSSIER_REQUIRE_PG=1)."""
    reason = pg_unavailable_reason()
    if reason is not None:
        if REQUIRED:
            pytest.fail(f"{reason} (RUNDOSSIER_REQUIRE_PG=1: PostgreSQL tests are required here)")
        pytest.skip(reason)
    with temporary_database() as url:
        yield url
