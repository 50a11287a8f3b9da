"""Whole dossiers from fixture event streams: known shapes and every missing-data case."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from rundossier.core.dossier import Baseline, build_dossier, dossier_json
from tests.core.dossier.streams import OK_RUN_ID, event, failed_event, run, step, t

TRACE = "file:///b/trace.txt.gz"
LOG = "file:///b/log.jsonl.gz"


@dataclass
class Stream:
    run: Any
    steps: list[Any]
    events: list[Any] = field(default_factory=list)


@dataclass
class Expected:
    classification: str | None
    failed_step: str | None = None
    signals: set[str] = field(default_factory=set)
    no_signals: set[str] = field(default_factory=set)
    material: dict[str, str] = field(default_factory=dict)
    step_windows: dict[str, str] = field(default_factory=dict)


def extract_ok(**kw):
    return step("extract", started_at=2, first_output_at=3, last_output_at=20, finished_at=21, **kw)


def failing_load(**kw):
    values = dict(
        status="failed", started_at=22, first_output_at=23, last_output_at=40, finished_at=41,
        error_type="ConnectionError", error_message="timeout", trace_uri=TRACE, log_uri=LOG,
        log_lines_stdout=12, upstream=["extract"],
    )  # fmt: skip
    values.update(kw)
    return step("load", **values)


CHAIN = [("ConnectionError", "timeout"), ("WarehouseError", "db down")]

STREAMS: dict[str, tuple[Stream, Expected]] = {
    "complete": (
        Stream(
            run(error_type="WarehouseError", error_message="db down", root_step_id="load", trace_uri=TRACE),
            [extract_ok(), failing_load()],
            [failed_event("load", 41, CHAIN)],
        ),
        Expected(
            "unavailable",
            "load",
            no_signals={"no_first_work", "trace_without_log", "log_without_trace", "failed_before_claim"},
            material={"trace": "stored", "log": "stored", "work events": "not reported", "artifacts": "none"},
            step_windows={"setup": "closed", "active_work": "closed", "write_back": "closed"},
        ),
    ),
    "no first work event": (
        Stream(
            run(root_step_id="load"),
            [
                extract_ok(),
                failing_load(
                    first_output_at=None, last_output_at=None, log_uri=None, error_type="KeyError", error_message="'x'"
                ),
            ],
            [
                event("first_work", 3, "extract", 1),
                event("last_work", 20, "extract", 1),
                failed_event("load", 41, [("KeyError", "'x'")]),
            ],
        ),  # fmt: skip
        Expected(
            "pre_work",
            "load",
            signals={"no_first_work", "trace_without_log"},
            material={"work events": "missing", "log": "none"},
            step_windows={"setup": "open", "active_work": "unknown"},
        ),
    ),
    "no final artifact": (
        Stream(
            run(root_step_id="load"),
            [extract_ok(), failing_load(error_type="OSError", error_message="write failed")],
            [
                event("artifact_written", 20, "extract", 1, data={"uri": "s3://b/extract.parquet"}),
                event("first_work", 23, "load", 1),
                event("last_work", 38, "load", 1),
                failed_event("load", 41, [("OSError", "write failed")]),
            ],
        ),
        Expected(
            "write_back",
            "load",
            signals={"no_final_artifact"},
            material={"artifacts": "recorded", "work events": "recorded"},
            step_windows={"write_back": "closed"},
        ),
    ),
    "failed before the worker claimed the task": (
        Stream(
            run(root_step_id="load", error_type=None, error_message="Executor reports task failed while queued"),
            [
                extract_ok(),
                failing_load(
                    queued_at=21,
                    started_at=None,
                    first_output_at=None,
                    last_output_at=None,
                    trace_uri=None,
                    log_uri=None,
                    error_type=None,
                    error_message="Executor reports task failed while queued",
                ),
            ],
        ),  # fmt: skip
        Expected(
            "pre_work",
            "load",
            signals={"failed_before_claim"},
            material={"trace": "none", "log": "none"},
            step_windows={"queue_wait": "open", "setup": "unknown"},
        ),
    ),
    "trace present but no log": (
        Stream(
            run(root_step_id="load"),
            [extract_ok(), failing_load(log_uri=None, log_lines_stdout=0, first_output_at=None, last_output_at=None)],
            [failed_event("load", 41, CHAIN)],
        ),
        Expected("unavailable", "load", signals={"trace_without_log"}, material={"trace": "stored", "log": "none"}),
    ),
    "log present but no trace": (
        Stream(
            run(root_step_id="load", status="failed"),
            [extract_ok(), failing_load(trace_uri=None, error_type=None, error_message="Task received SIGTERM signal")],
        ),
        Expected("killed", "load", signals={"log_without_trace"}, material={"trace": "none", "log": "stored"}),
    ),
    "a try killed with no exception": (
        Stream(
            run(status="crashed", root_step_id=None),
            [extract_ok(), failing_load(status="crashed", trace_uri=None, error_type=None, error_message=None)],
            [event("heartbeat_lost", 40, "load", 1, summary="no heartbeat for 300s")],
        ),
        Expected("killed", "load", signals={"killed_no_exception", "log_without_trace"}, material={"trace": "none"}),
    ),
    "a run whose blobs expired": (
        Stream(
            run(root_step_id="load", trace_uri=TRACE, blobs_expired=True, blobs_expired_at=200),
            [extract_ok(), failing_load()],
            [failed_event("load", 41, CHAIN)],
        ),
        Expected("unavailable", "load", signals={"blobs_expired"}, material={"trace": "expired", "log": "expired"}),
    ),
    "a run that failed outside any step": (
        Stream(
            run(error_type="ImportError", error_message="cannot import name 'x'", root_step_id="_run", trace_uri=TRACE),
            [],
            [
                event(
                    "run_finished",
                    100,
                    summary="failed",
                    data={"chain": [{"type": "ImportError", "message": "cannot import name 'x'"}]},
                )
            ],
        ),  # fmt: skip
        Expected("pre_work", None, signals={"no_steps"}, material={"trace": "stored"}),
    ),
    "upstream failure only": (
        Stream(
            run(root_step_id=None),
            [extract_ok(), step("load", status="upstream_failed", upstream=["extract"])],
            [event("upstream_failed", 30, "load", 1, data={"upstream": ["extract"]})],
        ),
        Expected("upstream", "load"),
    ),
    "success": (
        Stream(run(status="success"), [extract_ok()]),
        Expected(None, None, no_signals={"no_final_artifact"}),
    ),
}


@pytest.mark.parametrize("name", list(STREAMS))
def test_fixture_streams_give_their_expected_dossier(name: str) -> None:
    stream, want = STREAMS[name]
    d = build_dossier(stream.run, stream.steps, stream.events)
    got = d.classification.code if d.classification is not None else None
    assert got == want.classification, d.classification
    assert d.failed_step == want.failed_step
    codes = {s.code for s in d.signals}
    assert want.signals <= codes, codes
    assert not (want.no_signals & codes), codes
    material = {m.name: m.state for m in d.material}
    for k, v in want.material.items():
        assert material.get(k) == v, (k, material)
    if want.step_windows:
        (tm,) = [x for x in d.steps if x.step_id == d.failed_step]
        for w, state in want.step_windows.items():
            assert tm.window(w).state == state, (w, tm.window(w))
    data = dossier_json(d)  # always JSON-ready
    assert data["run_id"] == stream.run.run_id and data["version"] == 1


def test_dossier_is_deterministic() -> None:
    stream, _ = STREAMS["no final artifact"]
    assert build_dossier(stream.run, stream.steps, stream.events) == build_dossier(
        stream.run, stream.steps, stream.events
    )


def test_a_success_has_no_classification_actions_or_replay() -> None:
    d = build_dossier(run(status="success"), [extract_ok()], [])
    assert (d.classification, d.actions, d.replay, d.comparison) == (None, (), None, None)
    assert d.headline.startswith("Success in")


def test_live_run_is_measured_up_to_now() -> None:
    r = run(status="running", finished_at=None)
    d = build_dossier(r, [extract_ok(), step("load", status="running", started_at=22)], [], now=t(80))
    assert d.live and d.as_of == t(80)
    assert d.classification is None
    assert d.timing.window("active_work").elapsed_ms == 78000
    assert "live" in {s.code for s in d.signals}


def test_live_run_with_a_failed_step_is_classified() -> None:
    r = run(status="running", finished_at=None)
    steps = [extract_ok(), failing_load(), step("report", status="running", started_at=42)]
    d = build_dossier(r, steps, [failed_event("load", 41, CHAIN)], now=t(80))
    assert d.classification is not None and d.classification.code == "unavailable"
    assert d.replay is not None and not d.replay.replayable and d.replay.reason == "the run is still running"


def test_the_failed_try_is_the_latest_failing_try_that_finished_first() -> None:
    steps = [
        extract_ok(),
        failing_load(try_number=1, finished_at=30),
        failing_load(try_number=2, started_at=50, finished_at=60, error_type="KeyError", error_message="'x'"),
        step("other", status="failed", started_at=22, finished_at=70, error_type="ValueError", error_message="v"),
    ]
    d = build_dossier(run(root_step_id="load"), steps, [])
    assert (d.failed_step, d.failed_try) == ("load", 2)
    assert d.classification.code == "unknown"  # KeyError: nothing matched, said so


def test_a_step_recovered_by_a_later_try_is_not_the_failure() -> None:
    steps = [extract_ok(), failing_load(try_number=1), failing_load(try_number=2, status="success", finished_at=70)]
    steps.append(step("report", status="failed", started_at=71, finished_at=80, error_type="ValueError"))
    d = build_dossier(run(root_step_id="load"), steps, [])
    assert d.failed_step == "report"


def test_events_of_unknown_kinds_are_ignored_by_the_dossier() -> None:
    stream, _ = STREAMS["complete"]
    noise = [event("custom.kind", 5 + i / 1000, "load", 1) for i in range(100)]
    a = build_dossier(stream.run, stream.steps, stream.events)
    b = build_dossier(stream.run, stream.steps, stream.events + noise)
    assert a == b


def test_comparison_with_the_last_successful_run() -> None:
    stream, _ = STREAMS["complete"]
    ok = run(run_id=OK_RUN_ID, status="success", host="worker-2", params_hash="p1", code_version="v1",
             root_step_id=None, finished_at=50)  # fmt: skip
    ok_steps = [
        step("extract", run_id=OK_RUN_ID, started_at=2, first_output_at=3, last_output_at=10, finished_at=11),
        step("load", run_id=OK_RUN_ID, started_at=12, first_output_at=13, last_output_at=30, finished_at=31),
        step("report", run_id=OK_RUN_ID, started_at=32, finished_at=40),
    ]
    r = run(**{**stream.run.model_dump(), "params_hash": "p2", "code_version": "v1"})
    d = build_dossier(r, stream.steps, stream.events, baseline=Baseline(ok, ok_steps, []))
    c = d.comparison
    assert c is not None and c.baseline_run_id == OK_RUN_ID
    diffs = {x.field: (x.failed, x.baseline) for x in c.differences}
    assert diffs["host"] == ("worker-1", "worker-2")
    assert diffs["params_hash"] == ("p2", "p1")
    assert "code_version" not in diffs
    assert c.newly_failed == ("load",)
    assert c.not_reached == ("report",)
    load_active = [w for w in c.windows if w.step_id == "load" and w.window == "active_work"]
    assert load_active and (load_active[0].failed_ms, load_active[0].baseline_ms) == (17000, 17000)
    extract_total = [w for w in c.windows if w.step_id == "extract"]
    assert extract_total and extract_total[0].delta_ms == 19000 - 9000
    assert any(a.command == f"rundossier show {OK_RUN_ID}" for a in d.actions)


def test_headline_names_class_step_and_error() -> None:
    stream, _ = STREAMS["complete"]
    d = build_dossier(stream.run, stream.steps, stream.events)
    assert d.headline == "External service unavailable in step load (try 1): ConnectionError: timeout"


def test_headline_takes_type_and_message_from_one_row() -> None:
    """A step failed with a message only (Prefect's subflow call): the run's type is not put before it."""
    message = "Flow run encountered an exception: AssertionError: batch has 2 duplicate keys"
    r = run(error_type="AssertionError", error_message="batch has 2 duplicate keys", root_step_id="load")
    d = build_dossier(r, [extract_ok(), failing_load(error_type=None, error_message=message)], [])
    assert d.headline.endswith(f"in step load (try 1): {message}"), d.headline
    assert d.headline.count("AssertionError") == 1


def test_a_crashed_try_without_a_stored_log_is_not_said_to_have_written_nothing() -> None:
    r = run(status="crashed", error_type="Crashed (SIGKILL)", error_message="killed", root_step_id="load")
    steps = [extract_ok(), failing_load(status="crashed", log_uri=None, log_lines_stdout=0)]
    d = build_dossier(r, steps, [])
    assert {m.name: m.state for m in d.material}["log"] == "not stored"
    assert "trace_without_log" not in {s.code for s in d.signals}


def test_fingerprint_comes_from_the_run_or_the_failed_step() -> None:
    stream, _ = STREAMS["complete"]
    assert build_dossier(stream.run, stream.steps, stream.events).fingerprint is None
    steps = [extract_ok(), failing_load(fingerprint="abcdef0123456789")]
    assert build_dossier(stream.run, steps, stream.events).fingerprint == "abcdef0123456789"
