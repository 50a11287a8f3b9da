"""Traces and logs over HTTP: download headers and bodies, 404/410, structured traces, log pages,
search, live (running) steps, and hostile ids that must never escape the store or break headers."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest

from rundossier.core.ids import new_run_id
from rundossier.storage.blobs import LOG, LOG_INDEX
from tests.seeding import failed_run, history_run, log_run
from tests.server.conftest import Api


def _error(r: Any, status: int) -> dict[str, str]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message"}
    assert "content-disposition" not in r.headers
    return body["error"]  # type: ignore[no-any-return]


def test_run_trace_download_headers_and_body(api: Api) -> None:
    run_id = failed_run(api.rec)
    r = api.client.get(f"/api/runs/{run_id}/trace")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["content-disposition"] == f'attachment; filename="{run_id}_trace.txt"'
    assert r.headers["x-content-type-options"] == "nosniff"
    run = api.store.get_run(run_id)
    assert r.text == gzip.decompress(api.blobs.get(run.trace_uri or "")).decode("utf-8")
    assert "ConnectionError: timeout after 30s" in r.text
    assert "The above exception was the direct cause of the following exception" in r.text
    assert "LoadError: load failed: warehouse unavailable" in r.text


def test_step_trace_download_by_try(api: Api) -> None:
    run_id = failed_run(api.rec)
    r = api.client.get(f"/api/runs/{run_id}/steps/load/trace", params={"try": 1})
    assert r.status_code == 200
    assert r.headers["content-disposition"] == f'attachment; filename="{run_id}_trace.txt"'
    assert "LoadError" in r.text
    _error(api.client.get(f"/api/runs/{run_id}/steps/load/trace", params={"try": 2}), 404)
    _error(api.client.get(f"/api/runs/{run_id}/steps/load/trace", params={"try": 0}), 422)
    _error(api.client.get(f"/api/runs/{run_id}/steps/load/trace", params={"try": "one"}), 422)


def test_structured_trace_for_the_failure_panel(api: Api) -> None:
    run_id = failed_run(api.rec)
    doc = api.client.get(f"/api/runs/{run_id}/trace.json").json()
    assert doc["version"] == 1 and doc["captured"] is True
    chain = doc["chain"]
    assert [n["type"].rsplit(".", 1)[-1] for n in chain] == ["ConnectionError", "LoadError"]
    assert chain[0]["relation"] == "cause"
    assert any(f["in_app"] and f["name"] == "_connect" for f in chain[0]["frames"])
    step_doc = api.client.get(f"/api/runs/{run_id}/steps/load/trace.json", params={"try": 1}).json()
    assert step_doc["chain"] == chain


def test_no_trace_is_404_saying_why(api: Api) -> None:
    with api.rec.run("fine") as run, run.step("ok"):
        pass
    err = _error(api.client.get(f"/api/runs/{run.run_id}/trace"), 404)
    assert err["type"] == "trace_not_found" and "success" in err["message"]
    _error(api.client.get(f"/api/runs/{run.run_id}/trace.json"), 404)
    reported = history_run(api.store, flow_id="f", status="failed", error=(None, "Task exited with code -9"))
    err = _error(api.client.get(f"/api/runs/{reported}/trace"), 404)
    assert err["message"] == "no trace captured: the failure was reported as a message only (Task exited with code -9)"


def test_a_failure_reported_without_an_exception_says_so_in_its_trace(api: Api) -> None:
    crashed = api.rec.start_run("killed_flow")
    api.rec.record_failure(crashed, "work", None, status="crashed")
    r = api.client.get(f"/api/runs/{crashed.run_id}/steps/work/trace")
    assert r.status_code == 200 and "no traceback captured: no error was reported" in r.text


def test_expired_trace_is_410(api: Api) -> None:
    run_id = failed_run(api.rec)
    api.store.update_run(run_id, blobs_expired=True, blobs_expired_at=datetime(2026, 11, 1, tzinfo=UTC))
    err = _error(api.client.get(f"/api/runs/{run_id}/trace"), 410)
    assert err["type"] == "trace_expired" and err["message"] == "trace expired by retention on 2026-11-01"
    _error(api.client.get(f"/api/runs/{run_id}/trace.json"), 410)
    _error(api.client.get(f"/api/runs/{run_id}/steps/load/trace"), 410)
    logs = api.client.get(f"/api/runs/{run_id}/steps/load/logs").json()
    assert logs["available"] is False and logs["reason"] == "log expired by retention on 2026-11-01"
    _error(api.client.get(f"/api/runs/{run_id}/steps/load/logs/download"), 410)


def test_log_pages_streams_and_counts(api: Api) -> None:
    run_id = log_run(api.rec, 2000)
    base = f"/api/runs/{run_id}/steps/render/logs"
    first = api.client.get(base).json()
    assert first["available"] is True and first["live"] is False
    assert first["total"] == 2000 and first["pages"] == 4 and len(first["lines"]) == 500
    assert first["counts"] == {"stdout": 1980, "stderr": 20}
    assert first["lines"][0]["n"] == 1 and first["lines"][0]["message"] == "row 00001 rendered ok"
    last = api.client.get(base, params={"page": 4}).json()
    assert [line["n"] for line in last["lines"]][-1] == 2000
    err = api.client.get(base, params={"stream": "stderr"}).json()
    assert err["total"] == 20 and all(line["stream"] == "stderr" for line in err["lines"])
    assert err["lines"][0]["level"] == "WARNING"


def test_log_level_filters_on_the_server(api: Api) -> None:
    run_id = log_run(api.rec, 2000)
    base = f"/api/runs/{run_id}/steps/render/logs"
    warn = api.client.get(base, params={"level": "warning", "page_size": 8}).json()
    assert warn["level"] == "warning" and warn["total"] == 20 and warn["pages"] == 3
    assert warn["counts"] == {"stdout": 0, "stderr": 20}
    assert [line["n"] for line in warn["lines"]] == list(range(1, 9))
    assert warn["lines"][0]["message"] == "checkpoint 1: 100 rows rendered"
    found = api.client.get(base, params={"level": "warning", "q": "checkpoint 2"}).json()
    assert found["matches"] == [2, 20]  # numbered among the warnings
    info = api.client.get(base, params={"level": "info"}).json()
    assert info["total"] == 2000  # prints to stdout count as info
    assert api.client.get(base, params={"level": "error"}).json()["total"] == 0
    assert api.client.get(base).json()["level"] is None
    r = api.client.get(base, params={"level": "loud"})
    assert r.status_code == 422 and "level" in r.json()["error"]["message"]


def test_log_search_reports_every_match(api: Api) -> None:
    run_id = log_run(api.rec, 2000)
    body = api.client.get(f"/api/runs/{run_id}/steps/render/logs", params={"q": "CHECKPOINT 1", "page": 1}).json()
    # checkpoint 1, 10..19 (case-insensitive)
    assert body["matches"] == [100] + list(range(1000, 2000, 100))
    assert body["matches_truncated"] is False


def test_log_download(api: Api) -> None:
    run_id = log_run(api.rec, 2000)
    r = api.client.get(f"/api/runs/{run_id}/steps/render/logs/download", params={"stream": "stderr"})
    assert r.status_code == 200
    assert r.headers["content-disposition"] == f'attachment; filename="{run_id}_step_1_log.txt"'
    lines = r.text.splitlines()
    assert len(lines) == 20 and lines[0].endswith("stderr WARNING checkpoint 1: 100 rows rendered")


def test_running_step_log_is_live(api: Api) -> None:
    from rundossier import Recorder

    rec = Recorder(api.settings, store=api.store, blobs=api.blobs, live_log_interval=60)
    run = rec.start_run("live_flow")
    step = rec.start_step(run, "stream")
    base = f"/api/runs/{run.run_id}/steps/stream/logs"
    body = api.client.get(base).json()
    assert body["live"] is True and body["available"] is False and "running" in body["reason"]
    for i in range(30):
        step.log.write("stdout", f"tick {i}")
    assert rec._live is not None and rec._live.publish_once() == 1
    body = api.client.get(base).json()
    assert body["live"] is True and body["available"] is True and body["status"] == "running"
    assert [line["message"] for line in body["lines"]] == [f"tick {i}" for i in range(30)]
    assert body["snapshot_at"] is not None
    step.log.write("stdout", "tick 30")
    step.finish("success")
    rec.finish_run(run, "success")
    body = api.client.get(base).json()
    assert body["live"] is False and body["total"] == 31


# -- hostile ids ----------------------------------------------------------------------------------

HOSTILE = [
    "../../../../etc/passwd",
    "..",
    "run_01J0000000000000000000000Z/../..",
    'run_"; filename="evil.sh',
    "run_abc\r\nSet-Cookie: x=1",
    "run_\x00",
    "%00",
    "run_01J00000000000000000000000%00",
    "'; DROP TABLE rd_run; --",
    "run_" + "A" * 500,
]


@pytest.mark.parametrize("run_id", HOSTILE)
@pytest.mark.parametrize("suffix", ["", "/trace", "/trace.json", "/steps/load/trace", "/steps/load/logs"])
def test_hostile_run_ids_get_404(api: Api, run_id: str, suffix: str) -> None:
    r = api.client.get(f"/api/runs/{quote(run_id, safe='')}{suffix}")
    _error(r, 404)


@pytest.mark.parametrize(
    "raw_path",
    [
        "/api/runs/../../../etc/passwd",
        "/api/runs/%2e%2e/%2e%2e/etc/passwd/trace",
        "/api/runs/..%2F..%2Fetc%2Fpasswd/trace",
        "/api/runs/run_x%22%0d%0aX-Evil:%201/trace",
        "/api/runs/run_x%00/trace",
    ],
)
def test_raw_hostile_paths_get_404(api: Api, raw_path: str) -> None:
    import httpx

    # send the path exactly as written (no client-side normalisation of `..`)
    with httpx.Client(base_url=api.url) as client:
        request = client.build_request("GET", api.url)
        request.url = request.url.copy_with(raw_path=raw_path.encode("ascii"))
        r = client.send(request)
    assert r.status_code == 404
    assert r.json()["error"]["type"] in ("not_found", "run_not_found", "trace_not_found")
    assert "content-disposition" not in r.headers


@pytest.mark.parametrize(
    "step_id", ["../../../../etc/passwd", "load/../../x", 'a"b', "x\r\nY: z", "\x00", "%2e%2e", "load\x00"]
)
def test_hostile_step_ids_on_a_real_run_get_404(api: Api, step_id: str) -> None:
    run_id = failed_run(api.rec)
    for suffix in ("trace", "trace.json", "logs", "logs/download"):
        r = api.client.get(f"/api/runs/{run_id}/steps/{quote(step_id, safe='')}/{suffix}")
        _error(r, 404)


def test_a_well_formed_but_unknown_run_id_is_404(api: Api) -> None:
    _error(api.client.get(f"/api/runs/{new_run_id()}/trace"), 404)


def _rendered(i: int) -> str:
    """The message of line `i` (from 1) of `log_run`'s log."""
    return f"checkpoint {i // 100}: {i} rows rendered" if i % 100 == 0 else f"row {i:05d} rendered ok"


