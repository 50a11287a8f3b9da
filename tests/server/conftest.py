"""A real uvicorn on loopback serving the real app, over SQLite and over PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from rundossier import Recorder
from rundossier.server import create_app
from rundossier.settings import Settings
from rundossier.storage.blobs import BlobStore
from rundossier.storage.db import RunStore
from tests.liveserver import LiveServer


@dataclass
class Api:
    """The server under test, a client for it, and the recorder and store behind it."""

    url: str
    client: httpx.Client
    rec: Recorder
    store: RunStore
    blobs: BlobStore
    settings: Settings


def _db_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/runs.db"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def _served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One server per module and database (starting one per test costs more than the tests)."""
    tmp_path = tmp_path_factory.mktemp("api")
    settings = Settings.resolve(
        explicit={
            "home": str(tmp_path / "home"),
            "db_url": _db_url(request.param, tmp_path, request),
            "storage_url": f"file://{tmp_path}/blobs",
        }
    )
    store = RunStore(settings.db_url, timeout=5)
    blobs = BlobStore(settings.storage_url)
    rec = Recorder(settings, store=store, blobs=blobs, live_log_interval=None)
    app = create_app(settings, store=store, blobs=blobs)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        yield Api(server.url, client, rec, store, blobs, settings)
    store.close()


TABLES = (
    "rd_event",
    "rd_step",
    "rd_run",
    "rd_retention_policy",
    "rd_failure_group",
    "rd_failure_day",
    "rd_failure_resolution",
)


@pytest.fixture
def api(_served: Api) -> Api:
    """The module's server with empty tables (blobs stay: every run has its own id)."""
    with _served.store._write.begin() as conn:
        if _served.store.dialect == "sqlite":
            for table in TABLES:
                conn.execute(text(f"DELETE FROM {table}"))
        else:
            conn.execute(text(f"TRUNCATE {', '.join(TABLES)}"))
    return _served
