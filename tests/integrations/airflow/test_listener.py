"""The listener's translation of Airflow events into recorder calls, with a recording fake recorder."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rundossier.errors import ConfigError
from rundossier.integrations.airflow.config import AirflowConfig
from rundossier.integrations.airflow.listener import (
    REASON_DIED,
    REASON_OUTSIDE,
    REASON_RETRY,
    RunDossierListener,
    RunInfo,
    TaskIds,
    failure_reason,
    process_died,
    sampled_traceparent,
    step_id_for,
)
from rundossier.record.steplog import StepLog
from rundossier.record.writer import Budget
from rundossier.settings import Settings

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("task_id", "map_index", "expected"),
    [("load", None, "load"), ("load", -1, "load"), ("process", 0, "process[0]"), ("a.b", 12, "a.b[12]")],
)
def test_step_id_for(task_id, map_index, expected):
    assert step_id_for(task_id, map_index) == expected


@pytest.mark.parametrize(
    ("error", "live", "state", "expected"),
    [
        (ValueError("x"), True, "failed", None),
        (ValueError("x"), True, "up_for_retry", REASON_RETRY),
        ("TaskInstance's state was manually set to `failed`.", False, "failed", REASON_OUTSIDE),
        (None, False, "failed", REASON_OUTSIDE),
        (None, True, "failed", "Airflow reported this failure without an exception"),
    ],
)
def test_failure_reason(error, live, state, expected):
    assert failure_reason(error, live_step=live, state=state) == expected


def worker_ti(task_id="load", map_index=-1, try_number=1, state="running", **kw: Any) -> SimpleNamespace:
    """A Task SDK RuntimeTaskInstance look-alike (it has get_template_context)."""
    dag_run = SimpleNamespace(
        dag_id="etl", run_id="manual__1", clear_number=0, start_date=T0, queued_at=None, end_date=None
    )
    dag_run.run_type = "manual"
    return SimpleNamespace(
        dag_id="etl",
        run_id="manual__1",
        task_id=task_id,
        map_index=map_index,
        try_number=try_number,
        hostname="worker-1",
        start_date=T0,
        end_date=None,
        state=SimpleNamespace(value=state),
        task=SimpleNamespace(upstream_task_ids={"extract"}),
        get_template_context=lambda: {"dag_run": dag_run},
        **kw,
    )


def scheduler_ti(task_id="load", state="failed", try_number=1, map_index=-1) -> SimpleNamespace:
    """A core TaskInstance look-alike, as the scheduler or the API server hands it over."""
    return SimpleNamespace(
        dag_id="etl",
        run_id="manual__1",
        task_id=task_id,
        map_index=map_index,
        try_number=try_number,
        hostname=None,
        start_date=None,
        end_date=T0,
        state=state,
        task=None,
    )


def test_task_ids_from_a_task_instance():
    ids = TaskIds.of(worker_ti(map_index=3, try_number=2, state="up_for_retry"))
    assert (ids.step_id, ids.map_index, ids.try_number, ids.state) == ("load[3]", 3, 2, "up_for_retry")
    assert ids.upstream == ("extract",) and ids.hostname == "worker-1"
    assert TaskIds.of(scheduler_ti(try_number=0)).try_number == 1  # never ran: try 1, not 0


def test_run_info_comes_from_the_task_instances_dag_run():
    info = RunInfo.of_task(worker_ti(), TaskIds.of(worker_ti()))
    assert (info.attempt, info.started_at, dict(info.tags)) == (1, T0, {"run_type": "manual"})
    assert RunInfo.of_task(scheduler_ti(), TaskIds.of(scheduler_ti())).attempt is None  # no dag_run at hand


def test_airflow_dates_come_out_in_utc():
    """Airflow may hand dates in another zone (a naive one is taken as UTC); anything else is no date."""
    local = datetime(2026, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    ti = worker_ti()
    ti.start_date, ti.end_date = local, datetime(2026, 1, 1, 13, 0)
    ids = TaskIds.of(ti)
    assert ids.start_date == datetime(2026, 1, 1, 12, 0, tzinfo=UTC) and ids.start_date.utcoffset() == timedelta(0)
    assert ids.end_date == datetime(2026, 1, 1, 13, 0, tzinfo=UTC)
    ti.start_date = "2026-01-01"
    assert TaskIds.of(ti).start_date is None


class FakeStep:
    def __init__(self, rec: FakeRecorder, step_id: str, kw: dict[str, Any]) -> None:
        self.rec, self.step_id, self.kw, self.log = rec, step_id, kw, StepLog()
        self.budget = Budget(5.0)  # the end hook sets its deadline on it

    def finish(self, status, error=None, **kw):
        self.rec.calls.append(("finish", self.step_id, status, error, kw))


class FakeRecorder:
    def __init__(self, fail: bool = False, block: threading.Event | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail = fail
        self.block = block

    def start_run(self, flow_id, run_key, **kw):
        if self.block is not None:
            self.block.wait(10)
        if self.fail:
            raise RuntimeError("database is locked")
        self.calls.append(("start_run", flow_id, run_key, kw))
        return SimpleNamespace(flow_id=flow_id, run_key=run_key)

    def start_step(self, run, step_id, **kw):
        self.calls.append(("start_step", step_id, kw))
        return FakeStep(self, step_id, kw)

    def record_failure(self, run, step_id, error, **kw):
        self.calls.append(("record_failure", step_id, error, kw))

    def finish_run(self, run, status, error=None, **kw):
        self.calls.append(("finish_run", status, error, kw))


def make_listener(rec: FakeRecorder, *, timeout: float = 5.0, enabled: bool = True) -> RunDossierListener:
    cfg = AirflowConfig(Settings.resolve(explicit={"home": "/tmp/unused"}, environ={}), enabled, timeout)
    return RunDossierListener(load_config=lambda: cfg, make_recorder=lambda _: rec)


def names(rec: FakeRecorder) -> list[str]:
    return [c[0] for c in rec.calls]


def test_a_task_try_in_the_worker_is_a_step_with_its_log_and_its_live_exception(capsys):
    rec = FakeRecorder()
    lst = make_listener(rec)
    ti = worker_ti()
    lst.on_task_instance_running(previous_state="queued", task_instance=ti)
    print("from the task")
    logging.getLogger("user.code").warning("careful")
    error = ValueError("bad row")
    lst.on_task_instance_failed(previous_state="running", task_instance=ti, error=error)
    print("after the task")
    assert names(rec) == ["start_run", "start_step", "finish"]
    _, flow, key, run_kw = rec.calls[0]
    assert (flow, key, run_kw["orchestrator"], run_kw["attempt"], run_kw["started_at"]) == (
        "etl",
        "manual__1",
        "airflow",
        1,
        T0,
    )
    step = rec.calls[1]
    assert step[1] == "load" and step[2]["try_number"] == 1 and step[2]["upstream"] == ["extract"]
    assert rec.calls[2][2:4] == ("failed", error)  # the very exception object
    assert lst._state.steps == {} and lst._state.captures == {}  # the step is closed, capture ended
    out = capsys.readouterr().out
    assert "from the task" in out and "after the task" in out  # output still reaches the console


def test_captured_lines_land_in_the_steps_log():
    rec = FakeRecorder()
    lst = make_listener(rec)
    ti = worker_ti()
    lst.on_task_instance_running(previous_state="queued", task_instance=ti)
    step = lst._state.steps[TaskIds.of(ti).key]
    print("row 1 loaded")
    lst.on_task_instance_success(previous_state="running", task_instance=ti)
    print("not part of the step")
    assert [line for line in step.log.tail() if "row 1" in line]
    assert not [line for line in step.log.tail() if "not part" in line]
    assert rec.calls[-1][:3] == ("finish", "load", "success")


def test_a_failure_reported_by_the_scheduler_is_recorded_as_exactly_that():
    rec = FakeRecorder()
    lst = make_listener(rec)
    lst.on_task_instance_failed(previous_state=None, task_instance=scheduler_ti(), error="Executor reported failure")
    kind, step_id, error, kw = rec.calls[-1]
    assert (kind, step_id, error) == ("record_failure", "load", "Executor reported failure")
    assert (kw["status"], kw["reason"], kw["finished_at"]) == ("failed", REASON_OUTSIDE, T0)


def test_a_running_try_the_scheduler_reports_failed_died_and_is_crashed_in_airflows_words():
    """Its process died (SIGKILL, out of memory): the executor's report reaches the scheduler's
    listener with the try's previous state `running`."""
    rec = FakeRecorder()
    lst = make_listener(rec)
    words = (
        "Executor LocalExecutor(parallelism=8) reported that the task instance <TaskInstance: etl.load "
        "manual__1 [running]> finished with state failed, but the task instance's state attribute is running."
    )
    lst.on_task_instance_failed(previous_state="running", task_instance=scheduler_ti(), error=words)
    kind, step_id, error, kw = rec.calls[-1]
    assert (kind, step_id, error) == ("record_failure", "load", words)
    assert (kw["status"], kw["reason"]) == ("crashed", REASON_DIED)
    # in the task's own process a failure with a live exception is the task's, whatever came before
    assert not process_died(ValueError("x"), live_step=False, previous_state="running")
    assert not process_died(words, live_step=True, previous_state="running")
    assert not process_died(None, live_step=False, previous_state="running")


