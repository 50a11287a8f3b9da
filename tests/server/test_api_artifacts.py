"""The artifact routes over a real server: a run's artifacts (paged, with producers), a URI's
history (newest first, paged), masking of the URI asked for, and the error shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.server.conftest import Api


def _error(r: Any, status: int) -> dict[str, str]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message"}
    return body["error"]  # type: ignore[no-any-return]


def _pipeline(api: Api, tmp_path: Path) -> tuple[str, str]:
    """Run 1 writes a file; run 2 reads it (and a missing one) and writes a report."""
    data = tmp_path / "orders.csv"
    data.write_text("id\n1\n")
    with api.rec.run("extract_orders") as first, first.step("extract") as step:
        step.artifact(str(data), kind="csv")
    with api.rec.run("load_orders") as second:
        with second.step("load") as step:
            step.artifact(str(data), role="input")
            step.artifact(str(tmp_path / "customers.csv"), role="input")
        with second.step("report") as step:
            step.artifact("s3://reports/daily.html", size=10, checksum="etag:abc")
    return first.run_id, second.run_id


def test_a_runs_artifacts_name_the_producer_of_their_inputs(api: Api, tmp_path: Path) -> None:
    first, second = _pipeline(api, tmp_path)
    body = api.client.get(f"/api/runs/{second}/artifacts").json()
    assert body["next_cursor"] is None
    orders, customers, report = body["items"]
    assert list(orders) == [
        "uri", "role", "run_id", "flow_id", "step_id", "try_number", "size", "checksum", "kind",
        "present", "note", "producer", "recorded_at",
    ]  # fmt: skip
    assert (orders["role"], orders["step_id"], orders["try_number"], orders["size"]) == ("input", "load", 1, 5)
    assert orders["checksum"].startswith("sha256:") and orders["present"] is True
    assert orders["producer"]["run_id"] == first and orders["producer"]["step_id"] == "extract"
    assert orders["producer"]["flow_id"] == "extract_orders"
    assert (customers["present"], customers["producer"]) == (False, None)
    assert (report["role"], report["checksum"], report["producer"]) == ("output", "etag:abc", None)
    assert report["recorded_at"].endswith("Z")
    only = api.client.get(f"/api/runs/{second}/artifacts", params={"role": "output"}).json()["items"]
    assert [a["uri"] for a in only] == ["s3://reports/daily.html"]


def test_a_runs_artifacts_page(api: Api) -> None:
    with api.rec.run("fan_out") as run, run.step("split") as step:
        for i in range(7):
            step.artifact(f"s3://lake/part-{i}", size=i, checksum=f"etag:{i}")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = api.client.get(f"/api/runs/{run.run_id}/artifacts", params=params).json()
        seen += [a["uri"] for a in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"s3://lake/part-{i}" for i in range(7)]


def test_a_uri_lists_who_wrote_and_read_it_newest_first(api: Api, tmp_path: Path) -> None:
    first, second = _pipeline(api, tmp_path)
    uri = f"file://{tmp_path}/orders.csv"
    body = api.client.get("/api/artifacts", params={"uri": uri}).json()
    assert [(a["run_id"], a["role"], a["flow_id"]) for a in body["items"]] == [
        (second, "input", "load_orders"),
        (first, "output", "extract_orders"),
    ]
    # a plain path finds the same rows; pages of one
    page = api.client.get("/api/artifacts", params={"uri": str(tmp_path / "orders.csv"), "limit": 1}).json()
    assert [a["run_id"] for a in page["items"]] == [second] and page["next_cursor"]
    rest = api.client.get("/api/artifacts", params={"uri": uri, "limit": 1, "cursor": page["next_cursor"]}).json()
    assert [a["run_id"] for a in rest["items"]] == [first] and rest["next_cursor"] is None
    assert api.client.get("/api/artifacts", params={"uri": "s3://nobody/wrote/this"}).json()["items"] == []


def test_credentials_are_masked_and_a_uri_with_them_still_finds_its_rows(api: Api) -> None:
    uri = "postgresql://loader:hunter2-secret-pw@db.internal/warehouse?table=orders"
    with api.rec.run("creds") as run, run.step("s") as step:
        step.artifact(uri, role="input", size=1)
    (item,) = api.client.get(f"/api/runs/{run.run_id}/artifacts").json()["items"]
    assert "hunter2-secret-pw" not in item["uri"]
    found = api.client.get("/api/artifacts", params={"uri": uri}).json()["items"]
    assert [a["run_id"] for a in found] == [run.run_id]


def test_errors_have_the_one_shape(api: Api) -> None:
    assert _error(api.client.get("/api/runs/run_00000000000000000000000000/artifacts"), 404)["type"] == (
        "run_not_found"
    )
    with api.rec.run("x") as run:
        pass
    _error(api.client.get(f"/api/runs/{run.run_id}/artifacts", params={"cursor": "abc"}), 422)
    _error(api.client.get(f"/api/runs/{run.run_id}/artifacts", params={"role": "both"}), 422)
    _error(api.client.get("/api/artifacts", params={"uri": "x", "cursor": "1-2"}), 422)
    _error(api.client.get("/api/artifacts"), 422)
    _error(api.client.get("/api/artifacts", params={"uri": "   "}), 422)
