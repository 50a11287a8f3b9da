"""`rundossier serve` refuses to expose an unguarded UI; `rundossier demo --no-serve` seeds example runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rundossier.cli.main import EXIT_CONFIG, main


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::"])
def test_serve_on_a_public_address_needs_a_token(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--host", host]) == 2  # a usage error: the options do not go together
    err = capsys.readouterr().err
    assert "RUNDOSSIER_API_TOKEN" in err and "--no-auth" in err


def test_serve_refuses_a_short_token(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RUNDOSSIER_API_TOKEN", "short")
    assert main(["serve", "--host", "0.0.0.0"]) == EXIT_CONFIG
    assert "at least 16" in capsys.readouterr().err


def test_demo_does_not_serve_on_a_public_address(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--host", "0.0.0.0"]) == 2
    assert "loopback" in capsys.readouterr().err


def test_demo_seeds_history_and_recorded_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "demo"
    assert main(["demo", "--no-serve", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "recorded 5 example runs (3 failed)" in out and "runs of history" in out
    assert main(["runs", "--json", "--limit", "500"]) == 0
    runs = json.loads(capsys.readouterr().out)["items"]
    flows = {r["flow_id"] for r in runs}
    assert {"nightly_etl", "big_report", "customer_sync", "ml_train", "hourly_metrics"} <= flows
    assert {r["orchestrator"] for r in runs} == {"python", "airflow", "prefect"}
    assert {"success", "failed", "crashed"} <= {r["status"] for r in runs}
    failed = next(r for r in runs if r["flow_id"] == "nightly_etl" and r["status"] == "failed" and r["trace_bytes"])
    assert main(["show", failed["run_id"], "--json"]) == 0
    steps = json.loads(capsys.readouterr().out)["steps"]
    assert [(s["step_id"], s["try_number"]) for s in steps if s["step_id"] == "load"] == [("load", 1), ("load", 2)]
    assert main(["trace", failed["run_id"]]) == 0
    trace = capsys.readouterr().out
    assert "The above exception was the direct cause" in trace and "example_pipelines.py" in trace
    assert "s3cr3t-pass" not in trace
    big = next(r for r in runs if r["flow_id"] == "big_report")
    assert main(["show", big["run_id"], "--json"]) == 0
    render = next(s for s in json.loads(capsys.readouterr().out)["steps"] if s["step_id"] == "render")
    assert render["log_lines"]["stdout"] + render["log_lines"]["stderr"] == 2000
    # a second demo run adds recorded runs but no second week of history
    assert main(["demo", "--no-serve", "--home", str(home)]) == 0
    assert "runs of history" not in capsys.readouterr().out


def test_the_demo_live_job_streams_and_stops(tmp_path: Path) -> None:
    import threading

    from rundossier import Recorder
    from rundossier.demo.seed import load_pipelines
    from rundossier.settings import Settings

    settings = Settings.resolve(explicit={"home": str(tmp_path), "storage_url": f"file://{tmp_path}/blobs"})
    rec = Recorder(settings, live_log_interval=None)
    pipelines = load_pipelines(tmp_path)
    done = pipelines.streaming_ingest(rec, seconds=0.3, every=0.05)
    assert rec.store.get_run(done).status == "success"
    stop = threading.Event()
    stop.set()
    cut = pipelines.streaming_ingest(rec, seconds=30, every=0.05, stop=stop)
    assert rec.store.get_run(cut).status == "cancelled"


def _wait_for(url: str, proc: object, seconds: float = 30.0) -> None:
    import time
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:  # type: ignore[attr-defined]
            raise AssertionError(f"the server exited: {proc.communicate()}")  # type: ignore[attr-defined]
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {seconds}s")


@pytest.mark.parametrize("command", [["serve"], ["demo"]])
def test_serve_and_demo_serve_the_ui_until_interrupted(command: list[str], tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import urllib.request

    from tests.s3server import free_port

    port = free_port()
    env = {**os.environ, "RUNDOSSIER_HOME": str(tmp_path / "home")}
    exe = Path(sys.executable).with_name("rundossier")
    proc = subprocess.Popen(
        [str(exe), *command, "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/healthz", proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            assert b"static/js/app.js" in r.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/runs?limit=500", timeout=5) as r:
            runs = json.loads(r.read())["items"]
        assert (len(runs) > 100) == (command == ["demo"])
        # no token: a page on another site reaching it through its own name (DNS rebinding) is refused
        import httpx

        r = httpx.get(f"http://127.0.0.1:{port}/api/runs", headers={"Host": f"evil.example:{port}"})
        assert r.status_code == 400 and r.json()["error"]["type"] == "host_not_allowed"
        assert httpx.get(f"http://127.0.0.1:{port}/api/runs", headers={"Host": f"localhost:{port}"}).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}/" in out + err


def test_serve_answers_to_the_names_it_is_given(tmp_path: Path) -> None:
    """`--allowed-host` and RUNDOSSIER_ALLOWED_HOSTS add names; `--no-auth` on a public address keeps
    the Host check (that host's address and the given names only)."""
    import os
    import signal
    import subprocess
    import sys

    import httpx

    from tests.s3server import free_port

    port = free_port()
    env = {
        **os.environ,
        "RUNDOSSIER_HOME": str(tmp_path / "home"),
        "RUNDOSSIER_ALLOWED_HOSTS": "rd.internal, other.internal",
    }
    exe = Path(sys.executable).with_name("rundossier")
    argv = [str(exe), "serve", "--port", str(port), "--allowed-host", "rd.example.com", "--host", "127.0.0.1"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(f"http://127.0.0.1:{port}/healthz", proc)
        url = f"http://127.0.0.1:{port}/api/runs"
        for host in ("rd.internal", "other.internal:443", "rd.example.com", "127.0.0.1", "[::1]"):
            assert httpx.get(url, headers={"Host": host}).status_code == 200, host
        r = httpx.get(url, headers={"Host": "evil.example"})
        assert r.status_code == 400 and "--allowed-host" in r.json()["error"]["message"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    assert proc.returncode == 0


def test_a_bad_allowed_host_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--allowed-host", "bad host/x"]) == 2
    assert "not a host name" in capsys.readouterr().err
