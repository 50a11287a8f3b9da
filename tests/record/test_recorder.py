"""End to end with plain Python: runs, steps, traces, logs, statuses, and never breaking the host."""

from __future__ import annotations

import gzip
import json
import logging
import sys
import traceback
from pathlib import Path

import pytest

from rundossier import Recorder
from rundossier.core.logs import decode_lines
from rundossier.read.reader import run_trace, step_log_lines, step_trace
from rundossier.settings import Settings
from rundossier.storage.blobs import BlobStore


class WarehouseError(RuntimeError):
    pass


def _fail_load(dsn: str) -> None:
    try:
        raise ConnectionError(f"timeout connecting to {dsn}")
    except ConnectionError as exc:
        raise WarehouseError("db down") from exc


@pytest.fixture
def rec(tmp_path: Path) -> Recorder:
    return Recorder(Settings.resolve(explicit={"home": str(tmp_path / "home")}))


def _blob(rec: Recorder, uri: str) -> bytes:
    return gzip.decompress(rec.blobs.get(uri))


def test_the_issue_example_records_everything_and_the_exception_passes_through(rec: Recorder) -> None:
    original = None
    with pytest.raises(WarehouseError) as excinfo:
        with rec.run(flow_id="nightly_etl") as run:
            with run.step("extract"):
                print("fetched 3 rows")
                logging.getLogger("etl").warning("slow source")
            with run.step("load", upstream=["extract"]):
                try:
                    _fail_load("postgresql://etl:hunter2@db:5432/dw")
                except WarehouseError as exc:
                    original = exc
                    raise
    assert excinfo.value is original
    frames = [f.name for f in traceback.extract_tb(excinfo.value.__traceback__)]
    assert frames[-1] == "_fail_load"

    r = rec.store.get_run(run.run_id)
    assert (r.status, r.flow_id, r.root_step_id, r.error_type) == (
        "failed",
        "nightly_etl",
        "load",
        "tests.record.test_recorder.WarehouseError",
    )
    assert r.error_message == "db down" and r.fingerprint and r.trace_uri and r.duration_ms is not None
    steps = {s.step_id: s for s in rec.store.list_steps(run.run_id)}
    assert steps["extract"].status == "success" and steps["load"].status == "failed"
    assert steps["extract"].log_lines_stdout == 1 and steps["extract"].log_lines_stderr == 1
    assert steps["load"].upstream == ["extract"] and steps["load"].trace_uri

    text = _blob(rec, steps["load"].trace_uri).decode()
    assert "ConnectionError: timeout connecting to postgresql://etl:***@db:5432/dw" in text
    assert "The above exception was the direct cause of the following exception:" in text
    assert "hunter2" not in text
    assert "step:" in text and "load" in text and run.run_id in text
    structured = json.loads(_blob(rec, steps["load"].trace_uri.replace("trace.txt.gz", "trace.json.gz")))
    assert [n["type"] for n in structured["chain"]] == ["ConnectionError", "tests.record.test_recorder.WarehouseError"]

    lines = list(decode_lines(_blob(rec, steps["extract"].log_uri)))
    assert [(ln.stream, ln.message) for ln in lines if ln.stream == "stdout"] == [("stdout", "fetched 3 rows")]
    assert any("slow source" in ln.message and ln.level == "WARNING" for ln in lines)

    assert run_trace(rec.store, rec.blobs, run.run_id).text == text
    assert step_trace(rec.store, rec.blobs, run.run_id, "load").text == text


def test_the_trace_text_contains_the_traceback_python_prints(rec: Recorder) -> None:
    with pytest.raises(WarehouseError) as excinfo:
        with rec.run("f") as run, run.step("s"):
            _fail_load("host")
    printed = "".join(traceback.format_exception(excinfo.value))
    assert printed in run_trace(rec.store, rec.blobs, run.run_id).text


def test_a_successful_run(rec: Recorder) -> None:
    with rec.run("ok_flow") as run:
        with run.step("a"):
            pass
        with run.step("b", upstream=["a"]):
            print("done")
    r = rec.store.get_run(run.run_id)
    assert r.status == "success" and r.error_type is None and r.trace_uri is None
    steps = rec.store.list_steps(run.run_id)
    assert [s.status for s in steps] == ["success", "success"]
    assert steps[0].log_uri is None  # nothing logged, nothing stored
    assert steps[1].log_uri is not None


def test_a_failure_outside_any_step_gets_a_run_level_trace(rec: Recorder) -> None:
    with pytest.raises(ZeroDivisionError):
        with rec.run("f") as run:
            with run.step("ok"):
                pass
            1 / 0  # noqa: B018
    r = rec.store.get_run(run.run_id)
    assert (r.status, r.root_step_id, r.error_type) == ("failed", "_run", "ZeroDivisionError")
    assert "ZeroDivisionError: division by zero" in run_trace(rec.store, rec.blobs, run.run_id).text