def test_a_mapped_retry_keeps_its_map_index_and_try():
    rec = FakeRecorder()
    lst = make_listener(rec)
    ti = worker_ti(task_id="process", map_index=2, try_number=2, state="up_for_retry")
    lst.on_task_instance_running(previous_state="queued", task_instance=ti)
    lst.on_task_instance_failed(previous_state="running", task_instance=ti, error=ZeroDivisionError())
    start = rec.calls[1]
    assert start[1] == "process[2]"
    assert (start[2]["task_id"], start[2]["map_index"], start[2]["try_number"]) == ("process", 2, 2)
    assert rec.calls[-1][4]["reason"] == REASON_RETRY


def test_a_finished_dag_run_records_the_tasks_that_never_ran():
    rec = FakeRecorder()
    lst = make_listener(rec)
    tis = [scheduler_ti("load", "failed"), scheduler_ti("report", "upstream_failed", try_number=0)]
    dag_run = SimpleNamespace(
        dag_id="etl",
        run_id="manual__1",
        clear_number=1,
        start_date=T0,
        queued_at=None,
        end_date=T0,
        run_type="manual",
        get_task_instances=lambda session=None: tis,
    )
    lst.on_dag_run_failed(dag_run=dag_run, msg="task_failure")
    assert names(rec) == ["start_run", "record_failure", "finish_run"]
    assert rec.calls[0][3]["attempt"] == 2  # cleared once: the second attempt
    assert rec.calls[1][1:3] == ("report", None) and rec.calls[1][3]["status"] == "upstream_failed"
    assert rec.calls[2][:3] == ("finish_run", "failed", None)


