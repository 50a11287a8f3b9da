"""Store fixtures shared by the conformance suites: a SQLite file per test, one PostgreSQL store
per session emptied before each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from rundossier.storage.db import RunStore
from rundossier.storage.db.models import SQLModel


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[RunStore]:
    s = RunStore(f"sqlite:///{tmp_path}/runs.db", timeout=5)
    yield s
    s.close()


@pytest.fixture(scope="session")
def _pg_session_store(pg_url: str) -> Iterator[RunStore]:
    s = RunStore(pg_url, timeout=5)
    yield s
    s.close()


@pytest.fixture
def pg_store(_pg_session_store: RunStore) -> RunStore:
    tables = ", ".join(t.name for t in SQLModel.metadata.sorted_tables)
    with _pg_session_store._write.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables}"))
    return _pg_session_store
