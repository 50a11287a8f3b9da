"""Migrations run only through `rundossier db upgrade`: an empty database gets the schema on first
use, one at an older revision gets a clear error naming the command (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rundossier.cli.main import main
from rundossier.errors import SchemaOutdated
from rundossier.storage.db import RunStore
from rundossier.storage.db.schema import current_revision, head_revision, upgrade
from tests.pgdb import temporary_database

OLD = "0005"


def _record(store: RunStore) -> str:
    return store.upsert_run({"orchestrator": "python", "flow_id": "f", "run_key": "k", "status": "success"})


def _old_then_upgraded(url: str) -> None:
    old = RunStore(url, timeout=5, migrate=False)
    try:
        assert upgrade(old._write, OLD).startswith(OLD)
    finally:
        old.close()
    with pytest.raises(SchemaOutdated, match="rundossier db upgrade") as caught:
        RunStore(url, timeout=5)
    assert OLD in str(caught.value) and head_revision() in str(caught.value)
    store = RunStore(url, timeout=5, migrate=False)
    try:
        with store._write.connect() as conn:
            assert current_revision(conn).startswith(OLD)  # the failed open migrated nothing
        assert store.upgrade() == head_revision()
    finally:
        store.close()
    store = RunStore(url, timeout=5)
    try:
        assert store.get_run(_record(store)).status == "success"
    finally:
        store.close()


def test_an_empty_sqlite_home_gets_the_schema_on_first_use(tmp_path: Path) -> None:
    store = RunStore(f"sqlite:///{tmp_path}/home/runs.db", timeout=5)
    try:
        assert store.get_run(_record(store)).flow_id == "f"
        with store._write.connect() as conn:
            assert current_revision(conn) == head_revision()
    finally:
        store.close()


def test_an_older_sqlite_database_needs_db_upgrade(tmp_path: Path) -> None:
    _old_then_upgraded(f"sqlite:///{tmp_path}/runs.db")


def test_tables_without_a_version_are_not_migrated_implicitly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/runs.db"
    RunStore(url, timeout=5).close()
    store = RunStore(url, timeout=5, migrate=False)
    with store._write.begin() as conn:
        conn.exec_driver_sql("DROP TABLE rd_alembic_version")
    store.close()
    with pytest.raises(SchemaOutdated, match="rundossier db upgrade"):
        RunStore(url, timeout=5)


@pytest.mark.postgres
def test_an_older_postgres_database_needs_db_upgrade() -> None:
    with temporary_database() as url:
        _old_then_upgraded(url)


def test_the_cli_shows_it_on_one_line_and_db_upgrade_fixes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/runs.db"
    monkeypatch.setenv("RUNDOSSIER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RUNDOSSIER_DB_URL", url)
    old = RunStore(url, timeout=5, migrate=False)
    upgrade(old._write, OLD)
    old.close()
    assert main(["runs", "--json"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "SchemaOutdated" in err and "rundossier db upgrade" in err
    assert main(["db", "upgrade"]) == 0
    assert f"revision {head_revision()} " in capsys.readouterr().out
    assert main(["runs", "--json"]) == 0


def test_the_server_answers_503_with_the_error_shape(tmp_path: Path) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from rundossier.server.errors import install

    app = FastAPI()
    install(app)

    @app.get("/x")
    def _x() -> None:
        raise SchemaOutdated("the database is at schema revision 0005; run `rundossier db upgrade`")

    r = TestClient(app).get("/x")
    assert r.status_code == 503
    assert r.json()["error"]["type"] == "schema_outdated" and "rundossier db upgrade" in r.json()["error"]["message"]