def test_a_recorder_fault_is_a_warning_never_an_exception(caplog):
    lst = make_listener(FakeRecorder(fail=True))
    with caplog.at_level(logging.WARNING, logger="rundossier.airflow"):
        lst.on_task_instance_running(previous_state="queued", task_instance=worker_ti())
        lst.on_task_instance_failed(previous_state="running", task_instance=worker_ti(), error=ValueError())
        lst.on_dag_run_success(dag_run=SimpleNamespace(dag_id="etl", run_id="r"), msg="success")
    assert "database is locked" in caplog.text


def test_a_hanging_recorder_does_not_hold_the_task(caplog):
    gate = threading.Event()
    rec = FakeRecorder(block=gate)
    lst = make_listener(rec, timeout=0.2)
    try:
        with caplog.at_level(logging.WARNING, logger="rundossier.airflow"):
            lst.on_task_instance_running(previous_state="queued", task_instance=worker_ti())
        assert "is taking longer than 0.2 s; the task goes on" in caplog.text
    finally:
        gate.set()


def test_disabled_or_misconfigured_means_nothing_is_recorded(caplog):
    rec = FakeRecorder()
    make_listener(rec, enabled=False).on_task_instance_running(previous_state=None, task_instance=worker_ti())

    def bad() -> AirflowConfig:
        raise ConfigError("[rundossier] enabled must be true or false, got 'maybe'")

    broken = RunDossierListener(load_config=bad, make_recorder=lambda _: rec)
    with caplog.at_level(logging.WARNING, logger="rundossier.airflow"):
        broken.on_task_instance_running(previous_state=None, task_instance=worker_ti())
        broken.on_task_instance_success(previous_state=None, task_instance=worker_ti())
    assert rec.calls == []
    assert caplog.text.count("rundossier is not recording in this process") == 1


def test_the_listener_runs_its_work_on_the_integrations_worker(caplog):
    from rundossier.integrations.worker import Worker

    worker = make_listener(FakeRecorder()).worker
    assert isinstance(worker, Worker)
    assert worker.call(lambda: 42, timeout=5, what="answer") == 42
    with caplog.at_level(logging.WARNING, logger="rundossier.airflow"):
        assert worker.call(lambda: 1 / 0, timeout=5, what="divide") is None
    assert "rundossier could not divide: ZeroDivisionError" in caplog.text


def load_drop_in() -> Any:
    import importlib.util

    path = Path(__file__).resolve().parents[3] / "plugins" / "rundossier_plugin.py"
    spec = importlib.util.spec_from_file_location("rd_drop_in_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_drop_in_file_defines_no_plugin_when_the_entry_point_registers_it():
    module = load_drop_in()
    assert not [v for v in vars(module).values() if isinstance(v, type)]


def test_the_drop_in_file_registers_the_plugin_where_there_is_no_entry_point(monkeypatch):
    from rundossier.integrations.airflow import plugin

    monkeypatch.setattr(plugin, "registered_by_entry_point", lambda: False)
    assert load_drop_in().RunDossierPlugin is plugin.RunDossierPlugin


SAMPLED = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.parametrize(
    ("carrier", "expected"),
    [
        ({"traceparent": SAMPLED}, SAMPLED),
        ({"traceparent": SAMPLED[:-2] + "03"}, SAMPLED[:-2] + "03"),
        # Airflow's carrier with its tracing off: unsampled, so not joined
        ({"traceparent": SAMPLED[:-2] + "00"}, None),
        ({"traceparent": "garbage"}, None),
        ({"traceparent": SAMPLED[:-2] + "zz"}, None),
        ({}, None),
        (None, None),
        ("not a dict", None),
    ],
)
def test_the_dag_runs_trace_context_is_joined_only_when_airflow_samples_it(carrier: Any, expected: str | None) -> None:
    assert sampled_traceparent(carrier) == expected
    run = SimpleNamespace(dag_id="d", run_id="r", context_carrier=carrier)
    assert RunInfo.of(run).traceparent == expected