def test_a_step_failure_is_not_recorded_twice_at_run_level(rec: Recorder) -> None:
    with pytest.raises(KeyError):
        with rec.run("f") as run, run.step("s"):
            raise KeyError("x")
    r = rec.store.get_run(run.run_id)
    assert r.root_step_id == "s"
    assert [s.step_id for s in rec.store.list_steps(run.run_id)] == ["s"]


def test_a_wrapped_step_failure_still_points_at_the_step(rec: Recorder) -> None:
    with pytest.raises(RuntimeError):
        with rec.run("f") as run:
            try:
                with run.step("s"):
                    raise KeyError("x")
            except KeyError as exc:
                raise RuntimeError("flow failed") from exc
    row = rec.store.get_run(run.run_id)
    assert (row.root_step_id, row.error_type, row.error_message) == ("s", "RuntimeError", "flow failed")


def _fetch_then_abort(rec: Recorder) -> tuple[str, BaseException]:
    """Step `fetch` times out; the flow catches it and gives up with its own error."""
    with pytest.raises(LookupError) as excinfo:
        with rec.run("rates") as run:
            try:
                with run.step("fetch"):
                    raise TimeoutError("rates service did not answer in 30s")
            except TimeoutError as exc:
                raise LookupError("no rates, aborting") from exc
    return run.run_id, excinfo.value


def test_the_exception_that_ends_the_run_is_its_error_and_trace(rec: Recorder) -> None:
    run_id, raised = _fetch_then_abort(rec)
    row = rec.store.get_run(run_id)
    assert (row.status, row.error_type, row.error_message) == ("failed", "LookupError", "no rates, aborting")
    text = run_trace(rec.store, rec.blobs, run_id).text
    printed = "".join(traceback.format_exception(raised))
    # the whole chain as Python prints it: the step's TimeoutError as the cause
    assert printed.split("Traceback")[1].splitlines()[-1] in text
    assert "TimeoutError: rates service did not answer in 30s" in text
    assert "The above exception was the direct cause of the following exception:" in text
    assert text.index("TimeoutError: rates") < text.rindex("LookupError: no rates, aborting")


def test_the_failing_step_keeps_its_trace_and_stays_the_root_cause(rec: Recorder) -> None:
    from rundossier.read.reader import run_dossier

    run_id, _ = _fetch_then_abort(rec)
    row = rec.store.get_run(run_id)
    assert (row.root_step_id, row.root_try_number) == ("fetch", 1)
    step_text = step_trace(rec.store, rec.blobs, run_id, "fetch").text
    assert "TimeoutError: rates service" in step_text and "LookupError" not in step_text
    dossier = run_dossier(rec.store, row)
    assert dossier.failed_step == "fetch"


def test_a_run_ending_with_the_steps_own_exception_gets_no_second_trace(rec: Recorder) -> None:
    with pytest.raises(KeyError):
        with rec.run("f") as run, run.step("s"):
            raise KeyError("x")
    keys = [b.key for b in rec.blobs.iter_blobs("python/f")]
    assert any(k.endswith("/s.1.trace.txt.gz") for k in keys)
    assert not any("/_run." in k for k in keys)
    row = rec.store.get_run(run.run_id)
    assert row.trace_uri == rec.store.get_step(run.run_id, "s").trace_uri


def test_an_error_after_a_handled_step_failure_is_the_root_cause(rec: Recorder) -> None:
    with pytest.raises(ZeroDivisionError):
        with rec.run("f") as run:
            try:
                with run.step("optional"):
                    raise ConnectionError("cache unreachable")
            except ConnectionError:
                pass  # handled: the flow goes on without the cache
            1 / 0  # noqa: B018
    row = rec.store.get_run(run.run_id)
    assert (row.root_step_id, row.error_type) == ("_run", "ZeroDivisionError")
    assert "ConnectionError" not in run_trace(rec.store, rec.blobs, run.run_id).text


@pytest.mark.parametrize(
    "exc,status",
    [
        (KeyboardInterrupt(), "cancelled"),
        (SystemExit(0), "success"),
        (SystemExit(3), "failed"),
        (SystemExit("bye"), "failed"),
    ],
)
def test_keyboard_interrupt_and_system_exit_pass_through(rec: Recorder, exc: BaseException, status: str) -> None:
    with pytest.raises(type(exc)) as excinfo:
        with rec.run("f") as run, run.step("s"):
            raise exc
    assert excinfo.value is exc
    assert rec.store.get_run(run.run_id).status == status
    assert rec.store.list_steps(run.run_id)[0].status == status


