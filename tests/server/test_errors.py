"""What the API answers when something goes wrong: only its own validation errors are 4xx.

Input a column or a datetime cannot hold is a 422 in the error shape (it used to be a bare
plain-text 500 from an OverflowError); a damaged blob is a 500 naming the blob; any other
exception is a 500 in the error shape with an error id that the server log holds with the
traceback (a ValueError deep in a handler used to pass for the caller's fault, a 422).
"""

from __future__ import annotations

import gzip
import logging
from typing import Any

import pytest

from tests.seeding import failed_run
from tests.server.conftest import Api


def _error(r: Any, status: int) -> dict[str, str]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message"}
    return body["error"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("suffix", ["trace", "trace.json", "logs", "logs/download"])
def test_a_try_number_no_column_can_hold_is_a_422(api: Api, suffix: str) -> None:
    run_id = failed_run(api.rec)
    for value in ("99999999999999999999", str(2**31), str(2**63)):
        err = _error(api.client.get(f"/api/runs/{run_id}/steps/load/{suffix}", params={"try": value}), 422)
        assert err["type"] == "invalid_request" and "try" in err["message"]
    assert api.client.get(f"/api/runs/{run_id}/steps/load/{suffix}", params={"try": 2**31 - 1}).status_code == 404


@pytest.mark.parametrize(
    ("route", "param"),
    [("/api/runs", "since"), ("/api/runs", "until"), ("/api/failures", "since")],
)
@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_a_time_outside_what_utc_can_hold_is_a_422(api: Api, route: str, param: str, value: str) -> None:
    err = _error(api.client.get(route, params={param: value}), 422)
    assert err["type"] == "invalid_request"
    assert param in err["message"] and "outside" in err["message"]


def test_the_edges_of_utc_still_work(api: Api) -> None:
    for value in ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00", "9999-12-31T23:59:59+00:00"):
        assert api.client.get("/api/runs", params={"since": value}).status_code == 200
        assert api.client.get("/api/failures", params={"since": value}).status_code == 200


def _damage(api: Api, uri: str, data: bytes) -> None:
    api.blobs.put(api.blobs.key_for(uri), data)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda gz: b"this is not gzip at all", id="not-gzip"),
        pytest.param(lambda gz: gz[: len(gz) // 2], id="truncated"),
        pytest.param(lambda gz: gz[:10] + bytes(b ^ 0xFF for b in gz[10:-8]) + gz[-8:], id="bit-flipped"),
    ],
)
def test_a_damaged_trace_blob_is_reported_as_such_and_named(api: Api, damage: Any) -> None:
    run_id = failed_run(api.rec)
    run = api.store.get_run(run_id)
    uri = run.trace_uri or ""
    _damage(api, uri, damage(api.blobs.get(uri)))
    for path in (f"/api/runs/{run_id}/trace", f"/api/runs/{run_id}/steps/load/trace"):
        err = _error(api.client.get(path), 500)
        assert err["type"] == "blob_corrupt"
        assert uri in err["message"] and "damaged" in err["message"]


def test_a_damaged_structured_trace_is_reported_as_such_and_named(api: Api) -> None:
    run_id = failed_run(api.rec)
    text_uri = api.store.get_run(run_id).trace_uri or ""
    json_uri = text_uri.replace(".trace.txt.gz", ".trace.json.gz")
    _damage(api, json_uri, gzip.compress(b"[1, 2, 3]"))
    err = _error(api.client.get(f"/api/runs/{run_id}/trace.json"), 500)
    assert err["type"] == "blob_corrupt" and json_uri in err["message"] and "not a trace document" in err["message"]
    _damage(api, json_uri, gzip.compress(b"{not json"))
    err = _error(api.client.get(f"/api/runs/{run_id}/steps/load/trace.json"), 500)
    assert err["type"] == "blob_corrupt" and json_uri in err["message"] and "not JSON" in err["message"]
    _damage(api, json_uri, b"\x1f\x8b garbage")
    err = _error(api.client.get(f"/api/runs/{run_id}/trace.json"), 500)
    assert err["type"] == "blob_corrupt" and json_uri in err["message"]


@pytest.mark.parametrize("exc", [ValueError("bad value deep down"), OverflowError("int too large"), KeyError("k")])
def test_any_other_exception_is_a_500_with_an_error_id_in_the_log(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, exc: Exception
) -> None:
    def broken(*args: object, **kwargs: object) -> list[str]:
        raise exc

    monkeypatch.setattr(api.store, "list_flows", broken)
    with caplog.at_level(logging.ERROR, logger="rundossier"):
        r = api.client.get("/api/flows")
    err = _error(r, 500)
    assert err["type"] == "internal_error"
    error_id = r.headers["x-error-id"]
    assert len(error_id) == 16 and error_id in err["message"]
    assert type(exc).__name__ in err["message"]
    assert "bad value deep down" not in err["message"]  # the details are in the log, not the answer
    records = [rec for rec in caplog.records if error_id in rec.getMessage()]
    assert len(records) == 1
    assert records[0].exc_info is not None and records[0].exc_info[1] is exc
    assert "GET /api/flows" in records[0].getMessage()
    # the security headers are on the 500 too
    assert "content-security-policy" in r.headers


def test_our_own_validation_errors_stay_422(api: Api) -> None:
    for params in ({"status": "exploded"}, {"cursor": "not-a-cursor"}, {"limit": 0}):
        assert _error(api.client.get("/api/runs", params=params), 422)["type"] == "invalid_request"
    r = api.client.put("/api/retention/%20padded", json={"keep_days": 3})
    assert _error(r, 422)["type"] == "invalid_request" and "whitespace" in r.json()["error"]["message"]
    r = api.client.put("/api/retention/x", json={"keep_days": 10**20})
    assert _error(r, 422)["type"] == "invalid_request"
