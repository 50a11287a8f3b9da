"""Flows in a process of their own, against the real Prefect server: killed, served, the API hanging.

Each test starts `scripts/plain_flow.py` with `python` (as users run a flow, or `.serve()` one) and
waits in bounded loops for what it checks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import rundossier
from rundossier.core.dossier import build_dossier
from rundossier.prefect import RunDossier
from rundossier.read.reader import reap_crashed, step_log_source

from .conftest import BLOCK_NAME
from .helpers import artifacts_of, steps_by_id
from .stallproxy import StallProxy

SCRIPT = Path(__file__).with_name("scripts") / "plain_flow.py"
SRC = Path(rundossier.__file__).resolve().parents[1]
T = TypeVar("T")


def _api_url() -> str:
    from prefect.settings import PREFECT_API_URL

    return str(PREFECT_API_URL.value())


def _env(block: str, *, api_url: str | None = None, marker: Path | None = None, **extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(SRC), PREFECT_API_URL=api_url or _api_url(), RD_TEST_BLOCK=block)
    if marker is not None:
        env["RD_TEST_MARKER"] = str(marker)
    env.update(extra)
    return env


def _wait(probe: Callable[[], T | None], timeout_s: float, what: str) -> T:
    """Poll `probe` until it returns something truthy, at most `timeout_s` seconds."""
    end = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what} after {timeout_s:.0f} s")
        time.sleep(0.25)


@contextmanager
def _process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), *args], env=env, stdout=out, stderr=out, cwd=SCRIPT.parent
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(30)


def _marker(marker: Path) -> tuple[int, str] | None:
    text = marker.read_text() if marker.exists() else ""
    if " " not in text:
        return None
    pid, flow_run = text.split()
    return int(pid), flow_run


def _lines(rec: Any, run: Any, step: Any) -> list[str]:
    return [line.message for line in step_log_source(rec.blobs, run, step).lines()]


def _killed_while_slow_runs(rec: Any, marker: Path) -> Any:
    """Wait until `quick` is recorded and `slow` has published its lines, then SIGKILL the flow's process."""
    pid, flow_run = _wait(lambda: _marker(marker), 120, "the slow task to start")

    def published() -> Any:
        run = rec.store.find_run("prefect", "killed-flow", flow_run)
        if run is None:
            return None
        steps = {s.task_id: s for s in rec.store.list_steps(run.run_id)}
        quick, slow = steps.get("quick"), steps.get("slow")
        if quick is None or quick.status != "success" or slow is None:
            return None
        return run if any("part 2" in line for line in _lines(rec, run, slow)) else None

    run = _wait(published, 60, "the completed task and the slow task's lines to be recorded")
    os.kill(pid, signal.SIGKILL)
    return run


def test_a_plain_script_killed_with_sigkill_keeps_the_finished_task_and_the_killed_tasks_lines(
    example_store: dict[str, str], example_recorder: Any, tmp_path: Path
) -> None:
    rec, marker = example_recorder, tmp_path / "marker"
    with _process(["killed"], _env(BLOCK_NAME, marker=marker), tmp_path / "flow.log") as proc:
        run = _killed_while_slow_runs(rec, marker)
        assert proc.wait(30) == -signal.SIGKILL
    steps = {tries[-1].task_id: tries[-1] for tries in steps_by_id(rec, run.run_id).values()}
    assert steps["quick"].status == "success" and steps["quick"].finished_at is not None
    assert "quick work done" in _lines(rec, run, steps["quick"])
    slow = steps["slow"]
    assert slow.started_at is not None and slow.upstream == [steps["quick"].step_id]
    assert [line for line in _lines(rec, run, slow) if "slow work" in line] == [
        "slow work, part 0",
        "slow work, part 1",
        "slow work, part 2",
    ]


def test_a_plain_script_killed_with_sigkill_ends_as_crashed_when_its_heartbeat_stops(
    example_store: dict[str, str], example_recorder: Any, tmp_path: Path
) -> None:
    rec, marker = example_recorder, tmp_path / "marker"
    env = _env(BLOCK_NAME, marker=marker, RUNDOSSIER_HEARTBEAT="1")
    with _process(["killed"], env, tmp_path / "flow.log") as proc:
        run = _killed_while_slow_runs(rec, marker)
        proc.wait(30)

    def crashed() -> Any:
        reap_crashed(rec.store)
        row = rec.store.get_run(run.run_id)
        return row if row.status == "crashed" else None

    row = _wait(crashed, 60, "the killed run to be shown as crashed")
    assert row.error_type == "Crashed (no heartbeat)" and "no heartbeat since" in (row.error_message or "")
    steps = {tries[-1].task_id: tries[-1] for tries in steps_by_id(rec, run.run_id).values()}
    assert steps["quick"].status == "success" and steps["slow"].status == "crashed"
    assert "slow work, part 2" in _lines(rec, row, steps["slow"])