def test_string_and_none_errors_are_recorded_without_a_traceback(rec: Recorder) -> None:
    run = rec.start_run("dag", "manual__1", orchestrator="airflow")
    rec.record_failure(run, "task_a", "Task received SIGTERM signal", try_number=2, reason="reported by the scheduler")
    rec.record_failure(run, "task_b", None, status="crashed")
    rec.finish_run(run, "failed")
    a = step_trace(rec.store, rec.blobs, run.run_id, "task_a").text
    assert "Traceback" not in a and "Task received SIGTERM signal" in a and "reported by the scheduler" in a
    b = rec.store.get_step(run.run_id, "task_b")
    assert b.status == "crashed" and b.error_type is None


def test_retries_are_tries_of_one_step(rec: Recorder) -> None:
    with rec.run("f") as run:
        for attempt in (1, 2, 3):
            try:
                with run.step("flaky", try_number=attempt):
                    if attempt < 3:
                        raise TimeoutError(f"attempt {attempt}")
            except TimeoutError:
                pass
    tries = [(s.try_number, s.status) for s in rec.store.list_steps(run.run_id)]
    assert tries == [(1, "failed"), (2, "failed"), (3, "success")]
    assert rec.store.get_run(run.run_id).status == "success"


def test_a_step_failing_every_try_gives_the_run_its_last_trys_error_and_trace(rec: Recorder) -> None:
    with pytest.raises(KeyError), rec.run("f") as run:
        for attempt in (1, 2, 3):
            try:
                with run.step("flaky", try_number=attempt):
                    raise (TimeoutError if attempt < 3 else KeyError)(f"attempt {attempt}")
            except TimeoutError:
                pass
    stored = rec.store.get_run(run.run_id)
    assert (stored.status, stored.root_step_id, stored.root_try_number) == ("failed", "flaky", 3)
    assert stored.error_type == "KeyError" and "attempt 3" in (stored.error_message or "")
    assert "KeyError: 'attempt 3'" in run_trace(rec.store, rec.blobs, run.run_id).text


def test_a_step_that_recovered_on_a_later_try_is_not_the_root_cause(rec: Recorder) -> None:
    with pytest.raises(KeyError), rec.run("f") as run:
        for attempt in (1, 2):
            try:
                with run.step("flaky", try_number=attempt):
                    if attempt == 1:
                        raise TimeoutError("a blip")
            except TimeoutError:
                pass
        with run.step("load", upstream=["flaky"]):
            raise KeyError("missing column")
    row = rec.store.get_run(run.run_id)
    assert (row.root_step_id, row.error_type) == ("load", "KeyError")
    assert "missing column" in run_trace(rec.store, rec.blobs, run.run_id).text
    assert rec.store.get_step(run.run_id, "flaky", 1).status == "failed"  # the failed try stays a try


def test_secrets_are_masked_in_the_trace_and_the_log(rec: Recorder) -> None:
    with pytest.raises(ValueError):
        with rec.run("f") as run, run.step("s"):
            print("connecting with password=swordfish")
            logging.getLogger("x").error("token: abcd1234efgh5678")
            raise ValueError("login failed for postgresql://u:swordfish@h/db")
    step = rec.store.get_step(run.run_id, "s")
    trace = _blob(rec, step.trace_uri).decode()
    log = _blob(rec, step.log_uri).decode()
    assert "swordfish" not in trace and "swordfish" not in log and "abcd1234efgh5678" not in log
    assert "***" in trace and "***" in log


def test_user_mask_patterns_apply(tmp_path: Path) -> None:
    rec = Recorder(Settings.resolve(explicit={"home": str(tmp_path), "mask_patterns": ["acct-[0-9]+"]}))
    with pytest.raises(ValueError):
        with rec.run("f") as run, run.step("s"):
            raise ValueError("bad account acct-99812")
    assert "acct-99812" not in run_trace(rec.store, rec.blobs, run.run_id).text


def test_the_trace_is_bounded(tmp_path: Path) -> None:
    rec = Recorder(Settings.resolve(explicit={"home": str(tmp_path), "max_trace_bytes": 64 * 1024}))
    with pytest.raises(ValueError):
        with rec.run("f") as run, run.step("s"):
            raise ValueError("x" * (5 * 1024 * 1024))
    text = run_trace(rec.store, rec.blobs, run.run_id).text
    assert len(text.encode()) <= 64 * 1024 and "omitted" in text
    assert rec.store.get_run(run.run_id).trace_bytes <= 64 * 1024


