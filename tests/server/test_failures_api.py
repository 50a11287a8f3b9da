"""The dossier in `GET /api/runs/{run_id}` and the groups of `GET /api/failures` (route level, TestClient)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest.mock import patch

import pytest
from fastapi import Request
from fastapi.testclient import TestClient

from rundossier import Recorder
from rundossier.core.ids import run_id_at
from rundossier.server import create_app
from rundossier.server.access import Access
from rundossier.settings import Settings


class Flaky(RuntimeError):
    pass


def _fail_once(rec: Recorder, flow: str, when: datetime, message: str = "warehouse down") -> str:
    with patch("rundossier.record.recorder.new_run_id", lambda: run_id_at(when)):  # recorded at `when`
        run = rec.start_run(flow, f"{flow}-{when.isoformat()}", started_at=when)
    step = rec.start_step(run, "extract", started_at=when + timedelta(seconds=1))
    step.finish("success", finished_at=when + timedelta(seconds=2))
    step = rec.start_step(run, "load", started_at=when + timedelta(seconds=3), upstream=["extract"])
    try:
        raise Flaky(message) from ConnectionRefusedError(111, "Connection refused")
    except Flaky as exc:
        step.finish("failed", exc, finished_at=when + timedelta(seconds=9))
    rec.finish_run(run, "failed", finished_at=when + timedelta(seconds=10))
    return run.run_id


def _succeed(rec: Recorder, flow: str, when: datetime) -> str:
    with patch("rundossier.record.recorder.new_run_id", lambda: run_id_at(when)):
        run = rec.start_run(flow, f"{flow}-ok-{when.isoformat()}", started_at=when, host="old-host")
    for i, sid in enumerate(("extract", "load")):
        step = rec.start_step(run, sid, started_at=when + timedelta(seconds=1 + 2 * i))
        step.finish("success", finished_at=when + timedelta(seconds=2 + 2 * i))
    rec.finish_run(run, "success", finished_at=when + timedelta(seconds=5))
    return run.run_id


T0 = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.fixture
def rec(tmp_path: Path) -> Iterator[Recorder]:
    r = Recorder(Settings.resolve(explicit={"home": str(tmp_path / "home")}))
    yield r
    r.close()


@pytest.fixture
def client(rec: Recorder) -> TestClient:
    return TestClient(create_app(rec.settings, store=rec.store, blobs=rec.blobs, ui=False))


def test_a_failed_run_opens_on_its_dossier(rec: Recorder, client: TestClient) -> None:
    ok = _succeed(rec, "sales", T0)
    failed = _fail_once(rec, "sales", T0 + timedelta(hours=1))
    body = client.get(f"/api/runs/{failed}").json()
    d = body["dossier"]
    assert d["headline"].startswith("External service unavailable in step load (try 1): ")
    assert d["classification"]["code"] == "unavailable"
    assert d["classification"]["evidence"][0]["fields"]["type"] == "ConnectionRefusedError"
    assert [w["name"] for w in d["timing"]["windows"]] == ["queue_wait", "setup", "active_work", "write_back"]
    assert d["comparison"]["baseline_run_id"] == ok
    assert {"field": "host", "failed": rec.host, "baseline": "old-host", "note": None} in d["comparison"]["differences"]
    assert d["replay"]["redo"] == ["load"] and d["replay"]["keep"] == ["extract"]
    assert d["group"]["count"] == 1 and d["group"]["flows"] == ["sales"]
    assert body["failure_class"] == "unavailable"


def test_a_success_has_a_quiet_dossier(rec: Recorder, client: TestClient) -> None:
    d = client.get(f"/api/runs/{_succeed(rec, 'sales', T0)}").json()["dossier"]
    assert d["classification"] is None and d["actions"] == [] and d["group"] is None


def test_a_dossier_fault_never_hides_the_run(
    rec: Recorder, client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import rundossier.read.reader as readside

    def broken(*a: object, **k: object) -> None:
        raise RuntimeError("bug in the dossier")

    monkeypatch.setattr(readside, "build_dossier", broken)
    rid = _fail_once(rec, "sales", T0)
    response = client.get(f"/api/runs/{rid}")
    assert response.status_code == 200 and response.json()["dossier"] is None
    assert "bug in the dossier" in caplog.text


def test_failures_groups_across_runs_and_flows(rec: Recorder, client: TestClient) -> None:
    first = _fail_once(rec, "sales", T0, "warehouse down for order 123")
    _fail_once(rec, "finance", T0 + timedelta(days=2), "warehouse down for order 456")
    latest = _fail_once(rec, "sales", T0 + timedelta(days=3), "warehouse down for order 789")
    items = client.get("/api/failures").json()["items"]
    assert len(items) == 1
    g = items[0]
    assert g["count"] == 3 and g["flows"] == ["finance", "sales"] and g["orchestrators"] == ["python"]
    # first and last seen: when the first and the last failed run ended
    assert g["first_seen"] == "2026-05-01T00:00:10Z" and g["last_seen"] == "2026-05-04T00:00:10Z"
    assert g["latest"]["run_id"] == latest and g["latest"]["error"]["message"] == "warehouse down for order 789"
    assert g["failure_class"] == "unavailable"
    assert g["fingerprint"] == rec.store.get_run(first).fingerprint

    since = client.get("/api/failures", params={"since": "2026-05-03T08:00:00Z"}).json()
    assert since["counted_since"] == "2026-05-03T00:00:00Z" and since["items"][0]["count"] == 2
    assert client.get("/api/failures", params={"flow_id": "finance"}).json()["items"][0]["count"] == 1
    assert client.get("/api/failures", params={"orchestrator": "airflow"}).json()["items"] == []
    runs = client.get("/api/runs", params={"fingerprint": g["fingerprint"]}).json()["items"]
    assert len(runs) == 3


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 501}, {"sort": "name"}, {"since": "yesterday"}])
def test_bad_parameters_get_the_error_shape(client: TestClient, params: dict[str, object]) -> None:
    response = client.get("/api/failures", params=params)
    assert response.status_code == 422
    assert set(response.json()["error"]) == {"type", "message"}


class OnlySales(Access):
    def check_flow(self, request: Request, flow_id: str) -> None:
        if flow_id != "sales":
            from fastapi import HTTPException

            raise HTTPException(403)

    def readable_flows(self, request: Request) -> set[str] | None:
        return {"sales"}


def test_groups_only_show_readable_flows(rec: Recorder) -> None:
    client = TestClient(create_app(rec.settings, store=rec.store, blobs=rec.blobs, ui=False, access=OnlySales()))
    sales = _fail_once(rec, "sales", T0)
    _fail_once(rec, "finance", T0 + timedelta(days=1), "warehouse down, finance secret flow")
    (g,) = client.get("/api/failures").json()["items"]
    assert g["flows"] == ["sales"] and g["count"] == 1 and g["latest"]["run_id"] == sales
    assert client.get("/api/failures", params={"flow_id": "finance"}).json()["items"] == []
    d = client.get(f"/api/runs/{sales}").json()["dossier"]
    assert d["group"]["flows"] == ["sales"] and d["group"]["count"] == 1


def test_a_group_shows_its_trend_over_the_window(rec: Recorder, client: TestClient) -> None:
    for hours in (0, 48, 72, 73):
        _fail_once(rec, "sales", T0 + timedelta(hours=hours))
    body = client.get("/api/failures", params={"since": "2026-05-01T00:00:00Z", "until": "2026-05-05T12:00:00Z"}).json()
    assert body["trend_from"] == "2026-05-01" and body["trend_days"] == 5
    (g,) = body["items"]
    assert g["trend"] == [1, 0, 1, 2, 0] and g["count"] == 4 and sum(g["trend"]) == g["count"]
    # until counts through the UTC day that holds it
    (g,) = client.get("/api/failures", params={"until": "2026-05-03T01:00:00Z"}).json()["items"]
    assert g["count"] == 2
    # no window: the last 14 days (nothing failed lately)
    body = client.get("/api/failures").json()
    assert body["trend_days"] == 14 and body["items"][0]["trend"] == [0] * 14


def test_the_class_filter_keeps_groups_of_that_class(rec: Recorder, client: TestClient) -> None:
    _fail_once(rec, "sales", T0)
    run = rec.start_run("sales", "bad-data", started_at=T0)
    step = rec.start_step(run, "parse", started_at=T0)
    try:
        raise ValueError("could not parse row 7")
    except ValueError as exc:
        step.finish("failed", exc, finished_at=T0 + timedelta(seconds=1))
    rec.finish_run(run, "failed", finished_at=T0 + timedelta(seconds=2))
    classes = {g["failure_class"] for g in client.get("/api/failures").json()["items"]}
    assert "unavailable" in classes and len(classes) == 2
    (g,) = client.get("/api/failures", params={"failure_class": "unavailable"}).json()["items"]
    assert g["latest"]["error"]["message"] == "warehouse down"
    assert client.get("/api/failures", params={"failure_class": "no_such_class"}).json()["items"] == []


def test_resolve_then_a_new_failure_is_a_regression_and_reopen_clears_it(rec: Recorder, client: TestClient) -> None:
    _fail_once(rec, "sales", T0)
    (g,) = client.get("/api/failures").json()["items"]
    assert g["state"] == "open" and g["resolved_at"] is None
    fp = g["fingerprint"]
    r = client.post(f"/api/failures/{fp}/resolve")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "resolved" and r.json()["fingerprint"] == fp
    (g,) = client.get("/api/failures").json()["items"]
    assert g["state"] == "resolved" and g["resolved_at"] == r.json()["resolved_at"]
    # the same failure after the resolve time: reopened as a regression
    _fail_once(rec, "finance", datetime.now(UTC) - timedelta(seconds=10))  # the run ends now
    (g,) = client.get("/api/failures").json()["items"]
    assert g["state"] == "regression" and g["count"] == 2
    r = client.post(f"/api/failures/{fp}/reopen")
    assert r.status_code == 200 and r.json() == {"fingerprint": fp, "state": "open", "resolved_at": None}
    assert client.get("/api/failures").json()["items"][0]["state"] == "open"
    # resolving again after the regression: resolved until it fails again
    client.post(f"/api/failures/{fp}/resolve")
    assert client.get("/api/failures").json()["items"][0]["state"] == "resolved"


@pytest.mark.parametrize("action", ["resolve", "reopen"])
def test_an_unknown_fingerprint_is_404(client: TestClient, action: str) -> None:
    r = client.post(f"/api/failures/0123456789abcdef/{action}")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found"
    assert "0123456789abcdef" in r.json()["error"]["message"]
    assert client.post(f"/api/failures/bad%20print/{action}").status_code == 422


class NoManage(Access):
    def check_manage(self, request: Request) -> None:
        from fastapi import HTTPException

        raise HTTPException(403, "only admins may change failure groups")


def test_resolving_needs_the_token_and_the_manage_right(rec: Recorder) -> None:
    fp = rec.store.get_run(_fail_once(rec, "sales", T0)).fingerprint
    token = "t" * 24
    guarded = TestClient(create_app(rec.settings, store=rec.store, blobs=rec.blobs, ui=False, api_token=token))
    assert guarded.post(f"/api/failures/{fp}/resolve").status_code == 401
    ok = guarded.post(f"/api/failures/{fp}/resolve", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200 and ok.json()["state"] == "resolved"
    denied = TestClient(create_app(rec.settings, store=rec.store, blobs=rec.blobs, ui=False, access=NoManage()))
    r = denied.post(f"/api/failures/{fp}/reopen")
    assert r.status_code == 403 and "admins" in r.json()["error"]["message"]
    assert denied.get("/api/failures").json()["items"][0]["state"] == "resolved"


def test_a_group_of_a_flow_one_cannot_read_cannot_be_resolved(rec: Recorder) -> None:
    fp = rec.store.get_run(_fail_once(rec, "finance", T0)).fingerprint
    client = TestClient(create_app(rec.settings, store=rec.store, blobs=rec.blobs, ui=False, access=OnlySales()))
    assert client.post(f"/api/failures/{fp}/resolve").status_code == 404
