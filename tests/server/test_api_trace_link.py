"""The run's OpenTelemetry trace in the API: `trace_id` on every run, `trace_viewer_url` on the detail
(RUNDOSSIER_TRACE_URL_TEMPLATE filled with the run's trace id)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from rundossier import Recorder
from rundossier.server import create_app
from rundossier.settings import Settings
from tests.otelspans import in_memory

TEMPLATE = "http://jaeger.example:16686/trace/{trace_id}"
PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_the_run_detail_links_its_trace_through_the_template(tmp_path: Path) -> None:
    settings = Settings.resolve(explicit={"home": str(tmp_path / "home"), "otel": True, "trace_url_template": TEMPLATE})
    rec = Recorder(settings, live_log_interval=None)
    with in_memory():
        traced = rec.start_run("traced", traceparent=PARENT)
        rec.finish_run(traced, "success")
    untraced = Recorder(Settings.resolve(explicit={"home": str(tmp_path / "home")}), live_log_interval=None)
    plain = untraced.start_run("plain")
    untraced.finish_run(plain, "success")
    with TestClient(create_app(settings)) as client:
        detail = client.get(f"/api/runs/{traced.run_id}").json()
        assert detail["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert detail["trace_viewer_url"] == "http://jaeger.example:16686/trace/4bf92f3577b34da6a3ce929d0e0e4736"
        assert detail["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
        listed = {r["run_id"]: r for r in client.get("/api/runs").json()["items"]}
        assert listed[traced.run_id]["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert listed[plain.run_id]["trace_id"] is None
        other = client.get(f"/api/runs/{plain.run_id}").json()
        assert (other["trace_id"], other["trace_viewer_url"]) == (None, None)
    rec.close()
    untraced.close()