def test_a_huge_log_spills_in_parts_and_is_joined(rec: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    from rundossier.record import recorder as recorder_module
    from rundossier.record.steplog import StepLog

    monkeypatch.setattr(recorder_module, "StepLog", lambda **kw: StepLog(**{**kw, "chunk_bytes": 4096}))
    with rec.run("f") as run, run.step("chatty"):
        for i in range(5000):
            print(f"line {i}")
    step = rec.store.get_step(run.run_id, "chatty")
    lines = [ln.message for ln in step_log_lines(rec.store, rec.blobs, step)]
    assert lines == [f"line {i}" for i in range(5000)]
    assert step.log_lines_stdout == 5000
    leftovers = [b.key for b in rec.blobs.iter_blobs() if "log.parts" in b.key]
    assert leftovers == []


def test_recorder_from_env_uses_the_embedded_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNDOSSIER_HOME", str(tmp_path / "h"))
    rec = Recorder.from_env()
    with rec.run("f") as run, run.step("s"):
        pass
    assert (tmp_path / "h" / "rundossier.db").exists()
    assert rec.settings.storage_url == f"file://{tmp_path / 'h' / 'blobs'}"
    assert rec.store.get_run(run.run_id).status == "success"


def test_import_needs_no_orchestrator() -> None:
    import subprocess

    code = (
        "import sys, rundossier; from rundossier import Recorder;"
        "assert not any(m.split('.')[0] in ('airflow', 'prefect') for m in sys.modules), 'orchestrator imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_api_is_pinned() -> None:
    import rundossier

    assert sorted(rundossier.__all__) == sorted(
        ["Recorder", "RunHandle", "StepHandle", "Settings", "Status", "RundossierError", "artifact", "__version__"]
    )


def test_blob_layout_follows_the_design(rec: Recorder) -> None:
    with pytest.raises(ValueError):
        with rec.run("my flow/x") as run, run.step("group.task"):
            raise ValueError("x")
    keys = sorted(b.key for b in BlobStore(rec.settings.storage_url).iter_blobs())
    prefix = f"python/my%20flow%2Fx/{run.run_id}/group.task.1."
    assert keys == [prefix + "trace.json.gz", prefix + "trace.txt.gz"]
    folders = BlobStore(rec.settings.storage_url).url[len("file://") :] + f"/python/my%20flow%2Fx/{run.run_id}"
    assert [p.is_file() for p in Path(folders).iterdir()] == [True, True]  # one folder per run


def test_steps_record_when_their_output_began_and_ended(rec: Recorder) -> None:
    with rec.run("f") as run:
        with run.step("quiet"):
            pass
        with run.step("talky"):
            print("first")
            print("last")
    quiet, talky = rec.store.list_steps(run.run_id)
    assert quiet.first_output_at is None and quiet.last_output_at is None
    assert talky.started_at <= talky.first_output_at <= talky.last_output_at <= talky.finished_at


def test_one_huge_print_is_stored_as_one_bounded_line(rec: Recorder, capsys: pytest.CaptureFixture[str]) -> None:
    with rec.run("f") as run, run.step("s"):
        print("y" * 5_000_000)
        print("next line")
    assert len(capsys.readouterr().out) > 5_000_000  # the terminal still got all of it
    step = rec.store.get_step(run.run_id, "s")
    assert step.log_bytes < 70_000
    first, second = (line.message for line in decode_lines(_blob(rec, step.log_uri)))
    assert first.startswith("yyy") and first.endswith(" bytes omitted") and second == "next line"


def test_a_crash_reported_by_another_process_after_a_step_failure_is_the_runs_reason(rec: Recorder) -> None:
    """The flow-run process recorded a failed step, then was killed; the process that reports the
    crash (a Prefect worker) ends the run: the run shows the crash, and its run-level trace is the
    run's (never an unreferenced blob)."""
    run = rec.start_run("f", "fr-1", orchestrator="prefect")
    step = rec.start_step(run, "work")
    try:
        raise ValueError("item 1 is malformed")
    except ValueError as exc:
        step.finish("failed", exc)
    reporter = rec.start_run("f", "fr-1", orchestrator="prefect")  # the worker's handle of the same run
    message = "Crashed (SIGKILL): Process exited with status code: -9."
    rec.finish_run(reporter, "crashed", message, reason="the flow run's process was killed")
    row = rec.store.get_run(run.run_id)
    assert row.status == "crashed" and row.error_type == "Crashed (SIGKILL)", (row.error_type, row.error_message)
    keys = {b.key for b in rec.blobs.iter_blobs("prefect/f")}
    run_traces = {k for k in keys if "/_run." in k}
    assert run_traces and row.trace_uri and any(row.trace_uri.endswith(k) for k in run_traces), (row.trace_uri, keys)
    assert rec.store.get_step(run.run_id, "work").status == "failed"