def test_a_million_line_log_is_paged_through_its_index(api: Api) -> None:
    """Pages of a 1M-line log (its index read, only the page's members decoded): the content of
    the first, a middle and the last page, filtered pages, and the same log without its index."""
    run_id = log_run(api.rec, 1_000_000)
    base = f"/api/runs/{run_id}/steps/render/logs"
    step = api.store.get_step(run_id, "render", None)
    assert step is not None and step.log_uri
    index_uri = step.log_uri.replace(LOG, LOG_INDEX)
    assert api.blobs.exists(index_uri)

    def page(**params: Any) -> dict[str, Any]:
        r = api.client.get(base, params=params, timeout=60)
        assert r.status_code == 200, r.text
        return dict(r.json())

    first = page()
    assert first["total"] == 1_000_000 and first["pages"] == 2000 and first["total_exact"] is True
    assert first["counts"] == {"stdout": 990_000, "stderr": 10_000}
    assert [(x["n"], x["message"]) for x in first["lines"]] == [(i, _rendered(i)) for i in range(1, 501)]
    middle = page(page=1000)
    assert [(x["n"], x["message"]) for x in middle["lines"]] == [(i, _rendered(i)) for i in range(499_501, 500_001)]
    assert middle["lines"][-1]["stream"] == "stderr" and middle["lines"][-1]["level"] == "WARNING"
    last = page(last="true")
    assert last["page"] == 2000
    assert [x["n"] for x in last["lines"]] == list(range(999_501, 1_000_001))
    assert last["lines"][-1]["message"] == _rendered(1_000_000)

    # a filtered page stops reading soon after it is full: its totals are lower bounds
    warn = page(level="warning", page=3)
    assert [(x["n"], x["message"]) for x in warn["lines"]] == [(n, _rendered(n * 100)) for n in range(1001, 1501)]
    assert warn["total_exact"] is False and 1500 <= warn["total"] < 10_000
    assert warn["pages"] == -(-warn["total"] // 500) + 1  # at least one more page
    warn_last = page(level="warning", last="true")
    assert warn_last["total_exact"] is True and warn_last["total"] == 10_000 and warn_last["page"] == 20
    assert warn_last["lines"][-1]["message"] == _rendered(1_000_000)
    assert warn_last["counts"] == {"stdout": 0, "stderr": 10_000}

    # a log recorded before indexes existed: the same pages, by the old scan
    api.blobs.delete([index_uri])
    assert page(page=1000)["lines"] == middle["lines"]
