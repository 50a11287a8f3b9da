"""The example flows end to end on a real Prefect server: runs, steps, tries, traces, logs, artifacts."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from rundossier.core.dossier import build_dossier
from rundossier.read.reader import child_runs, run_trace, step_log_lines, step_trace

from .conftest import UI_BASE_URL
from .helpers import artifacts_of, flow_run_id, markdown_link, recorded_run, run_flow, steps_by_id


def test_chained_failure_records_steps_the_full_trace_and_the_link_artifact(
    examples: Any, example_recorder: Any
) -> None:
    rec = example_recorder
    state = run_flow(examples.chained_failure)
    assert state.is_failed()
    run = recorded_run(rec, examples.chained_failure, state)
    assert run.status == "failed" and run.orchestrator == "prefect"
    assert run.error_type == "RuntimeError" and run.error_message == "could not load batch 7"

    steps = steps_by_id(rec, run.run_id)
    by_task = {tries[0].task_id: tries for tries in steps.values()}
    assert set(by_task) == {"extract", "transform", "load"}
    assert [s.status for s in by_task["extract"]] == ["success"]
    assert by_task["extract"][0].started_at <= by_task["extract"][0].finished_at  # Prefect's own times
    assert [s.status for s in by_task["transform"]] == ["success"]
    (load,) = by_task["load"]
    assert load.status == "failed" and load.try_number == 1
    assert run.root_step_id == load.step_id
    assert by_task["transform"][0].upstream == [by_task["extract"][0].step_id]
    assert load.upstream == [by_task["transform"][0].step_id]
    assert load.started_at is not None and load.finished_at is not None and load.finished_at >= load.started_at

    # the trace: the user's frames and both links of the chain, as traceback prints them
    text = run_trace(rec.store, rec.blobs, run.run_id).text
    assert "ConnectionError: warehouse timeout after 30s" in text
    assert "RuntimeError: could not load batch 7" in text
    assert "direct cause of the following exception" in text
    assert "in connect_warehouse" in text and "in load" in text
    assert "flows_example/flows.py" in text
    assert step_trace(rec.store, rec.blobs, run.run_id, load.step_id, 1).text == text

    # the step's logs: the task's own lines and the engine's failure record, per task run
    lines = [line.message for line in step_log_lines(rec.store, rec.blobs, load)]
    assert any("loading 3 rows into batch 7" in m for m in lines)
    assert any(m.startswith("Task run failed with exception") for m in lines)
    extract_lines = [line.message for line in step_log_lines(rec.store, rec.blobs, by_task["extract"][0])]
    assert any("extracted 3 rows" in m for m in extract_lines)
    assert not any("batch 7" in m for m in extract_lines)

    # the flow run in Prefect carries a link to the trace download and a summary
    arts = {a.key: a for a in artifacts_of(flow_run_id(state))}
    link = arts["rundossier-chained-failure-trace"]
    assert link.type == "markdown"
    assert markdown_link(link.data) == f"{UI_BASE_URL}/api/runs/{run.run_id}/trace"
    summary = arts["rundossier-chained-failure-failure"].data
    assert "could not load batch 7" in summary and load.step_id in summary
    assert "caused by ConnectionError: warehouse timeout after 30s" in summary
    assert f"{UI_BASE_URL}/#/run/{run.run_id}" in summary


def test_the_link_artifact_downloads_the_trace_from_rundossiers_api(examples: Any, example_store: dict) -> None:
    from fastapi.testclient import TestClient

    from rundossier.server.app import create_app
    from rundossier.settings import Settings

    state = run_flow(examples.chained_failure)
    arts = {a.key: a for a in artifacts_of(flow_run_id(state))}
    url = markdown_link(arts["rundossier-chained-failure-trace"].data)
    assert url is not None and url.startswith(UI_BASE_URL)
    path = urlsplit(url).path.removeprefix(urlsplit(UI_BASE_URL).path)
    with TestClient(create_app(Settings.resolve(explicit=example_store), ui=False)) as client:
        resp = client.get(path)
    assert resp.status_code == 200, resp.text
    assert "attachment" in resp.headers["content-disposition"]
    assert "RuntimeError: could not load batch 7" in resp.text and "in connect_warehouse" in resp.text


def test_retries_are_tries_of_one_step(examples: Any, example_recorder: Any) -> None:
    rec = example_recorder
    state = run_flow(examples.flaky_then_ok)
    assert state.is_completed()
    run = recorded_run(rec, examples.flaky_then_ok, state)
    assert run.status == "success"
    (tries,) = steps_by_id(rec, run.run_id).values()
    assert [(s.try_number, s.status) for s in tries] == [(1, "failed"), (2, "failed"), (3, "success")]
    assert tries[0].error_type == "TimeoutError" and "attempt 1" in tries[0].error_message
    assert "attempt 2" in tries[1].error_message
    first = step_trace(rec.store, rec.blobs, run.run_id, tries[0].step_id, 1).text
    assert "in flaky_fetch" in first and "TimeoutError: upstream API timed out (attempt 1)" in first
    log_1 = [line.message for line in step_log_lines(rec.store, rec.blobs, tries[0])]
    log_3 = [line.message for line in step_log_lines(rec.store, rec.blobs, tries[2])]
    assert any("fetch attempt 1" in m for m in log_1) and not any("fetch attempt 3" in m for m in log_1)
    assert any("fetch attempt 3" in m for m in log_3)
    assert not artifacts_of(flow_run_id(state))  # a successful run gets no failure artifacts


def test_mapped_tasks_one_failing_item(examples: Any, example_recorder: Any) -> None:
    rec = example_recorder
    state = run_flow(examples.mapped_with_failure)
    assert state.is_failed()
    run = recorded_run(rec, examples.mapped_with_failure, state)
    steps = [tries[-1] for tries in steps_by_id(rec, run.run_id).values()]
    assert len(steps) == 5 and {s.task_id for s in steps} == {"process"}
    failed = [s for s in steps if s.status == "failed"]
    assert len(failed) == 1 and sum(s.status == "success" for s in steps) == 4
    assert failed[0].error_message == "item 3 is malformed"
    assert run.status == "failed" and run.root_step_id == failed[0].step_id  # not "1/5 states failed"
    text = run_trace(rec.store, rec.blobs, run.run_id).text
    assert "ValueError: item 3 is malformed" in text and "in process" in text


def test_async_flow(examples: Any, example_recorder: Any) -> None:
    rec = example_recorder
    state = run_flow(examples.async_failure)
    assert state.is_failed()
    run = recorded_run(rec, examples.async_failure, state)
    steps = [tries[-1] for tries in steps_by_id(rec, run.run_id).values()]
    assert sorted(s.status for s in steps) == ["failed", "success"]
    text = run_trace(rec.store, rec.blobs, run.run_id).text
    assert "KeyError: 'page 2 missing from the response'" in text and "in fetch_page" in text


def test_subflow_failure_is_linked_to_its_parent(examples: Any, example_recorder: Any) -> None:
    rec = example_recorder
    state = run_flow(examples.parent_with_subflow)
    assert state.is_failed()
    parent = recorded_run(rec, examples.parent_with_subflow, state)
    children = [r for r in rec.store.list_runs(limit=100).items if r.parent_run_id == parent.run_id]
    assert len(children) == 1
    child = children[0]
    assert child.flow_id == "child-flow" and child.status == "failed"
    assert [r.run_id for r in child_runs(rec.store, parent)] == [child.run_id]  # the parent's page lists it
    (validate,) = [t[-1] for t in steps_by_id(rec, child.run_id).values()]
    assert validate.task_id == "validate" and validate.status == "failed"  # recorded live by task_hooks()
    text = step_trace(rec.store, rec.blobs, child.run_id, validate.step_id).text
    assert "AssertionError: batch '2026-11-22' has 2 duplicate keys" in text and "in validate" in text
    assert any("validating 2026-11-22" in line.message for line in step_log_lines(rec.store, rec.blobs, validate))
    # the parent: its own task, the subflow call as a step, the same error
    parent_steps = {t[-1].task_id: t[-1] for t in steps_by_id(rec, parent.run_id).values()}
    assert parent_steps["extract"].status == "success"
    assert parent.status == "failed" and parent.error_type == "AssertionError"
    # the parent's dossier says the error once (Prefect's "Flow run encountered an exception: " dropped)
    headline = build_dossier(parent, rec.store.list_steps(parent.run_id), rec.store.list_events(parent.run_id)).headline
    assert headline.endswith("AssertionError: batch '2026-11-22' has 2 duplicate keys"), headline
    assert headline.count("AssertionError") == 1 and "encountered an exception" not in headline, headline


@pytest.mark.parametrize("event", ["crashed", "cancellation"])
def test_a_worker_reporting_a_dead_process_records_status_and_message_only(
    examples: Any, example_recorder: Any, event: str
) -> None:
    """on_crashed / on_cancellation run by a runner after the flow's process died: no live exception."""
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled, Crashed

    rec = example_recorder
    fl = examples.chained_failure
    with get_client(sync_client=True) as c:  # a flow run this process never ran
        flow_run = c.create_flow_run(fl)
    message = "Execution was interrupted by an unexpected exception: the process exited with code -9"
    state = Crashed(message=message) if event == "crashed" else Cancelled(message="Cancelled by an operator")
    hook = examples.dossier.on_crashed if event == "crashed" else examples.dossier.on_cancellation
    hook(fl, flow_run, state)
    assert examples.dossier.wait(60)
    run = rec.store.find_run("prefect", fl.name, str(flow_run.id))
    assert run is not None and rec.store.list_steps(run.run_id) == []
    if event == "crashed":
        assert run.status == "crashed" and run.error_message == message
        text = run_trace(rec.store, rec.blobs, run.run_id).text
        assert message in text and "no traceback captured" in text
        assert "Traceback (most recent call last)" not in text  # nothing invented
        arts = {a.key: a.data for a in artifacts_of(str(flow_run.id))}
        assert message in arts["rundossier-chained-failure-failure"]
    else:
        assert run.status == "cancelled" and run.trace_uri is None