def test_what_the_process_saw_is_recorded_when_prefects_api_hangs_after_the_run(
    example_store: dict[str, str], example_recorder: Any, tmp_path: Path
) -> None:
    """Issue 15, point 7: the state-history read that never answers no longer costs the steps."""
    rec = example_recorder
    RunDossier(**example_store, api_timeout_seconds=2).save("api-hangs", overwrite=True)
    api = urlsplit(_api_url())
    before = {r.run_id for r in rec.store.list_runs(limit=500).items}
    with StallProxy((api.hostname or "127.0.0.1", api.port or 80), stall=["/api/task_run_states"]) as proxy:
        env = _env("api-hangs", api_url=f"http://127.0.0.1:{proxy.port}{api.path}")
        with _process(["recovered"], env, tmp_path / "flow.log") as proc:
            proc.wait(180)
        assert proc.returncode == 0, (tmp_path / "flow.log").read_text()[-3000:]
        assert proxy.forwarded > 0  # the flow really talked to Prefect through the proxy
    (run,) = [r for r in rec.store.list_runs(limit=500).items if r.run_id not in before]
    assert (run.flow_id, run.status, run.error_type) == ("recovered-flow", "success", None)
    tries = {t[0].task_id: [(s.try_number, s.status) for s in t] for t in steps_by_id(rec, run.run_id).values()}
    assert tries == {"quick": [(1, "success")], "flaky": [(1, "failed"), (2, "success")]}


def test_a_served_deployment_killed_with_sigkill_keeps_its_start_and_crashes_with_a_readable_type(
    example_store: dict[str, str], example_recorder: Any, tmp_path: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    rec, marker = example_recorder, tmp_path / "marker"
    env = _env(BLOCK_NAME, marker=marker, PREFECT_RUNNER_POLL_FREQUENCY="1")
    with _process(["served"], env, tmp_path / "runner.log"), get_client(sync_client=True) as c:

        def deployment() -> Any:
            try:
                return c.read_deployment_by_name("killed-flow/killed-deployment")
            except Exception:  # noqa: BLE001 - not served yet
                return None

        _wait(deployment, 120, "the served deployment")
        flow_run = run_deployment("killed-flow/killed-deployment", timeout=0)
        run = _killed_while_slow_runs(rec, marker)

        def crashed() -> Any:
            row = rec.store.get_run(run.run_id)
            return row if row.status == "crashed" else None

        row = _wait(crashed, 120, "the runner to report the crash")
        key = "rundossier-killed-flow-failure"  # written last, once the runner read the task runs back
        summary = _wait(lambda: {a.key: a.data for a in artifacts_of(str(flow_run.id))}.get(key), 60, "the artifact")
        prefect_run = c.read_flow_run(flow_run.id)
    assert prefect_run.state_type.value == "CRASHED"
    # the start is the run's own, not the time the runner reported the crash
    assert row.started_at is not None and row.finished_at is not None and row.started_at < row.finished_at
    assert abs((row.started_at - prefect_run.start_time).total_seconds()) < 1.0
    assert row.duration_ms and row.duration_ms > 0
    assert row.error_type == "Crashed (SIGKILL)", row.error_type
    assert "Process exited with status code: -9" in (row.error_message or "")
    steps = {tries[-1].task_id: tries[-1] for tries in steps_by_id(rec, run.run_id).values()}
    assert steps["quick"].status == "success"
    assert steps["slow"].status == "crashed" and steps["slow"].error_type == "Crashed (SIGKILL)"
    assert "slow work, part 2" in _lines(rec, row, steps["slow"])
    dossier = build_dossier(row, rec.store.list_steps(run.run_id), rec.store.list_events(run.run_id))
    assert not [s for s in dossier.signals if s.code in ("clock_skew", "no_steps")], dossier.signals
    assert "Crashed (SIGKILL)" in summary and "no step was recorded" not in summary
    assert "- - :" not in summary and ": Process exited" in summary


def test_a_flow_run_process_that_ends_after_its_failure_records_everything_before_it_exits(
    example_store: dict[str, str], example_recorder: Any, tmp_path: Path
) -> None:
    """The read-back of task runs and the failure artifacts are done inside the terminal hook: at
    interpreter shutdown they would be refused ("cannot schedule new futures after interpreter
    shutdown", "can't register atexit after shutdown") and lost or left in the spool."""
    rec, log = example_recorder, tmp_path / "flow.log"
    before = {r.run_id for r in rec.store.list_runs(limit=500).items}
    with _process(["failing"], _env(BLOCK_NAME), log) as proc:
        proc.wait(180)
    output = log.read_text(errors="replace")
    assert proc.returncode == 1, output[-3000:]
    for refused in ("after interpreter shutdown", "after shutdown", "Error emitting event"):
        assert refused not in output, output[-3000:]
    (run,) = [r for r in rec.store.list_runs(limit=500).items if r.run_id not in before]
    assert (run.flow_id, run.status) == ("failing-flow", "failed")
    tries = {t[0].task_id: [(s.try_number, s.status) for s in t] for t in steps_by_id(rec, run.run_id).values()}
    assert tries == {"flaky": [(1, "failed"), (2, "success")], "load": [(1, "failed")]}
    keys = {a.key for a in artifacts_of(run.run_key)}
    assert "rundossier-failing-flow-failure" in keys, keys
    assert not [p for p in (Path(example_store["home"]) / "spool").glob("*") if not p.name.startswith(".")]
