"""The JSON on the wire, pinned: every endpoint's answer for one seeded store, compared (field
names, order, nulls, types) with tests/data/wire_json.json, which was written from the
hand-written encoders this API had before its response models.

Volatile values are replaced before the comparison: run ids by their order of first appearance,
ISO times by `<ts>`, the checkout's path by `<repo>`, digits inside other strings by `9`
(durations, line numbers in traces), numbers under timing or size keys by `<num>`.
Everything else, the key order included, must match.

    WIRE_JSON_WRITE=1 pytest tests/server/test_wire_json.py   # rewrite the pinned file
"""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rundossier import Recorder
from rundossier.server import create_app
from rundossier.settings import Settings
from rundossier.storage.blobs import BlobStore
from rundossier.storage.db import RunStore
from tests.seeding import failed_run, history_run, log_run

PINNED = Path(__file__).resolve().parents[1] / "data" / "wire_json.json"
REPO = str(Path(__file__).resolve().parents[2])
RUN_ID = re.compile(r"run_[0-9A-HJKMNP-TV-Z]{26}")
ISO = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")
VOLATILE_NUMBER = re.compile(r"(_ms|_bytes|bytes|_s|elapsed|duration|total_ms|seconds|_at|size|ts)$")


class Normalizer:
    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def _id(self, m: re.Match[str]) -> str:
        return self.ids.setdefault(m.group(0), f"<run{len(self.ids)}>")

    def text(self, s: str) -> str:
        s = RUN_ID.sub(self._id, s)
        s = ISO.sub("<ts>", s)
        s = s.replace(REPO, "<repo>")  # the checkout's path is in the traces' file names
        s = re.sub(r"/tmp/[^\s\"']*", "<tmp>", s)
        return re.sub(r"\d+", "9", s)

    def __call__(self, value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {self.text(k): self(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v, key) for v in value]
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int | float) and VOLATILE_NUMBER.search(key):
            return f"<{type(value).__name__}>"
        return value


def _answers(client: TestClient, ids: dict[str, str]) -> dict[str, Any]:
    failed, logged, history = ids["failed"], ids["logged"], ids["history"]
    out: dict[str, Any] = {}

    def get(name: str, url: str, **params: Any) -> None:
        r = client.get(url, params=params)
        entry: dict[str, Any] = {"status": r.status_code, "content_type": r.headers.get("content-type")}
        if "content-disposition" in r.headers:
            entry["content_disposition"] = r.headers["content-disposition"]
        entry["body"] = r.json() if "json" in r.headers.get("content-type", "") else r.text.splitlines()[:3]
        out[name] = entry

    get("healthz", "/healthz")
    get("about", "/api/about")
    get("runs", "/api/runs")
    get("runs_filtered", "/api/runs", flow_id="nightly_etl", status="failed", limit=1)
    get("runs_bad_cursor", "/api/runs", cursor="nope")
    get("flows", "/api/flows")
    get("lookup", "/api/lookup", orchestrator="python", flow_id="hist_flow", run_key=history)
    get("lookup_missing", "/api/lookup", orchestrator="python", flow_id="hist_flow", run_key="nope")
    get("run_failed", f"/api/runs/{failed}")
    get("run_logged", f"/api/runs/{logged}")
    get("run_history", f"/api/runs/{history}")
    get("run_missing", "/api/runs/run_00000000000000000000000000")
    get("run_trace", f"/api/runs/{failed}/trace")
    get("run_trace_none", f"/api/runs/{logged}/trace")
    get("run_trace_doc", f"/api/runs/{failed}/trace.json")
    get("step_trace", f"/api/runs/{failed}/steps/load/trace", **{"try": 1})
    get("step_trace_doc", f"/api/runs/{failed}/steps/load/trace.json")
    get("step_trace_missing", f"/api/runs/{failed}/steps/nope/trace")
    get("step_logs", f"/api/runs/{logged}/steps/render/logs", page=2, page_size=3, q="checkpoint")
    get("step_logs_stderr", f"/api/runs/{logged}/steps/render/logs", stream="stderr", page_size=2)
    get("step_logs_none", f"/api/runs/{failed}/steps/extract/logs")
    get("step_logs_download", f"/api/runs/{logged}/steps/render/logs/download", stream="stderr")
    get("failures", "/api/failures")
    get("failures_by_count", "/api/failures", sort="count", limit=1)
    get("retention_empty", "/api/retention")
    r = client.put("/api/retention/nightly_*", json={"keep_days": 30, "keep_last": None})
    out["retention_put"] = {"status": r.status_code, "body": r.json()}
    get("retention", "/api/retention")
    get("retention_no_preview", "/api/retention", preview="false")
    r = client.post("/api/retention/sweep", params={"dry_run": "true", "orphans": "true"})
    out["retention_sweep"] = {"status": r.status_code, "body": r.json()}
    r = client.delete("/api/retention/nightly_*")
    out["retention_delete"] = {"status": r.status_code, "body": r.json()}
    r = client.delete("/api/retention/nightly_*")
    out["retention_delete_missing"] = {"status": r.status_code, "body": r.json()}
    return out


@pytest.fixture
def answers(tmp_path: Path) -> dict[str, Any]:
    settings = Settings.resolve(
        explicit={
            "home": str(tmp_path / "home"),
            "db_url": f"sqlite:///{tmp_path}/runs.db",
            "storage_url": f"file://{tmp_path}/blobs",
        }
    )
    store = RunStore(settings.db_url, timeout=5)
    blobs = BlobStore(settings.storage_url)
    rec = Recorder(settings, store=store, blobs=blobs, live_log_interval=None)
    ids = {
        "history": history_run(store, flow_id="hist_flow", ago=timedelta(days=3)),
        "old_fail": history_run(
            store, flow_id="nightly_etl", status="failed", ago=timedelta(days=2), error=("TimeoutError", "slow")
        ),
    }
    ok = history_run(store, flow_id="nightly_etl", ago=timedelta(days=1))
    ids["ok"] = ok
    ids["failed"] = failed_run(rec)
    ids["logged"] = log_run(rec, 250)
    app = create_app(settings, store=store, blobs=blobs, orchestrator_urls={"airflow": "../"})
    try:
        with TestClient(app) as client:
            return _answers(client, ids)
    finally:
        rec.close()
        store.close()


def test_every_endpoint_answers_the_pinned_json(answers: dict[str, Any]) -> None:
    got = Normalizer()(answers)
    text = json.dumps(got, indent=1, ensure_ascii=False) + "\n"
    if os.environ.get("WIRE_JSON_WRITE"):
        PINNED.write_text(text, encoding="utf-8")
    pinned = json.loads(PINNED.read_text(encoding="utf-8"))
    for name in pinned:
        assert json.dumps(got.get(name), indent=1) == json.dumps(pinned[name], indent=1), name
    assert list(got) == list(pinned)