def test_the_blocks_retention_defaults_apply_to_its_flows(examples: Any, example_recorder: Any) -> None:
    pytest.importorskip("rundossier.retention.sync", reason="this rundossier has no retention module yet")
    run_flow(examples.async_failure)
    policies = {p.flow_pattern: p for p in example_recorder.store.list_policies()}
    assert policies["async-failure"].keep_days == 30  # the example Block's keep_days


def test_only_on_failure_attached_still_records_the_run_trace_and_steps(examples: Any, example_recorder: Any) -> None:
    from prefect import flow

    @flow(name="only-on-failure", on_failure=[examples.dossier.on_failure])
    def only_on_failure() -> None:
        examples.load(examples.transform(examples.extract()))

    rec = example_recorder
    state = run_flow(only_on_failure)
    run = recorded_run(rec, only_on_failure, state)
    assert run.status == "failed"
    text = run_trace(rec.store, rec.blobs, run.run_id).text  # the flow's live exception: the task's frames too
    assert "ConnectionError: warehouse timeout after 30s" in text and "in connect_warehouse" in text
    steps = {t[-1].task_id: t[-1] for t in steps_by_id(rec, run.run_id).values()}  # from Prefect's API
    assert {k: s.status for k, s in steps.items()} == {"extract": "success", "transform": "success", "load": "failed"}
    assert "could not load batch 7" in steps["load"].error_message


