"""The store contract on SQLite (a file per test) and PostgreSQL (one database, emptied per test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rundossier.errors import ConfigError, StoreError
from rundossier.storage.db import RunStore
from tests.storage.db.conformance import StoreConformance


class TestSQLite(StoreConformance):
    @pytest.fixture
    def store(self, sqlite_store: RunStore) -> RunStore:
        return sqlite_store


@pytest.mark.postgres
class TestPostgres(StoreConformance):
    @pytest.fixture
    def store(self, pg_store: RunStore) -> RunStore:
        return pg_store


def test_sqlite_uses_wal(tmp_path: Path) -> None:
    s = RunStore(f"sqlite:///{tmp_path}/w.db")
    with s._write.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_sqlite_creates_missing_parent_directories(tmp_path: Path) -> None:
    RunStore(f"sqlite:///{tmp_path}/a/b/c/runs.db")
    assert (tmp_path / "a/b/c/runs.db").exists()


@pytest.mark.parametrize("url", ["not a url", "mysql://u@h/db", "oracle://x"])
def test_unsupported_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        RunStore(url)


def test_a_locked_sqlite_database_is_a_store_error_after_the_timeout(tmp_path: Path) -> None:
    import sqlite3

    s = RunStore(f"sqlite:///{tmp_path}/l.db", timeout=0.2)
    locker = sqlite3.connect(tmp_path / "l.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="locked"):
            s.upsert_run({"orchestrator": "python", "flow_id": "f", "run_key": "k", "status": "running"})
    finally:
        locker.execute("ROLLBACK")
    s.upsert_run({"orchestrator": "python", "flow_id": "f", "run_key": "k", "status": "running"})
    assert s.count_runs() == 1


def test_an_unreachable_postgres_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="127.0.0.1:1"):
        RunStore("postgresql://nobody@127.0.0.1:1/none", timeout=1)
