"""The runs API over HTTP: list filters, keyset pages while runs arrive, run detail, flows, lookup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.seeding import failed_run, history_run
from tests.server.conftest import Api


def _ids(api: Api, **params: Any) -> list[str]:
    r = api.client.get("/api/runs", params=params)
    assert r.status_code == 200, r.text
    return [item["run_id"] for item in r.json()["items"]]


def _error(r: Any, status: int) -> dict[str, str]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message"}
    assert body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


@pytest.fixture
def seeded(api: Api) -> dict[str, str]:
    s = api.store
    return {
        "old_ok": history_run(s, flow_id="nightly_etl", ago=timedelta(days=5)),
        "old_fail": history_run(
            s, flow_id="nightly_etl", status="failed", ago=timedelta(days=2), error=("TimeoutError", "took too long")
        ),
        "af_fail": history_run(
            s,
            flow_id="customer_sync",
            status="failed",
            ago=timedelta(hours=10),
            orchestrator="airflow",
            run_key="scheduled__2026-11-21T00:00:00+00:00",
            error=("KeyError", "'id'"),
        ),
        "pf_ok": history_run(s, flow_id="ml_train", ago=timedelta(hours=3), orchestrator="prefect"),
        "pct": history_run(s, flow_id="odd_100%_flow", ago=timedelta(hours=1)),
        "new_run": history_run(s, flow_id="nightly_etl", status="running", ago=timedelta(minutes=5)),
    }


def test_newest_first_with_the_run_shape(api: Api, seeded: dict[str, str]) -> None:
    r = api.client.get("/api/runs")
    body = r.json()
    ids = [i["run_id"] for i in body["items"]]
    assert ids == sorted(seeded.values(), reverse=True)
    assert body["next_cursor"] is None
    fail = next(i for i in body["items"] if i["run_id"] == seeded["af_fail"])
    assert fail["error"] == {"type": "KeyError", "message": "'id'"}
    assert fail["run_key"] == "scheduled__2026-11-21T00:00:00+00:00"
    for key in ("flow_id", "status", "orchestrator", "queued_at", "started_at", "finished_at", "duration_ms", "host"):
        assert key in fail


@pytest.mark.parametrize(
    "params,expected",
    [
        ({"flow_id": "nightly_etl"}, ["new_run", "old_fail", "old_ok"]),
        ({"status": "failed"}, ["af_fail", "old_fail"]),
        ({"status": "failed,running"}, ["new_run", "af_fail", "old_fail"]),
        ({"status": ["failed", "running"]}, ["new_run", "af_fail", "old_fail"]),
        ({"orchestrator": "airflow"}, ["af_fail"]),
        ({"orchestrator": "prefect"}, ["pf_ok"]),
        ({"q": "sync"}, ["af_fail"]),
        ({"q": "scheduled__2026"}, ["af_fail"]),
        ({"q": "100%"}, ["pct"]),
        ({"q": "_%_"}, []),
        ({"q": "too LONG"}, ["old_fail"]),
        ({"q": "timeouterror"}, ["old_fail"]),
        ({"q": "'id'"}, ["af_fail"]),
        ({"q": "NIGHTLY"}, ["new_run", "old_fail", "old_ok"]),
        ({"q": "keyerror", "flow_id": "nightly_etl"}, []),
        ({"flow_id": "nope"}, []),
        ({"status": "failed", "flow_id": "nightly_etl"}, ["old_fail"]),
    ],
)
def test_filters(api: Api, seeded: dict[str, str], params: dict[str, Any], expected: list[str]) -> None:
    assert _ids(api, **params) == [seeded[k] for k in expected]


@pytest.mark.parametrize(
    "hours_ago,until_hours_ago,status,expected",
    [
        (6, None, None, ["new_run", "pct", "pf_ok"]),
        (12, None, None, ["new_run", "pct", "pf_ok", "af_fail"]),
        (24 * 3, None, "failed", ["af_fail", "old_fail"]),
        (24, None, "failed", ["af_fail"]),
        (24 * 7, 24, None, ["old_fail", "old_ok"]),
        (24 * 7, 24 * 3, None, ["old_ok"]),
    ],
)
def test_time_ranges(
    api: Api,
    seeded: dict[str, str],
    hours_ago: int,
    until_hours_ago: int | None,
    status: str | None,
    expected: list[str],
) -> None:
    now = datetime.now(UTC)
    params: dict[str, Any] = {"since": (now - timedelta(hours=hours_ago)).isoformat()}
    if until_hours_ago is not None:
        params["until"] = (now - timedelta(hours=until_hours_ago)).isoformat()
    if status:
        params["status"] = status
    assert _ids(api, **params) == [seeded[k] for k in expected]


def test_since_without_a_zone_is_utc_and_z_suffix_works(api: Api, seeded: dict[str, str]) -> None:
    since = (datetime.now(UTC) - timedelta(hours=2)).replace(tzinfo=None)
    assert _ids(api, since=since.isoformat()) == [seeded["new_run"], seeded["pct"]]
    z = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _ids(api, since=z) == [seeded["new_run"], seeded["pct"]]


@pytest.mark.parametrize("span", ["2h", "120m", " 2H "])
def test_since_takes_a_span_as_the_cli_does(api: Api, seeded: dict[str, str], span: str) -> None:
    assert _ids(api, since=span) == [seeded["new_run"], seeded["pct"]]
    assert _ids(api, since="2h", until="0h") == [seeded["new_run"], seeded["pct"]]
    body = api.client.get("/api/failures", params={"since": "7d"})
    assert body.status_code == 200 and body.json()["counted_since"] is not None


@pytest.mark.parametrize(
    ("route", "param"), [("/api/runs", "since"), ("/api/runs", "until"), ("/api/failures", "since")]
)
@pytest.mark.parametrize("value", ["yesterday", "6x", "-6h", "2026-13-01"])
def test_a_bad_time_is_a_422_naming_the_accepted_forms(api: Api, route: str, param: str, value: str) -> None:
    r = api.client.get(route, params={param: value})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["type"] == "invalid_request"
    assert err["message"].startswith(f"{param}: ") and "6h" in err["message"] and "ISO-8601" in err["message"]


def test_pages_have_no_duplicates_or_gaps_while_runs_arrive(api: Api) -> None:
    before = {history_run(api.store, flow_id=f"flow_{i % 3}", ago=timedelta(minutes=200 - i)) for i in range(130)}
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 25}
        if cursor:
            params["cursor"] = cursor
        body = api.client.get("/api/runs", params=params).json()
        if pages == 0:
            assert {i["run_id"] for i in body["items"]} <= before
        seen.extend(i["run_id"] for i in body["items"])
        # new runs land while a reader pages through
        for _ in range(3):
            history_run(api.store, flow_id="flow_new")
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 6
    assert len(seen) == len(set(seen)) == 130
    assert set(seen) == before
    assert seen == sorted(seen, reverse=True)


def test_pages_with_filters_keep_filtering(api: Api) -> None:
    for i in range(40):
        history_run(api.store, flow_id="a" if i % 2 else "b", status="failed" if i % 4 == 0 else "success")
    first = api.client.get("/api/runs", params={"flow_id": "b", "status": "failed", "limit": 3}).json()
    second = api.client.get(
        "/api/runs", params={"flow_id": "b", "status": "failed", "limit": 3, "cursor": first["next_cursor"]}
    ).json()
    rows = first["items"] + second["items"]
    assert len(rows) == 6 and all(r["flow_id"] == "b" and r["status"] == "failed" for r in rows)


@pytest.mark.parametrize(
    "params,where",
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-45"}, "until"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "run_' OR 1=1 --"}, "cursor"),
        ({"cursor": "x" * 41}, "cursor"),
        ({"status": "exploded"}, "status"),
        ({"orchestrator": "jenkins"}, "orchestrator"),
        ({"q": "x" * 201}, "q"),
        ({"q": "a\x00b"}, "NUL"),
        ({"flow_id": "\x00"}, "NUL"),
    ],
)
def test_bad_query_parameters_get_422_with_the_error_shape(api: Api, params: dict[str, Any], where: str) -> None:
    err = _error(api.client.get("/api/runs", params=params), 422)
    assert err["type"] == "invalid_request"
    assert where in err["message"]


def test_run_detail_has_steps_events_and_dossier(api: Api) -> None:
    run_id = failed_run(api.rec)
    r = api.client.get(f"/api/runs/{run_id}")
    assert r.status_code == 200
    run = r.json()
    assert run["status"] == "failed" and run["root_step_id"] == "load"
    assert run["error"]["type"].endswith("LoadError")
    assert [(s["step_id"], s["status"]) for s in run["steps"]] == [("extract", "success"), ("load", "failed")]
    load = run["steps"][1]
    assert load["upstream"] == ["extract"]
    assert load["error"]["trace_url"].endswith(f"/api/runs/{run_id}/steps/load/trace?try=1")
    assert any(e["kind"] == "step_failed" for e in run["events"])
    assert "dossier" in run
    assert [t["step_id"] for t in run["dossier"]["steps"]] == ["extract", "load"]


def test_run_detail_for_the_page_keeps_the_failed_steps_timing_only(api: Api) -> None:
    run_id = failed_run(api.rec)
    full = api.client.get(f"/api/runs/{run_id}").json()
    lean = api.client.get(f"/api/runs/{run_id}", params={"dossier_steps": "failed"}).json()
    assert [t["step_id"] for t in lean["dossier"]["steps"]] == ["load"]
    assert lean["dossier"]["steps"] == [t for t in full["dossier"]["steps"] if t["step_id"] == "load"]
    rest = {k: v for k, v in lean["dossier"].items() if k not in ("steps", "as_of")}
    assert rest == {k: v for k, v in full["dossier"].items() if k not in ("steps", "as_of")}
    assert {k: v for k, v in lean.items() if k != "dossier"} == {k: v for k, v in full.items() if k != "dossier"}
    r = api.client.get(f"/api/runs/{run_id}", params={"dossier_steps": "some"})
    assert r.status_code == 422 and "dossier_steps" in r.json()["error"]["message"]


def test_a_parent_run_lists_its_subflow_runs_and_each_child_names_its_parent(api: Api) -> None:
    with api.rec.run("parent_flow") as parent:
        with api.rec.run("child_flow", parent_run_id=parent.run_id) as first:
            pass
        with api.rec.run("child_flow", parent_run_id=parent.run_id) as second:
            pass
    with api.rec.run("other_flow"):
        pass
    body = api.client.get(f"/api/runs/{parent.run_id}").json()
    assert [(c["run_id"], c["flow_id"], c["status"]) for c in body["children"]] == [
        (first.run_id, "child_flow", "success"),
        (second.run_id, "child_flow", "success"),
    ]
    child = api.client.get(f"/api/runs/{first.run_id}").json()
    assert child["parent_run_id"] == parent.run_id and child["children"] == []


def test_unknown_run_is_404_with_the_error_shape(api: Api) -> None:
    err = _error(api.client.get("/api/runs/run_00000000000000000000000000"), 404)
    assert err["type"] == "run_not_found"


def test_flows_lists_distinct_flow_ids(api: Api, seeded: dict[str, str]) -> None:
    r = api.client.get("/api/flows")
    assert r.json() == {"items": ["customer_sync", "ml_train", "nightly_etl", "odd_100%_flow"]}


def test_lookup_finds_our_run_id(api: Api, seeded: dict[str, str]) -> None:
    params = {"orchestrator": "airflow", "flow_id": "customer_sync", "run_key": "scheduled__2026-11-21T00:00:00+00:00"}
    r = api.client.get("/api/lookup", params=params)
    assert r.json()["run_id"] == seeded["af_fail"]
    _error(api.client.get("/api/lookup", params={**params, "run_key": "manual__x"}), 404)
    # a NUL is never part of a stored value: refused as invalid input before any query
    assert _error(api.client.get("/api/lookup", params={**params, "run_key": "manual__\x00"}), 422)["type"] == (
        "invalid_request"
    )
    _error(api.client.get("/api/lookup", params={**params, "orchestrator": "cron"}), 422)


def test_openapi_documents_the_routes(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    for route in (
        "/api/runs",
        "/api/runs/{run_id}",
        "/api/runs/{run_id}/trace",
        "/api/runs/{run_id}/trace.json",
        "/api/runs/{run_id}/steps/{step_id}/trace",
        "/api/runs/{run_id}/steps/{step_id}/logs",
        "/api/runs/{run_id}/steps/{step_id}/logs/download",
        "/api/flows",
        "/api/lookup",
        "/api/stream",
    ):
        assert route in paths, route


def test_unknown_route_is_404_with_the_error_shape(api: Api) -> None:
    assert _error(api.client.get("/api/nothing-here"), 404)["type"] == "not_found"