def test_a_flow_retry_is_a_new_attempt_of_the_same_run(examples: Any, example_recorder: Any) -> None:
    from prefect import flow

    calls: list[int] = []

    @flow(name="flow-retried", retries=1, retry_delay_seconds=0, **examples.dossier.hooks())
    def flow_retried() -> int:
        calls.append(1)
        value = examples.extract()
        if len(calls) == 1:
            raise ConnectionResetError("first attempt lost its connection")
        return len(value)

    rec = example_recorder
    state = run_flow(flow_retried)
    assert state.is_completed() and len(calls) == 2
    run = recorded_run(rec, flow_retried, state)
    assert run.status == "success" and run.attempt == 2
    assert run.error_type is None  # the new attempt starts over


def test_a_task_failing_every_retry_gives_the_run_its_last_trys_error(examples: Any, example_recorder: Any) -> None:
    from prefect import flow, task

    attempts: list[int] = []

    @task(retries=2, retry_delay_seconds=0)
    def always_failing() -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise TimeoutError(f"upstream timed out (attempt {len(attempts)})")
        raise PermissionError("credentials revoked (attempt 3)")

    @flow(name="fails-every-retry", **examples.dossier.hooks())
    def fails_every_retry() -> None:
        always_failing()

    rec = example_recorder
    state = run_flow(fails_every_retry)
    assert state.is_failed() and len(attempts) == 3
    run = recorded_run(rec, fails_every_retry, state)
    (tries,) = steps_by_id(rec, run.run_id).values()
    assert [(s.try_number, s.status) for s in tries] == [(1, "failed"), (2, "failed"), (3, "failed")]
    assert (run.root_step_id, run.root_try_number) == (tries[-1].step_id, 3)
    assert run.error_type == "PermissionError" and "attempt 3" in (run.error_message or "")
    assert "PermissionError: credentials revoked (attempt 3)" in run_trace(rec.store, rec.blobs, run.run_id).text


