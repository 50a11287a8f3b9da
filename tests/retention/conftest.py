"""Fixtures for retention tests: a store on SQLite or PostgreSQL, local blob storage, the S3 server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from rundossier.storage.blobs import BlobStore
from rundossier.storage.db import RunStore
from tests.s3server import moto_s3_server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    with moto_s3_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def _pg_store(pg_url: str) -> Iterator[RunStore]:
    s = RunStore(pg_url, timeout=10)
    yield s
    s.close()


def empty_pg(store: RunStore) -> RunStore:
    with store.transaction("empty the test database") as conn:
        conn.execute(text("TRUNCATE rd_run, rd_step, rd_event, rd_retention_policy"))
    return store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunStore]:
    if request.param == "sqlite":
        s = RunStore(f"sqlite:///{tmp_path}/runs.db", timeout=10)
        yield s
        s.close()
    else:
        yield empty_pg(request.getfixturevalue("_pg_store"))


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(f"file://{tmp_path}/blobs")


class DiskFault:
    """Makes removing folders fail (PermissionError "the disk went away") until `heal()`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import os

        self._mp = monkeypatch
        self._real = os.rmdir

        def broken(path: object, *args: object, **kwargs: object) -> None:
            raise PermissionError(f"the disk went away: {path}")

        monkeypatch.setattr(os, "rmdir", broken)

    def heal(self) -> None:
        import os

        self._mp.setattr(os, "rmdir", self._real)


@pytest.fixture
def disk_fault(monkeypatch: pytest.MonkeyPatch) -> DiskFault:
    return DiskFault(monkeypatch)
