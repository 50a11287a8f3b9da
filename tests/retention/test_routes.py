"""The retention API: overview, PUT/DELETE rules with validation, POST sweep (TestClient on a real store)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import HTTPException, Request
from fastapi.testclient import TestClient

from rundossier.server import create_app
from rundossier.server.access import Access
from rundossier.settings import Settings
from rundossier.storage.blobs import BlobStore
from rundossier.storage.db import RunStore
from tests.retention.helpers import make_run


@pytest.fixture
def backends(tmp_path: Path) -> Iterator[tuple[RunStore, BlobStore]]:
    store = RunStore(f"sqlite:///{tmp_path}/r.db")
    blobs = BlobStore(f"file://{tmp_path}/b")
    now = datetime.now(UTC)
    for i in range(5):
        make_run(store, blobs, "finance_daily", age_days=i * 10 + 1, failed_step=i % 2 == 0, seq=i, now=now)
    make_run(store, blobs, "ops", age_days=50, now=now)
    make_run(store, blobs, "ops", age_days=500, status="paused", now=now)
    yield store, blobs
    store.close()


def _client(backends: tuple[RunStore, BlobStore], tmp_path: Path, access: Access | None = None) -> TestClient:
    store, blobs = backends
    settings = Settings.resolve(explicit={"home": str(tmp_path)})
    return TestClient(create_app(settings, store=store, blobs=blobs, access=access, ui=False))


@pytest.fixture
def client(backends: tuple[RunStore, BlobStore], tmp_path: Path) -> TestClient:
    return _client(backends, tmp_path)


def _flow(data: dict[str, Any], flow_id: str) -> dict[str, Any]:
    return next(f for f in data["flows"] if f["flow_id"] == flow_id)


def test_the_overview_has_what_the_retention_page_shows(client: TestClient) -> None:
    r = client.put("/api/retention/finance_*", json={"keep_days": 25, "blob_days": 5})
    assert r.status_code == 200
    assert r.json()["rule"] | {"updated_at": None} == {
        "flow_pattern": "finance_*",
        "kind": "glob",
        "keep_days": 25,
        "keep_last": None,
        "blob_days": 5,
        "source": "api",
        "updated_at": None,
        "flows": ["finance_daily"],
    }
    data = client.get("/api/retention").json()
    assert data["builtin"]["describe"] == "30 days or last 100 runs" and data["cap"] == {"enabled": False}
    fin = _flow(data, "finance_daily")
    assert fin["policy"] == {"keep_days": 25, "keep_last": 100, "blob_days": 5}
    assert fin["rule"] == "finance_*" and fin["rule_kind"] == "glob" and fin["rule_source"] == "api"
    assert fin["fields_from"] == {"keep_days": "finance_*", "keep_last": "built-in", "blob_days": "finance_*"}
    assert fin["runs"] == 5
    # ended 1, 11, 21, 31, 41 days ago: two past 25 days, two more past 5 days
    assert fin["would_remove"] | {"bytes": 0, "by_rule": {}} == {
        "runs": 2,
        "runs_expired": 2,
        "steps": 2,
        "events": 2,
        "blobs": 12,  # 31 days: a log and its index; 41: log, index and trace (text, JSON); 11, 21 alike
        "bytes": 0,
        "by_rule": {},
    }
    assert fin["would_remove"]["by_rule"] == {"blob_days": 2, "keep_days": 2} and fin["would_remove"]["bytes"] > 0
    ops = _flow(data, "ops")
    assert ops["rule"] is None and ops["reason"].startswith("built-in default") and ops["would_remove"]["runs"] == 1
    assert data["preview"]["totals"]["runs_removed"] == 3
    fast = client.get("/api/retention", params={"preview": "false", "flow_id": "ops"}).json()
    assert fast["preview"] is None and [f["flow_id"] for f in fast["flows"]] == ["ops"]
    assert fast["flows"][0]["would_remove"] is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"keep_days": -1}, "keep_days: Input should be greater than or equal to 0"),
        ({"keep_last": "10"}, "keep_last: Input should be a valid integer"),
        ({"blob_days": 1.5}, "blob_days: Input should be a valid integer"),
        ({"keep_days": True}, "keep_days: Input should be a valid integer"),
        ({"keep_days": 40000}, "keep_days: Input should be less than or equal to 36500"),
        ({"keep_forever": 1}, "keep_forever: Extra inputs are not permitted"),
    ],
)
def test_bad_values_get_422_in_the_error_shape(client: TestClient, body: dict[str, Any], message: str) -> None:
    r = client.put("/api/retention/etl", json=body)
    assert r.status_code == 422
    assert r.json()["error"]["type"] == "invalid_request" and message in r.json()["error"]["message"]
    assert client.get("/api/retention", params={"preview": "false"}).json()["rules"] == []


def test_bad_patterns_get_422(client: TestClient) -> None:
    r = client.put("/api/retention/" + "x" * 251, json={"keep_days": 1})
    assert r.status_code == 422 and "at most 250" in r.json()["error"]["message"]


def test_default_rule_globs_with_slashes_and_delete(client: TestClient) -> None:
    assert client.put("/api/retention/*", json={"keep_last": 0}).json()["rule"]["kind"] == "default"
    assert client.put("/api/retention/team/a b", json={"keep_days": 3}).json()["rule"]["flow_pattern"] == "team/a b"
    assert client.put("/api/retention/*", json={}).json()["rule"]["keep_last"] is None  # PUT replaces the rule
    assert client.delete("/api/retention/team/a b").json() == {"removed": "team/a b"}
    r = client.delete("/api/retention/team/a b")
    assert r.status_code == 404 and r.json()["error"]["type"] == "rule_not_found"


def test_sweep_dry_run_then_real(client: TestClient, backends: tuple[RunStore, BlobStore]) -> None:
    store, _ = backends
    client.put("/api/retention/*", json={"keep_days": 25})
    dry = client.post("/api/retention/sweep", params={"dry_run": "true"})
    assert dry.status_code == 200 and dry.json()["dry_run"] is True and store.count_runs() == 7
    real = client.post("/api/retention/sweep", params={"orphans": "true", "batch_size": 2})
    assert real.status_code == 200
    body = real.json()
    assert body["totals"] == dry.json()["totals"] and body["totals"]["runs_removed"] == 3
    assert body["orphans"]["complete"] is True and store.count_runs() == 4
    assert client.post("/api/retention/sweep", params={"batch_size": 0}).status_code == 422


def test_a_sweep_that_stops_answers_503_with_its_report(client: TestClient, disk_fault: object) -> None:
    r = client.post("/api/retention/sweep")
    assert r.status_code == 503
    assert r.json()["error"]["type"] == "sweep_stopped"
    assert "the disk went away" in r.json()["error"]["message"]
    assert r.json()["report"]["complete"] is False


class ReadOnlyOps(Access):
    def readable_flows(self, request: Request) -> set[str] | None:
        return {"ops"}

    def check_manage(self, request: Request) -> None:
        raise HTTPException(403, "retention is managed by admins")


def test_access_filters_the_overview_and_guards_changes(backends: tuple[RunStore, BlobStore], tmp_path: Path) -> None:
    client = _client(backends, tmp_path, ReadOnlyOps())
    data = client.get("/api/retention").json()
    assert [f["flow_id"] for f in data["flows"]] == ["ops"]
    for call in (
        lambda: client.put("/api/retention/x", json={"keep_days": 1}),
        lambda: client.delete("/api/retention/x"),
        lambda: client.post("/api/retention/sweep"),
    ):
        r = call()
        assert r.status_code == 403 and r.json()["error"]["message"] == "retention is managed by admins"