def test_a_runner_reporting_a_crash_keeps_the_runs_start(examples: Any, example_recorder: Any) -> None:
    """The runner's own FlowRun has no start time; the crash hook takes it from Prefect, never "now"."""
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed, Running

    rec = example_recorder
    fl = examples.chained_failure
    with get_client(sync_client=True) as c:
        scheduled = c.create_flow_run(fl)  # what a runner holds: no start time
        c.set_flow_run_state(scheduled.id, Running())
        started = c.read_flow_run(scheduled.id).start_time
    assert scheduled.start_time is None and started is not None
    message = "Process exited with status code: -9. This indicates that the process exited due to a SIGKILL signal."
    examples.dossier.on_crashed(fl, scheduled, Crashed(message=message))
    assert examples.dossier.wait(60)
    run = rec.store.find_run("prefect", fl.name, str(scheduled.id))
    assert run is not None and run.status == "crashed"
    assert run.started_at == started and run.finished_at is not None and run.started_at <= run.finished_at
    assert (run.error_type, run.error_message) == ("Crashed (SIGKILL)", message)


def test_a_crash_reported_elsewhere_records_the_task_run_prefect_learns_of_late_as_crashed(
    examples: Any, example_recorder: Any
) -> None:
    """Prefect's server records task run states from events, asynchronously: under load the task run
    that was running when the flow-run process was killed reaches the API seconds after the worker
    reports the crash. The crash hook reads the task runs until they stop changing, so that try is
    recorded, crashed, with the run's reason."""
    import threading
    import time

    from prefect import task
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed, Running

    @task(name="hang")
    def hang() -> None:
        return None

    rec = example_recorder
    fl = examples.chained_failure
    with get_client(sync_client=True) as c:
        scheduled = c.create_flow_run(fl)
        c.set_flow_run_state(scheduled.id, Running())

    def late_task_run() -> None:  # what the server's task run recorder does after a lag
        time.sleep(2.5)
        with get_client(sync_client=True) as c2:
            c2.create_task_run(hang, scheduled.id, dynamic_key="0", name="hang-0", state=Running())

    writer = threading.Thread(target=late_task_run)
    writer.start()
    message = "Process exited with status code: -9. This indicates that the process exited due to a SIGKILL signal."
    examples.dossier.on_crashed(fl, scheduled, Crashed(message=message))
    writer.join(30)
    assert examples.dossier.wait(60)
    run = rec.store.find_run("prefect", fl.name, str(scheduled.id))
    assert run is not None and run.status == "crashed"
    steps = {tries[-1].task_id: tries[-1] for tries in steps_by_id(rec, run.run_id).values()}
    assert set(steps) == {"hang"}, steps
    step = steps["hang"]
    assert step.status == "crashed", step
    assert step.error_type == "Crashed (SIGKILL)" and message in (step.error_message or ""), step
